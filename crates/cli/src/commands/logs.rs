//! `berth logs`: the output of the project's containers, multiplexed, each line prefixed with
//! its container (coloured by service on a terminal).

use super::session::{number_of, service_of, Session};
use super::CliError;
use crate::args::{LogsArgs, ProjectArgs};
use futures_util::StreamExt;
use std::io::{IsTerminal, Write};

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

pub fn run(p: &ProjectArgs, a: &LogsArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    let list = s.containers(&a.services, true)?;
    let tty = std::io::stdout().is_terminal();
    let mut services: Vec<&str> = list.iter().map(service_of).collect();
    services.dedup();
    let width = list
        .iter()
        .map(|c| format!("{}-{}", service_of(c), number_of(c)).len())
        .max()
        .unwrap_or(0);
    let streams = list.iter().map(|c| {
        let label = format!("{}-{}", service_of(c), number_of(c));
        let colour = COLOURS[services
            .iter()
            .position(|x| *x == service_of(c))
            .unwrap_or(0)
            % COLOURS.len()];
        let prefix = if tty {
            format!("\x1b[{colour}m{label:<width$} |\x1b[0m ")
        } else {
            format!("{label:<width$} | ")
        };
        s.engine
            .logs(&c.id, a.follow, a.tail, a.timestamps)
            .map(move |line| (prefix.clone(), line))
            .boxed()
    });
    let mut merged = futures_util::stream::select_all(streams);
    s.rt.block_on(async {
        let mut out = std::io::stdout().lock();
        while let Some((prefix, line)) = merged.next().await {
            let line = line?;
            let ts = line.timestamp.map(|t| format!("{t} ")).unwrap_or_default();
            if writeln!(out, "{prefix}{ts}{}", line.text).is_err() {
                // The reader went away (`berth logs | head`): stop quietly.
                break;
            }
        }
        Ok::<(), CliError>(())
    })
}
