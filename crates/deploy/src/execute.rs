//! Carrying a [`Plan`] out on the engine, step by step, with every wait bounded.
//!
//! A recreated container is not destroyed until its replacement runs: the old one is stopped
//! and renamed aside, the new one takes its name, and only when the whole plan (and the final
//! health check, when asked for) succeeded are the old ones removed. When a replacement fails,
//! its service is put back as it was — the old container renamed back and started — so a bad
//! change never leaves a previously healthy service down.

use crate::desired::{Condition, Desired};
use crate::labels;
use crate::plan::{Plan, RemoveReason, Step};
use berth_engine::{ContainerSummary, Engine, EngineError, HealthOutcome};
use std::time::{Duration, Instant};

/// What the executor reports while it works, for the CLI to show.
#[derive(Debug, Clone)]
pub enum Event {
    /// A step is starting.
    Step(String),
    /// A step finished.
    Done(String),
    /// Waiting for a service, with the deadline.
    Waiting {
        service: String,
        what: String,
        deadline: Option<Duration>,
    },
    /// A service reached the state waited for.
    Ready {
        service: String,
        what: String,
    },
    Warning(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// One service failed; its last log lines say why.
    #[error("service `{service}`: {message}")]
    Service {
        service: String,
        message: String,
        last_logs: Vec<String>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The caller cancelled (Ctrl-C); what was half done has been put back.
    #[error("interrupted; run the command again to converge")]
    Interrupted,
}

/// Options of one execution.
#[derive(Debug, Clone, Default)]
pub struct ExecuteOptions {
    /// Remove anonymous volumes with removed containers (`down -v`).
    pub remove_anonymous_volumes: bool,
    /// After the plan, wait until these services are healthy (or running without a
    /// healthcheck), each within its own deadline (`up --wait`).
    pub wait_for: Vec<String>,
    /// After the plan, make sure these services did not exit at once (`up` without `--wait`);
    /// only containers the plan started are watched.
    pub settle_check: Vec<String>,
}

/// How long `up` without `--wait` watches a started container for an immediate crash.
const SETTLE: Duration = Duration::from_secs(2);

/// A container renamed aside while its replacement starts.
struct KeptAside {
    service: String,
    id: String,
    name: String,
}

pub async fn execute(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    opts: &ExecuteOptions,
    on: &(dyn Fn(Event) + Sync),
) -> Result<(), ExecuteError> {
    execute_until(engine, desired, plan, opts, on, std::future::pending()).await
}

/// Like [`execute`], but stops when `cancel` completes (Ctrl-C). The step in flight is
/// abandoned and every container renamed aside is put back, exactly as when a step fails, so
/// an interrupted `up` leaves the services that ran before running; rerunning converges.
pub async fn execute_until(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    opts: &ExecuteOptions,
    on: &(dyn Fn(Event) + Sync),
    cancel: impl std::future::Future<Output = ()>,
) -> Result<(), ExecuteError> {
    let mut aside: Vec<KeptAside> = Vec::new();
    let result = {
        let steps = run_steps(engine, desired, plan, opts, on, &mut aside);
        tokio::select! {
            r = steps => r,
            () = cancel => Err(ExecuteError::Interrupted),
        }
    };
    match result {
        Ok(()) => {
            for old in aside {
                // The replacement is up: the old container has done its job.
                engine.remove_container(&old.id, true, false).await?;
            }
            Ok(())
        }
        Err(e) => {
            let failed = match &e {
                ExecuteError::Service { service, .. } => Some(service.clone()),
                ExecuteError::Engine(_) | ExecuteError::Interrupted => None,
            };
            for old in aside {
                if failed.is_none() || failed.as_deref() == Some(old.service.as_str()) {
                    restore(engine, &old, on).await;
                } else {
                    let _ = engine.remove_container(&old.id, true, false).await;
                }
            }
            Err(e)
        }
    }
}

async fn run_steps(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    opts: &ExecuteOptions,
    on: &(dyn Fn(Event) + Sync),
    aside: &mut Vec<KeptAside>,
) -> Result<(), ExecuteError> {
    // When the last container was started, for the settle check.
    let mut last_start = None;
    for step in &plan.steps {
        if let Step::Warn(w) = step {
            on(Event::Warning(w.clone()));
            continue;
        }
        if !step.is_action() {
            continue;
        }
        let line = step.to_string();
        on(Event::Step(line.clone()));
        match step {
            Step::CreateNetwork(spec) => {
                engine.ensure_network(spec).await?;
            }
            Step::CreateVolume(spec) => {
                engine.ensure_volume(spec).await?;
            }
            Step::Create { service, spec } => {
                engine
                    .create_container(spec)
                    .await
                    .map_err(|e| service_error(service, e, vec![]))?;
            }
            Step::Start { service, name } => {
                start(engine, service, name).await?;
                last_start = Some(Instant::now());
            }
            Step::Recreate { old, spec, .. } => {
                // Recorded before the stop and rename: when either is interrupted or fails
                // half way, the rollback still renames it back and starts it (both harmless
                // when they had not happened yet).
                aside.push(KeptAside {
                    service: old.service.clone(),
                    id: old.id.clone(),
                    name: old.name.clone(),
                });
                engine.stop_container(&old.id, spec.stop_timeout).await?;
                let aside_name =
                    format!("{}-replaced-{}", old.name, &old.id[..12.min(old.id.len())]);
                engine.rename_container(&old.id, &aside_name).await?;
                engine
                    .create_container(spec)
                    .await
                    .map_err(|e| service_error(&old.service, e, vec![]))?;
                start(engine, &old.service, &spec.name).await?;
                last_start = Some(Instant::now());
            }
            Step::Restart {
                container, timeout, ..
            } => {
                engine.restart_container(&container.id, *timeout).await?;
                last_start = Some(Instant::now());
            }
            Step::Stop { container, timeout } => {
                engine.stop_container(&container.id, *timeout).await?;
            }
            Step::Remove { container, reason } => {
                let volumes = opts.remove_anonymous_volumes && *reason == RemoveReason::Down;
                engine
                    .remove_container(&container.id, true, volumes)
                    .await?;
            }
            Step::WaitHealthy {
                service,
                condition,
                deadline,
            } => {
                wait_service(engine, desired, service, *condition, *deadline, on).await?;
            }
            Step::RemoveNetwork(name) => engine.remove_network(name).await?,
            Step::RemoveVolume(name) => engine.remove_volume(name).await?,
            Step::Keep { .. }
            | Step::Warn(_)
            | Step::UseExternalNetwork(_)
            | Step::UseExternalVolume(_) => {}
        }
        if !matches!(step, Step::WaitHealthy { .. }) {
            on(Event::Done(line));
        }
    }
    for service in &opts.wait_for {
        let deadline = desired.service(service).map(|s| s.health_deadline);
        wait_service(engine, desired, service, Condition::Healthy, deadline, on).await?;
    }
    settle(engine, desired, plan, opts, last_start).await
}

/// Makes sure the containers this run started did not exit right away: they are polled
/// together until [`SETTLE`] has passed since the last start. Containers that were kept as
/// they were are not watched, so a `berth up` with nothing to do returns at once.
async fn settle(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    opts: &ExecuteOptions,
    last_start: Option<Instant>,
) -> Result<(), ExecuteError> {
    let Some(last_start) = last_start else {
        return Ok(());
    };
    let mut watched: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Start { service, .. } => Some(service.as_str()),
            Step::Recreate { old, .. } => Some(old.service.as_str()),
            Step::Restart { container, .. } => Some(container.service.as_str()),
            _ => None,
        })
        .filter(|s| {
            opts.settle_check.iter().any(|c| c == s) && !opts.wait_for.iter().any(|w| w == s)
        })
        .collect();
    watched.sort_unstable();
    watched.dedup();
    let mut containers = Vec::new();
    for service in watched {
        for c in service_containers(engine, &desired.project, service).await? {
            containers.push((service.to_string(), c));
        }
    }
    loop {
        for (service, c) in &containers {
            // A zero deadline makes this a single look at the container's state.
            if let HealthOutcome::Exited(code) = engine.wait_healthy(&c.id, Duration::ZERO).await? {
                let logs = engine.last_log_lines(&c.id, 20).await.unwrap_or_default();
                return Err(ExecuteError::Service {
                    service: service.clone(),
                    message: format!(
                        "container {} exited with code {code} right after it started",
                        c.name
                    ),
                    last_logs: logs,
                });
            }
        }
        if last_start.elapsed() >= SETTLE || containers.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start(engine: &Engine, service: &str, name: &str) -> Result<(), ExecuteError> {
    if let Err(e) = engine.start_container(name).await {
        let logs = engine.last_log_lines(name, 20).await.unwrap_or_default();
        // A container that cannot start is removed so that a rerun creates it afresh.
        let _ = engine.remove_container(name, true, false).await;
        return Err(service_error(service, e, logs));
    }
    Ok(())
}

fn service_error(service: &str, e: EngineError, last_logs: Vec<String>) -> ExecuteError {
    ExecuteError::Service {
        service: service.to_string(),
        message: e.to_string(),
        last_logs,
    }
}

/// Puts a replaced container back under its own name and starts it again.
async fn restore(engine: &Engine, old: &KeptAside, on: &(dyn Fn(Event) + Sync)) {
    on(Event::Step(format!(
        "restore container {} (its replacement failed)",
        old.name
    )));
    if let Ok(Some(current)) = engine.inspect_container(&old.name).await {
        if current.id != old.id {
            let _ = engine.remove_container(&current.id, true, false).await;
        }
    }
    let _ = engine.rename_container(&old.id, &old.name).await;
    let _ = engine.start_container(&old.id).await;
    on(Event::Done(format!("restore container {}", old.name)));
}

async fn service_containers(
    engine: &Engine,
    project: &str,
    service: &str,
) -> Result<Vec<ContainerSummary>, ExecuteError> {
    Ok(engine
        .list_containers(
            &[
                (labels::COMPOSE_PROJECT, Some(project)),
                (labels::COMPOSE_SERVICE, Some(service)),
                (labels::COMPOSE_ONEOFF, Some("False")),
            ],
            true,
        )
        .await?
        .into_iter()
        // Containers renamed aside during a recreate are not the service's current ones.
        .filter(|c| !c.name.contains("-replaced-"))
        .collect())
}

/// Waits until every container of `service` meets `condition`, within `deadline`.
async fn wait_service(
    engine: &Engine,
    desired: &Desired,
    service: &str,
    condition: Condition,
    deadline: Option<Duration>,
    on: &(dyn Fn(Event) + Sync),
) -> Result<(), ExecuteError> {
    let what = match condition {
        Condition::Started => "running",
        Condition::Healthy => "healthy",
        Condition::CompletedSuccessfully => "completed successfully",
    };
    on(Event::Waiting {
        service: service.to_string(),
        what: what.to_string(),
        deadline,
    });
    let containers = service_containers(engine, &desired.project, service).await?;
    if containers.is_empty() {
        return Err(ExecuteError::Service {
            service: service.to_string(),
            message: "has no container to wait for".into(),
            last_logs: vec![],
        });
    }
    // `None` only for one-shot jobs; a day bounds even those.
    let limit = deadline.unwrap_or(Duration::from_secs(24 * 3600));
    for c in containers {
        let fail = |message: String| async {
            let logs = engine.last_log_lines(&c.id, 20).await.unwrap_or_default();
            Err(ExecuteError::Service {
                service: service.to_string(),
                message,
                last_logs: logs,
            })
        };
        match condition {
            Condition::CompletedSuccessfully => match engine.wait_exit(&c.id, Some(limit)).await? {
                Some(0) => {}
                Some(code) => {
                    return fail(format!("container {} exited with code {code}", c.name)).await
                }
                None => {
                    return fail(format!(
                        "container {} did not finish within {}s",
                        c.name,
                        limit.as_secs()
                    ))
                    .await
                }
            },
            Condition::Started | Condition::Healthy => {
                match engine.wait_healthy(&c.id, limit).await? {
                    HealthOutcome::Healthy => {}
                    HealthOutcome::Running if condition == Condition::Started => {}
                    HealthOutcome::Running => {
                        // No healthcheck: running is all we can know, as `docker compose up
                        // --wait` also accepts.
                    }
                    HealthOutcome::Unhealthy if condition == Condition::Started => {}
                    HealthOutcome::Unhealthy => {
                        return fail(format!("container {} is unhealthy", c.name)).await
                    }
                    HealthOutcome::Exited(code) => {
                        return fail(format!("container {} exited with code {code}", c.name)).await
                    }
                    HealthOutcome::TimedOut => {
                        return fail(format!(
                            "container {} did not become {what} within {}s (deadline from its healthcheck: start_period + (interval + timeout) x retries)",
                            c.name,
                            limit.as_secs()
                        ))
                        .await
                    }
                }
            }
        }
    }
    on(Event::Ready {
        service: service.to_string(),
        what: what.to_string(),
    });
    Ok(())
}
