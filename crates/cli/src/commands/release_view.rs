//! How a release looks on the command line: its events as live lines (and a spinner on a
//! terminal) or JSON lines, and its errors as the CLI's exit codes.

use super::CliError;
use crate::progress::Progress;
use berth_deploy::images::{ImageError, ImageEvent};
use berth_deploy::release::{ReleaseError, ReleaseEvent, ReleaseRunError};
use berth_deploy::rollout::DeployEvent;
use berth_deploy::LockError;

/// Shows deploy events: live lines (and a spinner on a terminal), or JSON lines.
pub struct Reporter {
    pub progress: Progress,
    pub json: bool,
}

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        Reporter {
            progress: if json {
                Progress::quiet()
            } else {
                Progress::new()
            },
            json,
        }
    }

    pub fn emit(&self, e: ReleaseEvent) {
        match e {
            ReleaseEvent::Deploy(e) => self.deploy(e),
            ReleaseEvent::Image(e) => self.progress.message(&image_text(&e)),
            ReleaseEvent::Warning(w) => crate::report::warning(&w),
            ReleaseEvent::BackedUp { snapshots } => {
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "backup", "snapshots": snapshots})
                    );
                } else {
                    let short: Vec<&str> = snapshots
                        .iter()
                        .map(|s| berth_backup::snapshot::short_id(s))
                        .collect();
                    self.progress.message(&format!(
                        "backed up before the release command: snapshot {}",
                        short.join(", ")
                    ));
                }
            }
        }
    }

    fn deploy(&self, e: DeployEvent) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&e) {
                println!("{line}");
            }
            return;
        }
        let text = match e {
            DeployEvent::Release {
                number,
                services,
                created,
            } => {
                let mut parts = Vec::new();
                if !services.is_empty() {
                    parts.push(format!("deploying {}", services.join(", ")));
                }
                if !created.is_empty() {
                    parts.push(format!("creating {}", created.join(", ")));
                }
                format!("release {number}: {}", parts.join("; "))
            }
            DeployEvent::Step { service, message } => format!("{service}: {message}"),
            DeployEvent::Healthy {
                service,
                container,
                after_ms,
            } => format!("✔ {service}: new {container} healthy after {after_ms} ms"),
            DeployEvent::Switched {
                service,
                set,
                switch_ms,
            } => format!("✔ {service}: traffic on {set} {switch_ms:.0} ms after healthy"),
            DeployEvent::Weights {
                service,
                canary_percent,
            } => format!("{service}: canary at {canary_percent}%"),
            DeployEvent::Monitor {
                service,
                requests,
                errors,
            } => format!("✔ {service}: monitor passed ({requests} requests, {errors} errors)"),
            DeployEvent::RollingBack { service, reason } => {
                format!("✘ {service}: rolling back: {reason}")
            }
            DeployEvent::Warning { message } => {
                eprintln!("warning: {message}");
                return;
            }
        };
        self.progress.message(&text);
    }

    pub fn done(&self, value: serde_json::Value, text: &str) {
        self.progress.finish();
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

/// An image build's progress line.
pub fn image_text(e: &ImageEvent) -> String {
    match e {
        ImageEvent::Building { service, image } => format!("building {service} ({image})"),
        ImageEvent::Built {
            image,
            elapsed,
            steps,
            cached_steps,
            layers,
            size_bytes,
        } => format!(
            "✔ built {image} in {:.1}s: {steps} steps, {cached_steps} from cache, {layers} layers, {:.1} MB",
            elapsed.as_secs_f64(),
            *size_bytes as f64 / 1e6
        ),
        ImageEvent::Notice { service, text } => format!("{service}: {text}"),
    }
}

pub fn image_error(e: ImageError) -> CliError {
    match e {
        ImageError::Engine(e) => CliError::Engine(e),
        ImageError::Build(e) => CliError::Build(e),
        e => CliError::Failed(e.to_string()),
    }
}

/// A release's error as the CLI's: bad input exits 2, a failure 1.
pub fn release_error(e: ReleaseRunError) -> CliError {
    match e {
        ReleaseRunError::Policy(m) => CliError::Usage(m),
        e @ ReleaseRunError::StateDir { .. } => CliError::Io(e.to_string()),
        e @ ReleaseRunError::Lock(LockError::Held { .. }) => CliError::Failed(e.to_string()),
        e @ ReleaseRunError::Lock(_) => CliError::Io(e.to_string()),
        ReleaseRunError::Engine(e) => CliError::Engine(e),
        ReleaseRunError::Plan(e) => CliError::Plan(*e),
        ReleaseRunError::Execute(e) => CliError::Execute(*e),
        ReleaseRunError::Images(e) => image_error(e),
        ReleaseRunError::Release(e) => release_failure(e),
        e => CliError::Failed(e.to_string()),
    }
}

/// A failed release as the CLI reports it: the reason, then the failing container's last
/// log lines.
fn release_failure(e: ReleaseError) -> CliError {
    let mut msg = e.to_string();
    let logs = e.logs();
    if !logs.is_empty() {
        msg.push_str("\nlast log lines:");
        for l in logs {
            msg.push_str("\n  ");
            msg.push_str(l);
        }
    }
    CliError::Failed(msg)
}
