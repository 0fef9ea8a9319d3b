//! How errors and warnings reach the user: miette reports with source snippets, plain
//! line-oriented text when standard error is not a terminal.

use crate::commands::CliError;
use std::io::IsTerminal;

pub fn error(e: &CliError) {
    let tty = std::io::stderr().is_terminal();
    match e {
        CliError::Load(load) => {
            for p in &load.problems {
                render(p, tty);
            }
        }
        CliError::Build(berth_deploy::build::BuildError::Dockerfile(p)) => render(p.as_ref(), tty),
        CliError::Execute(berth_deploy::ExecuteError::Service { last_logs, .. }) => {
            eprintln!("error: {e}");
            if !last_logs.is_empty() {
                eprintln!("last log lines:");
                for l in last_logs {
                    eprintln!("  | {l}");
                }
            }
        }
        other => eprintln!("error: {other}"),
    }
}

fn render(d: &dyn miette::Diagnostic, tty: bool) {
    let theme = if tty {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_ok() {
        // The first line of the report is the message, which already names file:line:col.
        eprint!(
            "error: {}",
            out.trim_start_matches(|c: char| c.is_whitespace() || c == '×')
        );
        if !out.ends_with('\n') {
            eprintln!();
        }
    } else {
        eprintln!("error: {d}");
    }
}

pub fn warning(msg: &str) {
    eprintln!("warning: {msg}");
}
