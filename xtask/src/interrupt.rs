//! Ctrl-C and SIGTERM during `cargo xtask demo` or `cargo xtask bench backup`: neither may leave
//! anything behind, and their clean-up lives in `Drop` guards, which a signal's default action
//! (ending the process) would skip. So the signals only raise a flag here; the task checks it
//! between its steps and returns an error, and the guards then take down what it started (the
//! stack, the proxy, the network, the bench's volumes and files).
//! Children (berth, cargo) get Ctrl-C from the terminal themselves and stop on their own.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Starts watching for SIGINT and SIGTERM on a thread of its own for the rest of the process.
pub fn watch() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The handlers are installed here, before the thread starts, so that a signal that comes
    // at once is already caught.
    let mut term = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    })?;
    let mut int = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: removing what was started");
    });
    Ok(())
}

/// An error once a signal came, so that the caller unwinds through its clean-up guards.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #14 item 12: Ctrl-C during the demo must leave its clean-up guards to run, so the
    /// signal only raises the flag that the demo's next step turns into an error. Without the
    /// watcher, SIGINT ends this test process, so the test fails.
    #[test]
    fn a_signal_becomes_an_error_at_the_next_check() {
        watch().unwrap();
        check().unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while check().is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the signal was not seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
