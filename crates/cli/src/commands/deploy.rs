//! `berth deploy`, `berth rollback` and `berth releases`: releases recorded in the state
//! store, rolled out by `berth_deploy::rollout` through the host's proxy.
//!
//! The order of a deploy: load and validate everything (project, policies, flags), take the
//! project lock, converge a deploy a previous process left half done, resolve images, record
//! the release, create what does not exist yet (as `up` would), run release commands, roll
//! each changed service, then commit or revert.

use super::session::Session;
use super::up::{actual, ensure_proxy_network, images};
use super::CliError;
use crate::args::{DeployArgs, ProjectArgs, ReleasesArgs, RollbackArgs, TextFormat};
use crate::progress::Progress;
use berth_compose::berth_ext::Strategy;
use berth_deploy::labels;
use berth_deploy::policy::{parse_strategy, strategy_name, Kind, Policy};
use berth_deploy::release::{self, read_journal, ReleaseError};
use berth_deploy::rollout::{DeployEvent, Deployer, Manual, ServiceUpdate};
use berth_deploy::{
    desired_state, execute, plan, Context, ExecuteOptions, Holder, JournalStep, LockError,
    NewRelease, Outcome, PlanOptions, ProjectLock, ServiceImage, Store, Traffic,
};
use berth_proxy::AdminClient;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where releases and locks live: `$BERTH_STATE_DIR` when set (tests, several hosts' state
/// side by side), else beside the state store's default path.
fn state_dir() -> PathBuf {
    match std::env::var_os("BERTH_STATE_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => berth_deploy::store::default_path()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    }
}

fn open_store() -> Result<Store, CliError> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    Store::open(dir.join("state.db")).map_err(|e| CliError::Failed(e.to_string()))
}

fn lock(project: &str, command: &str) -> Result<ProjectLock, CliError> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    ProjectLock::acquire(&dir, project, &Holder::current(command)).map_err(|e| match e {
        LockError::Held { .. } => CliError::Failed(e.to_string()),
        e => CliError::Io(e.to_string()),
    })
}

/// The high phase of `deploy` and `rollback`: flags checked and resolved.
struct Options {
    services: Vec<String>,
    strategy: Option<Strategy>,
    keep_old: Duration,
    build: bool,
    format: TextFormat,
    socket: PathBuf,
    /// `rollback`: the release whose images run again, and their ids by service.
    rollback: Option<(u64, BTreeMap<String, String>)>,
    /// `rollback`: the images as that release named them (`name:tag`), by service.
    rollback_refs: BTreeMap<String, String>,
    /// `rollback`: the release's recorded container specs by service (its configuration).
    rollback_specs: BTreeMap<String, Vec<berth_engine::ContainerSpec>>,
    command: &'static str,
}

pub fn deploy(p: &ProjectArgs, a: &DeployArgs) -> Result<(), CliError> {
    let keep_old = match &a.keep_old {
        None => berth_deploy::policy::DEFAULT_KEEP_OLD,
        Some(text) => berth_compose::duration::parse(text).ok_or_else(|| {
            CliError::Usage(format!(
                "--keep-old `{text}` is not a duration; write it like 5m or 90s"
            ))
        })?,
    };
    let strategy = a.strategy.as_deref().and_then(parse_strategy);
    let s = Session::open(p)?;
    s.check_services(&a.services)?;
    let opts = Options {
        services: a.services.clone(),
        strategy,
        keep_old,
        build: a.build,
        format: a.format,
        socket: super::proxy::admin_socket(a.admin_socket.clone()),
        rollback: None,
        rollback_refs: BTreeMap::new(),
        rollback_specs: BTreeMap::new(),
        command: "berth deploy",
    };
    run_release(&s, &opts)
}

