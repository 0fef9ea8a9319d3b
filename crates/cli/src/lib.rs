//! The command line: the only crate that prints and chooses exit codes.
//!
//! Configuration happens in two phases: [`args`] parses the command line into plain data (no
//! I/O), then each command turns it into the options of the library it drives (for example
//! [`berth_compose::LoadOptions`]) before any file, socket or Docker call.

// A CliError travels up once per process, to be printed; its size costs nothing measurable,
// and boxing every variant would only add noise to each command.
#![allow(clippy::result_large_err)]

// std's printing macros panic when the reader went away (`berth releases | head -1`); these
// shadow them for every module below, so that every print goes through `output`, which
// never panics. Defined before the modules because macro_rules are scoped by position.
macro_rules! println {
    () => {
        $crate::output::stdout_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stdout_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::stdout_fmt(format_args!($($arg)*))
    };
}
macro_rules! eprintln {
    () => {
        $crate::output::stderr_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::stderr_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::output::stderr_fmt(format_args!($($arg)*))
    };
}

pub mod args;
pub mod commands;
pub mod env;
pub mod exit;
pub mod output;
pub mod progress;
pub mod report;
pub mod stdin;
pub mod suggest;
pub mod table;

use clap::Parser;
use std::process::ExitCode;

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn run() -> ExitCode {
    env::init(env::Env::read());
    let args = match args::Cli::try_parse() {
        Ok(a) => a,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            eprint!("{}", suggest::unknown_command(&e, std::env::args().skip(1)));
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => {
            // clap prints help and version to stdout with success, usage errors to stderr.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::dispatch(args) {
        // Output the user asked for that could not be written (a full disk behind `>`) fails
        // the command; a reader that went away does not (see `output`).
        Ok(0) if output::stdout_error().is_some() => {
            let e = output::stdout_error().unwrap_or_default();
            eprintln!("error: cannot write the output: {e}; check where standard output goes");
            ExitCode::from(exit::FAILURE)
        }
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report::error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
