//! Carrying a [`Plan`] out on the engine, with every wait bounded.
//!
//! The plan is a flat list of steps; [`batches`] groups it into batches that run one after
//! another, each made of lanes that run concurrently, every lane's steps in plan order. Services
//! of one dependency level share a batch, so independent containers are created and started
//! together, while every ordering the plan promises (resources first, dependencies before their
//! dependents, waits as barriers, `down` in reverse) still holds.
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
use futures_util::future::{join_all, try_join_all};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
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
    // Shared by the concurrent lanes of a batch. The lock is only held to push, never across
    // an await, and it lives outside the steps' future so that a cancelled run still knows
    // every container it moved aside.
    let aside: Mutex<Vec<KeptAside>> = Mutex::new(Vec::new());
    let result = {
        let steps = run_steps(engine, desired, plan, opts, on, &aside);
        tokio::select! {
            r = steps => r,
            () = cancel => Err(vec![ExecuteError::Interrupted]),
        }
    };
    let aside = aside.into_inner().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(()) => {
            for old in aside {
                // The replacement is up: the old container has done its job.
                engine.remove_container(&old.id, true, false).await?;
            }
            Ok(())
        }
        Err(errors) => {
            // Lanes of one batch can fail together. Each failed service gets its old
            // containers back; an error no service owns (the engine, Ctrl-C) puts back every
            // one, since it is unknown what was half done.
            let mut failed: BTreeSet<String> = BTreeSet::new();
            let mut restore_all = false;
            for e in &errors {
                match e {
                    ExecuteError::Service { service, .. } => {
                        failed.insert(service.clone());
                    }
                    ExecuteError::Engine(_) | ExecuteError::Interrupted => restore_all = true,
                }
            }
            for old in aside {
                if restore_all || failed.contains(&old.service) {
                    restore(engine, &old, on).await;
                } else {
                    let _ = engine.remove_container(&old.id, true, false).await;
                }
            }
            Err(first_error(errors))
        }
    }
}

/// The error to report when several lanes failed: the first service error in plan order, as
/// it names what the user has to fix, else the first error.
fn first_error(errors: Vec<ExecuteError>) -> ExecuteError {
    let i = errors
        .iter()
        .position(|e| matches!(e, ExecuteError::Service { .. }))
        .unwrap_or(0);
    errors
        .into_iter()
        .nth(i)
        .expect("a failed run has at least one error")
}

/// Which steps may run together. Batches run one after another; the lanes of a batch run
/// concurrently, and the steps of one lane in plan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `CreateNetwork`/`CreateVolume`: independent of each other, needed by every container.
    CreateResources,
    /// `WaitHealthy`: a barrier; waits that sit next to each other only read, so they overlap.
    Waits,
    /// Container steps of services in one dependency level (an index into `desired.levels`),
    /// which by construction do not depend on each other.
    Level(usize),
    /// Container steps of services outside `desired.levels` (orphans, unselected services in
    /// `down`). The planner promises only an order for them, so they run one by one.
    Unleveled,
    /// `RemoveNetwork`/`RemoveVolume`: after every container is gone, independent of each other.
    RemoveResources,
}

