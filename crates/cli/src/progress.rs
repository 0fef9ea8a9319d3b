//! Showing long operations: a spinner per step on a terminal (indicatif), plain lines when
//! standard output is piped, so logs and CI output stay line-oriented.

use berth_deploy::Event;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct Progress {
    bar: Option<ProgressBar>,
    last: Mutex<Option<String>>,
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            last: Mutex::new(None),
        }
    }

    /// No spinner and no lines: for `--format json`, where stdout carries only JSON.
    pub fn quiet() -> Self {
        Progress {
            bar: None,
            last: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => println!("{text}"),
        }
    }

    pub fn event(&self, e: Event) {
        match e {
            Event::Step(s) => {
                if let Some(b) = &self.bar {
                    b.set_message(s.clone());
                }
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
            }
            Event::Done(s) => self.line(&format!("✔ {s}")),
            Event::Waiting {
                service,
                what,
                deadline,
            } => {
                let msg = match deadline {
                    Some(d) => format!(
                        "waiting for {service} to be {what} (up to {}s)",
                        d.as_secs()
                    ),
                    None => format!("waiting for {service} to be {what}"),
                };
                match &self.bar {
                    Some(b) => b.set_message(msg),
                    None => println!("{msg}"),
                }
            }
            Event::Ready { service, what } => self.line(&format!("✔ {service} is {what}")),
            Event::Warning(w) => eprintln!("warning: {w}"),
        }
    }

    pub fn message(&self, text: &str) {
        self.line(text);
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
