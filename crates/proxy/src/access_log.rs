//! One JSON line per request.

use crate::config::AccessLog;
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

#[derive(Serialize)]
pub struct Entry<'a> {
    pub time: f64,
    pub request_id: &'a str,
    pub client: String,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub protocol: &'a str,
    pub status: u16,
    pub route: &'a str,
    pub target: &'a str,
    pub duration_ms: f64,
}

pub struct AccessLogger {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl AccessLogger {
    pub fn open(config: &AccessLog) -> std::io::Result<AccessLogger> {
        let sink: Option<Box<dyn Write + Send>> = match config {
            AccessLog::Off => None,
            // The one place a library writes to stdout, allowed on purpose: `berth proxy run`
            // asked for it (`--access-log stdout`), and in the proxy's container stdout is the log
            // stream `docker logs` and `berth proxy logs` read. It is a writer the logger holds,
            // not a print, so the crate's `print_stdout` lint stays on for everything else.
            AccessLog::Stdout => Some(Box::new(std::io::stdout())),
            AccessLog::File(path) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
        };
        Ok(AccessLogger {
            sink: sink.map(Mutex::new),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    pub fn write(&self, entry: &Entry<'_>) {
        let Some(sink) = &self.sink else { return };
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut sink) = sink.lock() {
            // A full disk must not fail requests; the log is best effort.
            let _ = sink.write_all(&line);
        }
    }
}