/// Groups the action steps of a plan (by index into `steps`) into batches of concurrent lanes.
///
/// A new batch starts whenever the kind of step changes: so a `WaitHealthy` ends the batch
/// before it and the steps after it start a new one, and the services of two levels never
/// share a batch. Within a level each service has one lane, so its own steps (removals, then
/// create and start, or recreate) keep their order. Steps that change nothing (`Keep`,
/// warnings) are left out.
pub(crate) fn batches(steps: &[Step], levels: &[Vec<String>]) -> Vec<Vec<Vec<usize>>> {
    let level_of: HashMap<&str, usize> = levels
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |s| (s.as_str(), i)))
        .collect();
    let mut out: Vec<Vec<Vec<usize>>> = Vec::new();
    // The current batch's class and, for each of its lanes, the key that joins steps into it.
    let mut current: Option<Class> = None;
    let mut keys: Vec<Option<String>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if !step.is_action() {
            continue;
        }
        // `None` gives the step a lane of its own.
        let (class, key) = match step {
            Step::CreateNetwork(_) | Step::CreateVolume(_) => (Class::CreateResources, None),
            Step::RemoveNetwork(_) | Step::RemoveVolume(_) => (Class::RemoveResources, None),
            Step::WaitHealthy { service, .. } => (Class::Waits, Some(service.clone())),
            other => {
                let service = step_service(other).unwrap_or_default();
                match level_of.get(service) {
                    Some(&l) => (Class::Level(l), Some(service.to_string())),
                    None => (Class::Unleveled, Some(String::new())),
                }
            }
        };
        if current != Some(class) {
            current = Some(class);
            keys.clear();
            out.push(Vec::new());
        }
        let batch = out.last_mut().expect("a batch was just pushed");
        match key
            .as_ref()
            .and_then(|k| keys.iter().position(|x| x.as_ref() == Some(k)))
        {
            Some(lane) => batch[lane].push(i),
            None => {
                keys.push(key);
                batch.push(vec![i]);
            }
        }
    }
    out
}

/// The service a container step acts on.
fn step_service(step: &Step) -> Option<&str> {
    match step {
        Step::Create { service, .. } | Step::Start { service, .. } => Some(service),
        Step::Recreate { old: c, .. }
        | Step::Restart { container: c, .. }
        | Step::Stop { container: c, .. }
        | Step::Remove { container: c, .. }
        | Step::Keep { container: c, .. } => Some(&c.service),
        _ => None,
    }
}

