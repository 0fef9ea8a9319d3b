//! The command line: the only crate that prints and chooses exit codes.
//!
//! Configuration happens in two phases: [`args`] parses the command line into plain data (no
//! I/O), then each command turns it into the options of the library it drives (for example
//! [`berth_compose::LoadOptions`]) before any file, socket or Docker call.

// A CliError travels up once per process, to be printed; its size costs nothing measurable,
// and boxing every variant would only add noise to each command.
#![allow(clippy::result_large_err)]

pub mod args;
pub mod atomic;
pub mod commands;
pub mod exit;
pub mod progress;
pub mod report;

use clap::Parser;
use std::process::ExitCode;

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn run() -> ExitCode {
    let args = match args::Cli::try_parse() {
        Ok(a) => a,
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
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report::error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