pub fn rollback(p: &ProjectArgs, a: &RollbackArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    let store = open_store()?;
    let project = s.project().to_string();
    let releases = store
        .releases(&project)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let target = match a.to {
        Some(n) => releases
            .iter()
            .find(|r| r.number == n)
            .cloned()
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "project `{project}` has no release {n}; `berth releases` lists them"
                ))
            })?,
        None => {
            // The release before the current one: the newest succeeded release that is not
            // the newest succeeded release.
            let mut good = releases
                .iter()
                .filter(|r| r.status == berth_deploy::ReleaseStatus::Succeeded);
            let _current = good.next();
            good.next().cloned().ok_or_else(|| {
                CliError::Failed(format!(
                    "project `{project}` has no earlier succeeded release to roll back to; `berth releases` lists them"
                ))
            })?
        }
    };
    let specs = store
        .journal(&project, target.number)
        .map_err(|e| CliError::Failed(e.to_string()))?
        .into_iter()
        .find_map(|e| match e.step {
            JournalStep::Begin { specs, .. } => Some(specs),
            _ => None,
        })
        .unwrap_or_default();
    drop(store);
    let mut ids = BTreeMap::new();
    let mut refs = BTreeMap::new();
    for svc in &target.services {
        if s.loaded.project.services.contains_key(&svc.service) {
            ids.insert(svc.service.clone(), svc.image_id.clone());
            refs.insert(svc.service.clone(), svc.image_ref.clone());
        }
    }
    let opts = Options {
        services: ids.keys().cloned().collect(),
        strategy: None,
        keep_old: berth_deploy::policy::DEFAULT_KEEP_OLD,
        build: false,
        format: a.format,
        socket: super::proxy::admin_socket(a.admin_socket.clone()),
        rollback: Some((target.number, ids)),
        rollback_refs: refs,
        rollback_specs: specs,
        command: "berth rollback",
    };
    run_release(&s, &opts)
}

/// `berth promote` / `berth abort`: a decision for the project's running canary, written to
/// its release's journal, where the deploy process reads it within a fraction of a second.
pub fn decide(p: &ProjectArgs, promote: bool) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let project = loaded.project.name.clone();
    let mut store = open_store()?;
    let running = store
        .running(&project)
        .map_err(|e| CliError::Failed(e.to_string()))?
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no deploy of project `{project}` is running; `berth releases` shows the last ones"
            ))
        })?;
    let step = if promote {
        JournalStep::Promote
    } else {
        JournalStep::Abort
    };
    store
        .journal_append(&project, running.number, step)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "release {}: {} requested",
        running.number,
        if promote { "promotion" } else { "abort" }
    );
    Ok(())
}