/// Runs the plan batch by batch. On failure it returns every error of the failed batch (at
/// least one), so the caller can put back the old containers of each failed service.
async fn run_steps(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    opts: &ExecuteOptions,
    on: &(dyn Fn(Event) + Sync),
    aside: &Mutex<Vec<KeptAside>>,
) -> Result<(), Vec<ExecuteError>> {
    // Warnings are not actions and lanes may interleave, so they are all shown first.
    for step in &plan.steps {
        if let Step::Warn(w) = step {
            on(Event::Warning(w.clone()));
        }
    }
    // When the last container was started, for the settle check.
    let mut last_start: Option<Instant> = None;
    for batch in batches(&plan.steps, &desired.levels) {
        let lanes = batch.iter().map(|lane| async move {
            let mut started = None;
            for &i in lane {
                if let Some(t) = run_step(engine, desired, &plan.steps[i], opts, on, aside).await? {
                    started = Some(t);
                }
            }
            Ok::<_, ExecuteError>(started)
        });
        // Every lane runs to its end even when another fails, so that each container a lane
        // moved aside is recorded before the rollback looks at the list.
        let mut errors = Vec::new();
        for r in join_all(lanes).await {
            match r {
                Ok(t) => last_start = last_start.max(t),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    // A service the plan already waited healthy for (a dependency) is checked again, since it
    // may have failed since, but not announced a second time.
    let quiet = |_: Event| {};
    let waits = opts.wait_for.iter().map(|service| {
        let deadline = desired.service(service).map(|s| s.health_deadline);
        let waited = plan.steps.iter().any(|s| {
            matches!(s, Step::WaitHealthy { service: w, condition: Condition::Healthy, .. } if w == service)
        });
        let report: &(dyn Fn(Event) + Sync) = if waited { &quiet } else { on };
        wait_service(engine, desired, service, Condition::Healthy, deadline, report)
    });
    let errors: Vec<ExecuteError> = join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    settle(engine, desired, plan, opts, last_start)
        .await
        .map_err(|e| vec![e])
}

/// Carries out one action step; returns when it started a container, for the settle check.
async fn run_step(
    engine: &Engine,
    desired: &Desired,
    step: &Step,
    opts: &ExecuteOptions,
    on: &(dyn Fn(Event) + Sync),
    aside: &Mutex<Vec<KeptAside>>,
) -> Result<Option<Instant>, ExecuteError> {
    let line = step.to_string();
    on(Event::Step(line.clone()));
    let mut started = None;
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
            started = Some(Instant::now());
        }
        Step::Recreate { old, spec, .. } => {
            // Recorded before the stop and rename: when either is interrupted or fails half
            // way, the rollback still renames it back and starts it (both harmless when they
            // had not happened yet).
            aside
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(KeptAside {
                    service: old.service.clone(),
                    id: old.id.clone(),
                    name: old.name.clone(),
                });
            engine.stop_container(&old.id, spec.stop_timeout).await?;
            let aside_name = format!("{}-replaced-{}", old.name, &old.id[..12.min(old.id.len())]);
            engine.rename_container(&old.id, &aside_name).await?;
            engine
                .create_container(spec)
                .await
                .map_err(|e| service_error(&old.service, e, vec![]))?;
            start(engine, &old.service, &spec.name).await?;
            started = Some(Instant::now());
        }
        Step::Restart {
            container, timeout, ..
        } => {
            engine.restart_container(&container.id, *timeout).await?;
            started = Some(Instant::now());
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
    Ok(started)
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
    // The services' containers are listed, and then polled, all at once, so that the check
    // costs one round trip per poll rather than one per container.
    let lists = try_join_all(
        watched
            .iter()
            .map(|service| service_containers(engine, &desired.project, service)),
    )
    .await?;
    let containers: Vec<(&str, ContainerSummary)> = watched
        .iter()
        .zip(lists)
        .flat_map(|(service, list)| list.into_iter().map(move |c| (*service, c)))
        .collect();
    loop {
        // A zero deadline makes each of these a single look at the container's state.
        let looks = try_join_all(
            containers
                .iter()
                .map(|(_, c)| engine.wait_healthy(&c.id, Duration::ZERO)),
        )
        .await?;
        for ((service, c), look) in containers.iter().zip(looks) {
            if let HealthOutcome::Exited(code) = look {
                let logs = engine.last_log_lines(&c.id, 20).await.unwrap_or_default();
                return Err(ExecuteError::Service {
                    service: service.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ContainerRef, KeepReason, RecreateReason};
    use berth_engine::{ContainerSpec, NetworkSpec, VolumeSpec};

    fn levels() -> Vec<Vec<String>> {
        [vec!["db", "cache"], vec!["web", "worker"], vec!["proxy"]]
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn cref(service: &str) -> ContainerRef {
        ContainerRef {
            id: format!("{service}-id"),
            name: format!("p-{service}-1"),
            service: service.into(),
        }
    }

    fn create(service: &str) -> Vec<Step> {
        let name = format!("p-{service}-1");
        vec![
            Step::Create {
                service: service.into(),
                spec: Box::new(ContainerSpec {
                    name: name.clone(),
                    ..Default::default()
                }),
            },
            Step::Start {
                service: service.into(),
                name,
            },
        ]
    }

    fn wait(service: &str, condition: Condition) -> Step {
        Step::WaitHealthy {
            service: service.into(),
            condition,
            deadline: None,
        }
    }

    fn take_down(service: &str) -> Vec<Step> {
        vec![
            Step::Stop {
                container: cref(service),
                timeout: None,
            },
            Step::Remove {
                container: cref(service),
                reason: RemoveReason::Down,
            },
        ]
    }

    /// Renders batches as the plan's lines, so a failure reads like a dry run.
    fn render(steps: &[Step]) -> Vec<Vec<Vec<String>>> {
        batches(steps, &levels())
            .into_iter()
            .map(|b| {
                b.into_iter()
                    .map(|lane| lane.into_iter().map(|i| steps[i].to_string()).collect())
                    .collect()
            })
            .collect()
    }

    fn lines(batch: &[&[&str]]) -> Vec<Vec<String>> {
        batch
            .iter()
            .map(|lane| lane.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn up_runs_each_level_together_and_waits_as_barriers() {
        let mut steps = vec![
            Step::CreateNetwork(NetworkSpec {
                name: "p_default".into(),
                ..Default::default()
            }),
            Step::Warn("something".into()),
            Step::CreateVolume(VolumeSpec {
                name: "p_data".into(),
                ..Default::default()
            }),
        ];
        steps.extend(create("db"));
        steps.push(Step::Recreate {
            old: cref("cache"),
            spec: Box::new(ContainerSpec {
                name: "p-cache-1".into(),
                ..Default::default()
            }),
            reason: RecreateReason::ConfigChanged,
        });
        steps.push(wait("db", Condition::Healthy));
        steps.push(wait("cache", Condition::Started));
        steps.extend(create("web"));
        steps.push(Step::Keep {
            container: cref("worker"),
            reason: KeepReason::UpToDate,
        });
        steps.push(wait("web", Condition::Healthy));
        steps.extend(create("proxy"));

        assert_eq!(
            render(&steps),
            vec![
                lines(&[&["create network p_default"], &["create volume p_data"]]),
                lines(&[
                    &["create container p-db-1", "start container p-db-1"],
                    &["recreate container p-cache-1 (config changed)"],
                ]),
                lines(&[
                    &["wait for db to be healthy"],
                    &["wait for cache to be running"]
                ]),
                lines(&[&["create container p-web-1", "start container p-web-1"]]),
                lines(&[&["wait for web to be healthy"]]),
                lines(&[&["create container p-proxy-1", "start container p-proxy-1"]]),
            ]
        );
    }

    #[test]
    fn a_wait_between_services_of_one_level_splits_it() {
        // web waits for db, worker for cache: the planner puts worker's wait after web's
        // steps, and worker must not start before it.
        let mut steps = vec![wait("db", Condition::Healthy)];
        steps.extend(create("web"));
        steps.push(wait("cache", Condition::Healthy));
        steps.push(wait("cache", Condition::Started));
        steps.extend(create("worker"));

        assert_eq!(
            render(&steps),
            vec![
                lines(&[&["wait for db to be healthy"]]),
                lines(&[&["create container p-web-1", "start container p-web-1"]]),
                lines(&[&[
                    "wait for cache to be healthy",
                    "wait for cache to be running"
                ]]),
                lines(&[&["create container p-worker-1", "start container p-worker-1"]]),
            ]
        );
    }

    #[test]
    fn down_keeps_reverse_levels_and_runs_orphans_one_by_one() {
        let mut steps = Vec::new();
        steps.extend(take_down("old"));
        steps.extend(take_down("gone"));
        for service in ["proxy", "worker", "web", "cache", "db"] {
            steps.extend(take_down(service));
        }
        steps.push(Step::RemoveNetwork("p_default".into()));
        steps.push(Step::RemoveVolume("p_data".into()));

        assert_eq!(
            render(&steps),
            vec![
                lines(&[&[
                    "stop container p-old-1",
                    "remove container p-old-1",
                    "stop container p-gone-1",
                    "remove container p-gone-1",
                ]]),
                lines(&[&["stop container p-proxy-1", "remove container p-proxy-1"]]),
                lines(&[
                    &["stop container p-worker-1", "remove container p-worker-1"],
                    &["stop container p-web-1", "remove container p-web-1"],
                ]),
                lines(&[
                    &["stop container p-cache-1", "remove container p-cache-1"],
                    &["stop container p-db-1", "remove container p-db-1"],
                ]),
                lines(&[&["remove network p_default"], &["remove volume p_data"]]),
            ]
        );
    }

    #[test]
    fn removals_of_a_service_stay_in_its_lane_before_its_starts() {
        // A scale-down's stop and remove come before the service's other steps, in one lane.
        let mut steps = vec![
            Step::Stop {
                container: cref("db"),
                timeout: None,
            },
            Step::Remove {
                container: cref("db"),
                reason: RemoveReason::ScaleDown,
            },
        ];
        steps.extend(create("cache"));
        steps.push(Step::Start {
            service: "db".into(),
            name: "p-db-1".into(),
        });

        assert_eq!(
            render(&steps),
            vec![lines(&[
                &[
                    "stop container p-db-1",
                    "remove container p-db-1 (scaled down)",
                    "start container p-db-1",
                ],
                &["create container p-cache-1", "start container p-cache-1"],
            ])]
        );
    }
}
