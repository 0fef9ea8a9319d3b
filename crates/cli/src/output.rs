//! berth's own output on standard output and standard error, written so that a reader that
//! went away (`berth releases | head -1`) never panics the process.
//!
//! std's `println!` panics when the write fails; the crate root shadows `println!`, `print!`,
//! `eprintln!` and `eprint!` with macros that come here instead, so no print in this crate can
//! panic, whoever adds it. A closed standard output is remembered and later output is
//! dropped: a command that only prints finishes quietly with exit 0, and a command that
//! changes state (`up`, `deploy`) is not cut off half way by its reader closing, and still
//! exits with its own code. Other write errors (a full disk behind `>`) are remembered and
//! turn a successful exit into a failure, since the output the user asked for is missing.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_FAILED: Mutex<Option<String>> = Mutex::new(None);

/// The reader of standard output went away; further output has nowhere to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Writes `bytes` to standard output and flushes them. `Err(Closed)` when the reader went
/// away, now or earlier, so that a command streaming without end (`logs -f`) can stop.
pub fn stdout_bytes(bytes: &[u8]) -> Result<(), Closed> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(Closed);
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Err(Closed)
        }
        Err(e) => {
            let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
            Ok(())
        }
    }
}

/// What `print!` and `println!` call.
pub fn stdout_fmt(args: std::fmt::Arguments<'_>) {
    let _ = stdout_bytes(args.to_string().as_bytes());
}

/// What `eprint!` and `eprintln!` call. A failed write to standard error is dropped: there
/// is nowhere left to say so.
pub fn stderr_fmt(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr()
        .lock()
        .write_all(args.to_string().as_bytes());
}

/// Whether the reader of standard output went away.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// The first write error on standard output other than a closed pipe, if there was one.
pub fn stdout_error() -> Option<String> {
    STDOUT_FAILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}
