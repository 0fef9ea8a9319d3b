//! `berth build`: builds the services' images through crates/deploy's build sequence and
//! renders it: a live line per service on a terminal, plain lines or JSON events when asked
//! or piped, then a report per service (text, or one JSON document with `--format json`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use berth_deploy::build::{BuildProgress, BuildReport, BuildRequest};
use berth_deploy::{desired_state, Context};
use berth_engine::{Builder, StepStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::session::Session;
use super::CliError;
use crate::args::{BuildArgs, BuilderArg, ProgressMode, ProjectArgs, TextFormat};

pub fn run(p: &ProjectArgs, a: &BuildArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    s.check_services(&a.services)?;
    let ctx = Context {
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        services: a.services.clone(),
        image_ids: BTreeMap::new(),
        release: None,
    };
    let desired = desired_state(&s.loaded.project, &ctx)?;
    let request = BuildRequest {
        services: a.services.clone(),
        no_cache: a.no_cache,
        parallel: a
            .parallel
            .map_or_else(berth_deploy::images::default_parallelism, usize::from),
        builder: a.builder.map(|b| match b {
            BuilderArg::Buildkit => Builder::BuildKit,
            BuilderArg::Classic => Builder::Classic,
        }),
    };
    let mode = match a.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => View::Live(Live::new()),
        ProgressMode::Auto | ProgressMode::Plain => View::Plain,
        ProgressMode::Json => View::Json,
    };
    let on = |e: BuildProgress| mode.show(e);

    // Ctrl-C drops the build: its session closes and the engine is told to cancel it, so
    // BuildKit stops and nothing is tagged.
    let result = s.rt.block_on(async {
        tokio::select! {
            result = berth_deploy::build::build(&s.engine, &desired, &request, &on) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    mode.finish();
    let Some(result) = result else {
        // Give the cancel request the moment it needs to reach the engine.
        s.rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
        return Err(CliError::Interrupted);
    };
    let reports = result?;
    match a.format {
        TextFormat::Json => {
            let doc = serde_json::json!({ "project": s.project(), "services": reports });
            crate::output::stdout_fmt(format_args!("{doc}\n"));
        }
        TextFormat::Text => {
            for report in &reports {
                crate::output::stdout_fmt(format_args!("{}", report_text(report)));
            }
            if reports.is_empty() {
                crate::output::stdout_fmt(format_args!(
                    "{}: no service has `build:`; nothing to build\n",
                    s.project()
                ));
            }
        }
    }
    Ok(())
}

/// How progress is shown.
enum View {
    Live(Live),
    Plain,
    Json,
}

/// indicatif's view: one line per service with its current step, like buildx's tty view.
struct Live {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Live {
    fn new() -> Live {
        Live {
            multi: MultiProgress::new(),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn bar(&self, service: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(service.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:.bold} {elapsed:>4} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(service.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl View {
    fn show(&self, e: BuildProgress) {
        match self {
            View::Json => {
                if let Some(value) = event_json(&e) {
                    crate::output::stderr_fmt(format_args!("{value}\n"));
                }
            }
            View::Plain => {
                if let Some(line) = plain_line(&e) {
                    crate::output::stderr_fmt(format_args!("{line}\n"));
                }
            }
            View::Live(live) => match e {
                BuildProgress::Started { service, image } => {
                    live.bar(&service).set_message(format!("building {image}"))
                }
                BuildProgress::Step {
                    service,
                    name,
                    status: StepStatus::Running,
                } => live.bar(&service).set_message(name),
                BuildProgress::Notice { service, text } => {
                    live.bar(&service).println(format!("{service}: {text}"))
                }
                BuildProgress::Finished(report) => {
                    live.bar(&report.service).finish_with_message(format!(
                        "✔ built {} in {:.1}s ({} of {} steps cached)",
                        report.image, report.wall_seconds, report.steps_cached, report.steps
                    ))
                }
                _ => {}
            },
        }
    }

    fn finish(&self) {
        if let View::Live(live) = self {
            for bar in live.bars.lock().unwrap_or_else(|p| p.into_inner()).values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

/// A progress event as a line when piped: steps as they start and end, not their output.
fn plain_line(e: &BuildProgress) -> Option<String> {
    Some(match e {
        BuildProgress::Started { service, image } => format!("{service} | building {image}"),
        BuildProgress::Step {
            service,
            name,
            status,
        } => match status {
            StepStatus::Running => format!("{service} | {name}"),
            StepStatus::Cached => format!("{service} | {name}: cached"),
            StepStatus::Done(d) => format!("{service} | {name}: done in {:.1}s", d.as_secs_f64()),
            StepStatus::Failed(err) => format!("{service} | {name}: failed: {err}"),
        },
        BuildProgress::Output { .. } => return None,
        BuildProgress::Notice { service, text } => format!("{service} | {text}"),
        BuildProgress::Finished(r) => format!(
            "{} | built {} in {:.1}s",
            r.service, r.image, r.wall_seconds
        ),
    })
}

/// A progress event as one JSON object, for `--progress json`.
fn event_json(e: &BuildProgress) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match e {
        BuildProgress::Started { service, image } => {
            json!({"event": "started", "service": service, "image": image})
        }
        BuildProgress::Step {
            service,
            name,
            status,
        } => {
            let (state, seconds, error) = match status {
                StepStatus::Running => ("running", None, None),
                StepStatus::Cached => ("cached", None, None),
                StepStatus::Done(d) => ("done", Some(d.as_secs_f64()), None),
                StepStatus::Failed(err) => ("failed", None, Some(err.clone())),
            };
            json!({"event": "step", "service": service, "step": name, "status": state, "seconds": seconds, "error": error})
        }
        BuildProgress::Output {
            service,
            step,
            line,
        } => {
            json!({"event": "output", "service": service, "step": step, "line": line})
        }
        BuildProgress::Notice { service, text } => {
            json!({"event": "notice", "service": service, "text": text})
        }
        BuildProgress::Finished(r) => {
            json!({"event": "finished", "service": r.service, "image": r.image})
        }
    })
}

/// The report of one build as text.
fn report_text(r: &BuildReport) -> String {
    let mut out = format!(
        "{} ({}, {}): {:.1}s, {} steps, {} run, {} cached\n",
        r.service, r.image, r.builder, r.wall_seconds, r.steps, r.steps_run, r.steps_cached
    );
    if !r.slowest.is_empty() {
        out.push_str("  slowest steps:\n");
        for step in &r.slowest {
            out.push_str(&format!("    {:>7.1}s  {}\n", step.seconds, step.step));
        }
    }
    out.push_str(&format!(
        "  context sent: {} in {} files\n",
        size(r.context_bytes as i64),
        r.context_files
    ));
    out.push_str(&format!(
        "  image: {} in {} layers\n",
        size(r.size_bytes),
        r.layers.len()
    ));
    for layer in &r.layers {
        let what: String = layer.created_by.chars().take(90).collect();
        out.push_str(&format!("    {:>10}  {what}\n", size(layer.size_bytes)));
    }
    if !r.advice.is_empty() {
        out.push_str("  advice:\n");
        for a in &r.advice {
            out.push_str(&format!(
                "    {}:{}: {} [{}]\n",
                a.file, a.line, a.message, a.rule
            ));
        }
    }
    out
}

fn size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}