pub fn releases(p: &ProjectArgs, a: &ReleasesArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let store = open_store()?;
    let list = store
        .releases(&loaded.project.name)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    match a.format {
        TextFormat::Json => {
            for r in &list {
                println!(
                    "{}",
                    serde_json::to_string(r).map_err(|e| CliError::Io(e.to_string()))?
                );
            }
        }
        TextFormat::Text => {
            let mut table = crate::table::Table::new(&[
                "RELEASE", "CREATED", "STATUS", "STRATEGY", "DURATION", "COMMIT", "IMAGES",
            ])
            .right(4);
            for r in &list {
                let images: Vec<String> = r
                    .services
                    .iter()
                    .map(|s| format!("{}={}", s.service, short_id(&s.image_id)))
                    .collect();
                let mut status = r.status.to_string();
                if let Some(of) = r.rollback_of {
                    status = format!("{status} (rollback to {of})");
                }
                table.row(vec![
                    r.number.to_string(),
                    berth_deploy::clock::format_utc(r.created_at),
                    status,
                    r.strategy.clone(),
                    r.duration_ms
                        .map(|d| format!("{:.1}s", d as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into()),
                    r.git_commit
                        .as_deref()
                        .map(|c| c[..c.len().min(12)].to_string())
                        .unwrap_or_else(|| "-".into()),
                    images.join(" "),
                ]);
                if let Some(reason) = &r.reason {
                    table.note(reason.clone());
                }
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// Shows deploy events: live lines (and a spinner on a terminal), or JSON lines.
struct Reporter {
    progress: Progress,
    json: bool,
}

impl Reporter {
    fn emit(&self, e: DeployEvent) {
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

    fn done(&self, value: serde_json::Value, text: &str) {
        self.progress.finish();
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

fn git_commit(dir: &std::path::Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}

fn run_release(s: &Session, o: &Options) -> Result<(), CliError> {
    let project = s.project().to_string();
    let started = Instant::now();
    let reporter = Reporter {
        progress: if o.format == TextFormat::Json {
            Progress::quiet()
        } else {
            Progress::new()
        },
        json: o.format == TextFormat::Json,
    };
    let on = |e: DeployEvent| reporter.emit(e);

    // Validate: the desired state and every service's policy, before any change.
    let mut ctx = Context {
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        services: o.services.clone(),
        image_ids: BTreeMap::new(),
        release: None,
    };
    let first = desired_state(&s.loaded.project, &ctx)?;
    for w in &first.warnings {
        crate::report::warning(w);
    }
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for d in &first.services {
        let svc = &s.loaded.project.services[&d.name];
        let Some(spec) = d.containers.first() else {
            continue;
        };
        let mut p = berth_deploy::policy(&s.loaded.project, &d.name, svc, spec, d.health_deadline)
            .map_err(CliError::Usage)?;
        if let (Some(st), Kind::Routed(_)) = (o.strategy, &p.kind) {
            p.strategy = st;
        }
        for n in &p.notes {
            on(DeployEvent::Warning { message: n.clone() });
        }
        policies.insert(d.name.clone(), p);
    }
    let routed = policies.values().any(|p| matches!(p.kind, Kind::Routed(_)));
    let traffic = Traffic::new(AdminClient::new(&o.socket));
    super::proxy::start_for_deploy(s, &o.socket, routed)?;
    if routed {
        s.rt.block_on(traffic.check()).map_err(|e| {
            CliError::Failed(format!(
                "the services with x-berth.proxy need the proxy: {e}"
            ))
        })?;
    }
    let traffic_ref = routed.then_some(&traffic);

    // One deploy per project at a time; the lock says who holds it.
    let _lock = lock(&project, o.command)?;
    let store = Mutex::new(open_store()?);

    // A deploy killed earlier is converged first: finished when it had committed, else
    // reverted, so this one starts from a known state.
    let running = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .running(&project)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if let Some(r) = running {
        recover(s, &store, &project, r.number, &policies, traffic_ref, &on)?;
    }
    retire_standbys(s)?;

    // Images: built or found; for a rollback, the release's own image ids.
    let ids = match &o.rollback {
        Some((number, ids)) => {
            for (svc, id) in ids {
                if s.rt.block_on(s.engine.image_id(id))?.is_none() {
                    return Err(CliError::Failed(format!(
                        "service `{svc}`: the image of release {number} ({}) is no longer on this engine; it cannot be rolled back to",
                        short_id(id)
                    )));
                }
            }
            let mut all = images(s, &first, false, &reporter.progress)?;
            all.extend(ids.clone());
            all
        }
        None => images(s, &first, o.build, &reporter.progress)?,
    };
    ctx.image_ids = ids.clone();
    let mut desired = desired_state(&s.loaded.project, &ctx)?;
    let names = rollback_names(s, o)?;
    apply_rollback(&mut desired, o, &names);
    ensure_proxy_network(s, &desired)?;
    let before = actual(s)?;

    // What changed: services whose running containers differ from the desired spec.
    let mut changed: Vec<String> = Vec::new();
    for d in &desired.services {
        let current: Vec<_> = before
            .project_containers(&project)
            .into_iter()
            .filter(|c| c.service == d.name && !c.oneoff)
            .collect();
        if current.is_empty() {
            continue;
        }
        // A rollback too changes only what differs: a service whose containers already run
        // the release's configuration and image (an unchanged db) is left running.
        let differs = current
            .iter()
            .any(|c| c.hash != Some(d.config_hash.as_str()) || !c.is_up())
            || route_changes(s, traffic_ref, policies.get(&d.name))?;
        if differs && (o.services.is_empty() || o.services.contains(&d.name)) {
            changed.push(d.name.clone());
        }
    }
    let preliminary = create_missing(&desired, &before, &o.services)?;
    if changed.is_empty() && preliminary.is_noop() && o.rollback.is_none() {
        attach_routes(s, &desired, &policies, traffic_ref, &on)?;
        reporter.done(
            serde_json::json!({"event": "done", "outcome": "unchanged"}),
            &format!("{project}: nothing to deploy, every service runs its desired configuration"),
        );
        return Ok(());
    }

    // Record the release.
    let strategy = changed
        .iter()
        .filter_map(|c| policies.get(c))
        .find(|p| matches!(p.kind, Kind::Routed(_)))
        .map(|p| strategy_name(p.strategy))
        .unwrap_or("rolling");
    let new = NewRelease {
        git_commit: git_commit(&s.loaded.project_dir),
        config_hash: blake3::hash(
            desired
                .services
                .iter()
                .map(|d| format!("{}={};", d.name, d.config_hash))
                .collect::<String>()
                .as_bytes(),
        )
        .to_hex()
        .to_string(),
        strategy: strategy.to_string(),
        services: desired
            .services
            .iter()
            .filter_map(|d| {
                ids.get(&d.name).map(|id| ServiceImage {
                    service: d.name.clone(),
                    image_ref: d.image.clone(),
                    image_id: id.clone(),
                    config_hash: d.config_hash.clone(),
                })
            })
            .collect(),
        rollback_of: o.rollback.as_ref().map(|(n, _)| *n),
    };
    let rel = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .begin_release(&project, &new)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let number = rel.number;
    let journal = |step: JournalStep| {
        if let Err(e) = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal_append(&project, number, step)
        {
            crate::report::warning(&format!("cannot write the deploy journal: {e}"));
        }
    };
    // The whole desired spec of every service goes into the journal, so that a rollback
    // returns to the release's configuration (environment included), not only its images.
    let specs = desired
        .services
        .iter()
        .map(|d| (d.name.clone(), d.containers.clone()))
        .collect();
    journal(JournalStep::Begin {
        services: changed.clone(),
        specs,
    });
    let mut created: Vec<String> = preliminary
        .steps
        .iter()
        .filter_map(|st| match st {
            berth_deploy::Step::Create { service, .. } => Some(service.clone()),
            _ => None,
        })
        .collect();
    created.dedup();
    on(DeployEvent::Release {
        number,
        services: changed.clone(),
        created,
    });
    // `berth promote` and `berth abort` (other processes) append to this release's journal.
    let control = || -> Option<Manual> {
        let entries = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal(&project, number)
            .ok()?;
        entries.iter().rev().find_map(|e| match e.step {
            JournalStep::Promote => Some(Manual::Promote),
            JournalStep::Abort => Some(Manual::Abort),
            _ => None,
        })
    };
    let d = Deployer {
        engine: &s.engine,
        traffic: traffic_ref,
        project: &project,
        release: number,
        on: &on,
        journal: &journal,
        control: &control,
    };
    let finish = |outcome: Outcome| {
        store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish_release(&project, number, outcome)
            .map_err(|e| CliError::Failed(e.to_string()))
    };

    // The containers of the new release carry its number.
    label_release(&mut desired, number);

    // What does not exist yet is created as `up` would (nothing running is touched).
    let first_plan = create_missing(&desired, &before, &o.services)?;
    let selected: Vec<String> = desired.services.iter().map(|d| d.name.clone()).collect();
    let exec = s.rt.block_on(execute(
        &s.engine,
        &desired,
        &first_plan,
        &ExecuteOptions {
            remove_anonymous_volumes: false,
            wait_for: selected,
            settle_check: vec![],
        },
        &|_| {},
    ));
    if let Err(e) = exec {
        finish(Outcome::Failed(e.to_string()))?;
        return Err(e.into());
    }

    // Release commands (migrations), once, in the new image, before traffic moves.
    for name in &changed {
        let Some(cmd) = policies.get(name).and_then(|p| p.release_command.clone()) else {
            continue;
        };
        let spec = desired
            .service(name)
            .and_then(|d| d.containers.first())
            .cloned();
        if let Some(spec) = spec {
            if let Err(e) =
                s.rt.block_on(release::run_release_command(&d, name, &spec, &cmd))
            {
                finish(Outcome::Failed(e.to_string()))?;
                return Err(release_failure(e));
            }
        }
    }

    // Roll each changed service, in dependency order.
    let updates: Vec<ServiceUpdate> = changed
        .iter()
        .filter_map(|name| {
            let d = desired.service(name)?;
            let old = before
                .containers
                .iter()
                .filter(|c| {
                    c.labels.get(labels::COMPOSE_SERVICE) == Some(name)
                        && c.labels.get(labels::COMPOSE_ONEOFF).map(String::as_str) != Some("True")
                })
                .cloned()
                .collect();
            let mut policy = policies.get(name)?.clone();
            if o.rollback.is_some() && policy.strategy == Strategy::Canary {
                // A rollback returns to a known release; it is not tried on a share of traffic.
                policy.strategy = Strategy::Rolling;
            }
            Some(ServiceUpdate {
                service: name.clone(),
                specs: d.containers.clone(),
                old,
                policy,
            })
        })
        .collect();
    let rolled = s.rt.block_on(release::roll_all(&d, &updates));
    match rolled {
        Ok(()) => {}
        Err(e) => {
            let outcome = match &e {
                ReleaseError::RolledBack { .. } => Outcome::RolledBack(e.to_string()),
                _ => Outcome::Failed(e.to_string()),
            };
            finish(outcome)?;
            return Err(release_failure(e));
        }
    }

    // Commit: the release is good; old containers go, except a blue-green service's previous
    // set, which stays running (renamed aside) for an instant `berth rollback` until the next
    // deploy, `up` or rollback, or until `--keep-old` has passed.
    let standby: Vec<String> = if o.keep_old.is_zero() {
        Vec::new()
    } else {
        updates
            .iter()
            .filter(|u| {
                u.policy.strategy == Strategy::BlueGreen && matches!(u.policy.kind, Kind::Routed(_))
            })
            .map(|u| u.service.clone())
            .collect()
    };
    let retire: Vec<String> = changed
        .iter()
        .filter(|c| !standby.contains(c))
        .cloned()
        .collect();
    if !standby.is_empty() {
        journal(JournalStep::Standby {
            services: standby.clone(),
            until: berth_deploy::clock::now_ms() + o.keep_old.as_millis() as u64,
        });
        on(DeployEvent::Step {
            service: standby.join(","),
            message: format!(
                "the previous set stays running for up to {}s for an instant rollback",
                o.keep_old.as_secs()
            ),
        });
    }
    s.rt.block_on(release::commit(&d, &retire))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    attach_routes(s, &desired, &policies, traffic_ref, &on)?;
    finish(Outcome::Succeeded)?;
    let secs = started.elapsed().as_secs_f64();
    reporter.done(
        serde_json::json!({"event": "done", "outcome": "succeeded", "release": number, "services": changed, "duration_ms": (secs * 1000.0) as u64}),
        &format!("{project}: release {number} deployed in {secs:.1}s"),
    );
    Ok(())
}

/// Whether the service's route in the proxy has other settings than its `x-berth.proxy`
/// (port, host, path prefix, health path). Such a change is a release like a new image: new
/// replicas are proven under the new settings before the route moves to them.
fn route_changes(
    s: &Session,
    traffic: Option<&Traffic>,
    policy: Option<&Policy>,
) -> Result<bool, CliError> {
    let (
        Some(t),
        Some(Policy {
            kind: Kind::Routed(route),
            ..
        }),
    ) = (traffic, policy)
    else {
        return Ok(false);
    };
    let live =
        s.rt.block_on(t.route_spec(&route.name))
            .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(live.is_some_and(|live| !berth_deploy::route_change::changes(&live, route).is_empty()))
}

/// The plan that creates what does not exist yet, as `up` would, and touches nothing that
/// runs: a deploy rolls changed services itself.
fn create_missing(
    desired: &berth_deploy::Desired,
    before: &berth_deploy::Actual,
    services: &[String],
) -> Result<berth_deploy::Plan, CliError> {
    Ok(plan(
        desired,
        before,
        &PlanOptions {
            remove_orphans: false,
            force_recreate: false,
            no_recreate: true,
            services: services.to_vec(),
        },
    )?)
}

/// For a rollback: the image of each service by the name its release gave it (`name:tag`),
/// where that name still means the release's image on this engine. Containers made from it
/// show the name in `ps`, as the compose file writes it; an image whose tag has moved on has
/// no name left, and is run by its id.
fn rollback_names(s: &Session, o: &Options) -> Result<BTreeMap<String, String>, CliError> {
    let Some((_, ids)) = &o.rollback else {
        return Ok(BTreeMap::new());
    };
    let mut names = BTreeMap::new();
    for (svc, name) in &o.rollback_refs {
        if name.starts_with("sha256:") {
            continue;
        }
        let now = s.rt.block_on(s.engine.image_id(name))?;
        if now.is_some() && now.as_ref() == ids.get(svc) {
            names.insert(svc.clone(), name.clone());
        }
    }
    Ok(names)
}

/// For a rollback: the release's own specs (or at least its image ids) replace the desired
/// ones, hashed as every other path hashes (the release label is set once the new release has
/// its number). `names` are the images by name where the name still means the release's image
/// (see `rollback_names`); containers run under that name, which leaves the hash as it is.
fn apply_rollback(
    desired: &mut berth_deploy::Desired,
    o: &Options,
    names: &BTreeMap<String, String>,
) {
    if let Some((_, ids)) = &o.rollback {
        desired.pin_release(&o.rollback_specs, ids);
        for d in desired.services.iter_mut() {
            if let Some(name) = names.get(&d.name) {
                d.image = name.clone();
                for c in d.containers.iter_mut() {
                    c.image = name.clone();
                }
            }
        }
    }
}

/// Labels every container of the desired state with the release that creates it.
fn label_release(desired: &mut berth_deploy::Desired, number: u64) {
    for c in desired
        .services
        .iter_mut()
        .flat_map(|d| d.containers.iter_mut())
    {
        c.labels
            .insert(labels::RELEASE.into(), format!("r{number}"));
    }
}

/// Routed services that did not change still get their route (a first deploy after `up`, or
/// a proxy that lost its state): the proxy is pointed at their running containers.
fn attach_routes(
    s: &Session,
    desired: &berth_deploy::Desired,
    policies: &BTreeMap<String, Policy>,
    traffic: Option<&Traffic>,
    on: &(dyn Fn(DeployEvent) + Sync),
) -> Result<(), CliError> {
    let project = s.project().to_string();
    let journal = |_: JournalStep| {};
    let d = Deployer {
        engine: &s.engine,
        traffic,
        project: &project,
        release: 0,
        on,
        journal: &journal,
        control: &|| None,
    };
    for svc in &desired.services {
        if let Some(p) = policies.get(&svc.name) {
            s.rt.block_on(d.attach(&svc.name, p))
                .map_err(|e| CliError::Failed(e.to_string()))?;
        }
    }
    Ok(())
}

/// The rollout policy of every service whose policy is valid. `up` uses them to revert and to
/// route what it started; a service whose `x-berth` a deploy would refuse is left alone here.
fn valid_policies(s: &Session, desired: &berth_deploy::Desired) -> BTreeMap<String, Policy> {
    desired
        .services
        .iter()
        .filter_map(|d| {
            let svc = &s.loaded.project.services[&d.name];
            let spec = d.containers.first()?;
            let p = berth_deploy::policy(&s.loaded.project, &d.name, svc, spec, d.health_deadline)
                .ok()?;
            Some((d.name.clone(), p))
        })
        .collect()
}

/// After `berth up`: routed services are pointed at their containers when the proxy runs
/// (`up` recreates containers without a deploy's traffic moves; this keeps the proxy's sets in
/// step), and a warning says how to start it when it does not.
pub(crate) fn route_after_up(s: &Session, desired: &berth_deploy::Desired) -> Result<(), CliError> {
    let mut policies = valid_policies(s, desired);
    policies.retain(|_, p| matches!(p.kind, Kind::Routed(_)));
    if policies.is_empty() {
        return Ok(());
    }
    let traffic = Traffic::new(AdminClient::new(super::proxy::admin_socket(None)));
    if let Err(e) = s.rt.block_on(traffic.check()) {
        crate::report::warning(&format!(
            "{} not routed yet: {e}",
            policies.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        return Ok(());
    }
    attach_routes(s, desired, &policies, Some(&traffic), &|_| {})
}

/// After `berth up`, when the project has a release history: if what runs now differs from
/// the newest succeeded release (`up` changed a service's configuration or image), it is
/// recorded as a release of its own, strategy `up`, with the specs a `rollback` returns to.
/// So `releases` and `rollback` always know what runs. Nothing is recorded for a project never
/// deployed, nor when `up` changed nothing.
pub(crate) fn record_up(
    s: &Session,
    desired: &berth_deploy::Desired,
    ids: &BTreeMap<String, String>,
) -> Result<(), CliError> {
    if !state_dir().join("state.db").exists() {
        return Ok(());
    }
    let project = s.project().to_string();
    let not_recorded = |e: &dyn std::fmt::Display| {
        crate::report::warning(&format!(
            "`berth up` changed what runs, but the release history could not record it: {e}"
        ));
    };
    let mut store = match open_store() {
        Ok(store) => store,
        Err(e) => {
            not_recorded(&e);
            return Ok(());
        }
    };
    let last = store
        .last_succeeded(&project)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let Some(last) = last else { return Ok(()) };
    let recorded = |name: &str| last.services.iter().find(|r| r.service == name);
    let changed: Vec<String> = desired
        .services
        .iter()
        .filter(|d| recorded(&d.name).is_none_or(|r| r.config_hash != d.config_hash))
        .map(|d| d.name.clone())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let _lock = match lock(&project, "berth up") {
        Ok(l) => l,
        Err(e) => {
            not_recorded(&e);
            return Ok(());
        }
    };
    let mut services: Vec<ServiceImage> = desired
        .services
        .iter()
        .filter_map(|d| {
            ids.get(&d.name).map(|id| ServiceImage {
                service: d.name.clone(),
                image_ref: d.image.clone(),
                image_id: id.clone(),
                config_hash: d.config_hash.clone(),
            })
        })
        .collect();
    // Services `up` did not select run what the last release recorded.
    for r in &last.services {
        if !services.iter().any(|x| x.service == r.service) {
            services.push(r.clone());
        }
    }
    let new = NewRelease {
        git_commit: git_commit(&s.loaded.project_dir),
        config_hash: blake3::hash(
            services
                .iter()
                .map(|x| format!("{}={};", x.service, x.config_hash))
                .collect::<String>()
                .as_bytes(),
        )
        .to_hex()
        .to_string(),
        strategy: "up".to_string(),
        services,
        rollback_of: None,
    };
    let rel = store
        .begin_release(&project, &new)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let specs = desired
        .services
        .iter()
        .map(|d| (d.name.clone(), d.containers.clone()))
        .collect();
    store
        .journal_append(
            &project,
            rel.number,
            JournalStep::Begin {
                services: changed.clone(),
                specs,
            },
        )
        .and_then(|_| store.finish_release(&project, rel.number, Outcome::Succeeded))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "{project}: release {} recorded (`berth up` changed {})",
        rel.number,
        changed.join(", ")
    );
    Ok(())
}

/// Converges a release that a killed process left running.
fn recover(
    s: &Session,
    store: &Mutex<Store>,
    project: &str,
    number: u64,
    policies: &BTreeMap<String, Policy>,
    traffic: Option<&Traffic>,
    on: &(dyn Fn(DeployEvent) + Sync),
) -> Result<(), CliError> {
    let entries = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .journal(project, number)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let j = read_journal(&entries);
    on(DeployEvent::Warning {
        message: format!(
            "release {number} was interrupted; {} it first",
            if j.committed {
                "finishing"
            } else {
                "reverting"
            }
        ),
    });
    let journal = |step: JournalStep| {
        let _ = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal_append(project, number, step);
    };
    let d = Deployer {
        engine: &s.engine,
        traffic,
        project,
        release: number,
        on,
        journal: &journal,
        control: &|| None,
    };
    // The one-off release command container, if it was running.
    for name in &j.services {
        let one = format!("{project}-{name}-release-r{number}");
        if let Some(c) = s.rt.block_on(s.engine.inspect_container(&one))? {
            s.rt.block_on(s.engine.remove_container(&c.id, true, false))?;
        }
    }
    let committed = s
        .rt
        .block_on(release::recover(&d, &j, policies))
        .map_err(|e| CliError::Failed(format!("converging interrupted release {number}: {e}")))?;
    let outcome = if committed {
        Outcome::Succeeded
    } else {
        Outcome::Interrupted(
            "berth was stopped during the deploy; the next command reverted it".into(),
        )
    };
    store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .finish_release(project, number, outcome)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(())
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

/// Removes the previous set a blue-green deploy kept running (containers renamed aside):
/// its window ends with the next command that changes the project.
fn retire_standbys(s: &Session) -> Result<(), CliError> {
    for c in s.containers(&[], true)? {
        if berth_deploy::rollout::canonical_name(&c.name) != c.name {
            s.rt.block_on(s.engine.remove_container(&c.id, true, false))?;
        }
    }
    Ok(())
}

/// `berth up` first converges what a killed deploy left (and a blue-green standby), so that
/// it plans against one container per replica.
pub(crate) fn converge_interrupted(s: &Session) -> Result<(), CliError> {
    let project = s.project().to_string();
    // No state store means nothing was ever deployed here: `up` must not create one, nor
    // fail because its directory is not writable.
    if !state_dir().join("state.db").exists() {
        return Ok(());
    }
    let store = match open_store() {
        Ok(store) => store,
        Err(e) => {
            crate::report::warning(&format!(
                "cannot read the deploy state, so an interrupted deploy is not checked: {e}"
            ));
            return Ok(());
        }
    };
    let running = store
        .running(&project)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let Some(r) = running else {
        return retire_standbys(s);
    };
    let _lock = lock(&project, "berth up")?;
    let ctx = Context {
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        ..Default::default()
    };
    let first = desired_state(&s.loaded.project, &ctx)?;
    let policies = valid_policies(s, &first);
    let traffic = Traffic::new(AdminClient::new(super::proxy::admin_socket(None)));
    let routed = policies.values().any(|p| matches!(p.kind, Kind::Routed(_)))
        && s.rt.block_on(traffic.check()).is_ok();
    let progress = Progress::new();
    let on = |e: DeployEvent| {
        if let DeployEvent::Warning { message } = e {
            progress.message(&format!("warning: {message}"));
        }
    };
    let store = Mutex::new(store);
    let result = recover(
        s,
        &store,
        &project,
        r.number,
        &policies,
        routed.then_some(&traffic),
        &on,
    );
    progress.finish();
    result?;
    retire_standbys(s)
}
