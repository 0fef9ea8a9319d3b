//! `berth deploy` and `berth rollback`: the flags resolved here, the release run by
//! `berth_deploy::release` and shown by [`super::release_view`]. Also what `berth up` asks of
//! the release history: converging an interrupted deploy first, routing and recording after.

use super::release_view::{release_error, Reporter};
use super::session::Session;
use super::CliError;
use crate::args::{DeployArgs, ProjectArgs, RollbackArgs, TextFormat};
use crate::progress::Progress;
use berth_compose::berth_ext::Strategy;
use berth_deploy::policy::parse_strategy;
use berth_deploy::release::{
    self, Converged, RecordUp, ReleaseEvent, Request, Rollback, RouteAfterUp, RunOutcome, StateDir,
};
use berth_deploy::rollout::DeployEvent;
use berth_deploy::{JournalStep, Traffic};
use berth_proxy_api::AdminClient;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where releases and locks live (see [`crate::env::Env::deploy_state_dir`]).
pub(crate) fn state_dir() -> StateDir {
    StateDir::new(crate::env::get().deploy_state_dir())
}

/// The high phase of `deploy` and `rollback`: flags checked and resolved.
struct Options {
    services: Vec<String>,
    strategy: Option<Strategy>,
    keep_old: Duration,
    build: bool,
    format: TextFormat,
    socket: PathBuf,
    rollback: Option<Rollback>,
    command: &'static str,
    /// The backup before a release command; `None` with `--no-backup` or nothing declared.
    backup: Option<super::backup::PreRelease>,
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
    let backup = if a.no_backup {
        None
    } else {
        super::backup::pre_release(&s.loaded.project)?
    };
    let opts = Options {
        services: a.services.clone(),
        strategy,
        keep_old,
        build: a.build,
        format: a.format,
        socket: super::proxy::admin_socket(a.admin_socket.clone()),
        rollback: None,
        command: "berth deploy",
        backup,
    };
    run_release(&s, opts)
}

pub fn rollback(p: &ProjectArgs, a: &RollbackArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    let store = state_dir().open_store().map_err(release_error)?;
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
        rollback: Some(Rollback {
            number: target.number,
            ids,
            refs,
            specs,
        }),
        command: "berth rollback",
        backup: None,
    };
    // The newest release after the target that backed up before its release command.
    let undone = releases
        .iter()
        .find(|r| r.number > target.number && !r.backup.is_empty())
        .cloned();
    run_release(&s, opts)?;
    if let Some(r) = undone {
        super::backup::offer_restore(r.number, &r.backup);
    }
    Ok(())
}

fn run_release(s: &Session, o: Options) -> Result<(), CliError> {
    let project = s.project().to_string();
    let started = Instant::now();
    let reporter = Reporter::new(o.format == TextFormat::Json);
    let on = |e: ReleaseEvent| reporter.emit(e);
    let state = state_dir();
    let traffic = Traffic::new(AdminClient::new(&o.socket));
    let hook = o
        .backup
        .as_ref()
        .map(|b| b.hook(&s.engine, &s.loaded.project));
    let req = Request {
        engine: &s.engine,
        project: &s.loaded.project,
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        state: &state,
        traffic: &traffic,
        services: o.services,
        strategy: o.strategy,
        keep_old: o.keep_old,
        build: o.build,
        rollback: o.rollback,
        command: o.command,
        before_release_command: hook.as_deref(),
    };
    // Validate everything before any change; the proxy is started (when a service is routed
    // and it does not run yet) only for a release that can go ahead.
    let validated = release::validate(&req, &on).map_err(release_error)?;
    super::proxy::start_for_deploy(s, &o.socket, validated.routed)?;
    let outcome =
        s.rt.block_on(release::run(&req, validated, &on))
            .map_err(release_error)?;
    match outcome {
        RunOutcome::Unchanged => reporter.done(
            serde_json::json!({"event": "done", "outcome": "unchanged"}),
            &format!("{project}: nothing to deploy, every service runs its desired configuration"),
        ),
        RunOutcome::Deployed { number, services } => {
            let secs = started.elapsed().as_secs_f64();
            reporter.done(
                serde_json::json!({"event": "done", "outcome": "succeeded", "release": number, "services": services, "duration_ms": (secs * 1000.0) as u64}),
                &format!("{project}: release {number} deployed in {secs:.1}s"),
            );
        }
    }
    Ok(())
}

/// After `berth up`: routed services are pointed at their containers when the proxy runs,
/// and a warning says how to start it when it does not.
pub(crate) fn route_after_up(s: &Session, desired: &berth_deploy::Desired) -> Result<(), CliError> {
    let traffic = Traffic::new(AdminClient::new(super::proxy::admin_socket(None)));
    let routed = s.rt.block_on(release::route_after_up(
        &s.engine,
        &s.loaded.project,
        desired,
        &traffic,
    ));
    if let RouteAfterUp::ProxyDown { services, error } = routed.map_err(release_error)? {
        crate::report::warning(&format!("{} not routed yet: {error}", services.join(", ")));
    }
    Ok(())
}

/// After `berth up`, when the project has a release history: what `up` changed is recorded
/// as a release of its own (see [`release::record_up`]).
pub(crate) fn record_up(
    s: &Session,
    desired: &berth_deploy::Desired,
    ids: &BTreeMap<String, String>,
) -> Result<(), CliError> {
    let project = s.project();
    let recorded = release::record_up(&state_dir(), project, &s.loaded.project_dir, desired, ids);
    match recorded.map_err(release_error)? {
        RecordUp::Nothing => {}
        RecordUp::NotRecorded(e) => crate::report::warning(&format!(
            "`berth up` changed what runs, but the release history could not record it: {e}"
        )),
        RecordUp::Recorded { number, changed } => println!(
            "{project}: release {number} recorded (`berth up` changed {})",
            changed.join(", ")
        ),
    }
    Ok(())
}

/// `berth up` first converges what a killed deploy left (and a blue-green standby), so that
/// it plans against one container per replica.
pub(crate) fn converge_interrupted(s: &Session) -> Result<(), CliError> {
    let traffic = Traffic::new(AdminClient::new(super::proxy::admin_socket(None)));
    // The spinner starts with the first warning, which converging an interrupted release
    // always gives first.
    let progress: OnceLock<Progress> = OnceLock::new();
    let on = |e: DeployEvent| {
        if let DeployEvent::Warning { message } = e {
            progress
                .get_or_init(Progress::new)
                .message(&format!("warning: {message}"));
        }
    };
    let converged = s.rt.block_on(release::converge_interrupted(
        &s.engine,
        &s.loaded.project,
        s.loaded.project_dir.clone(),
        s.loaded.files.clone(),
        &state_dir(),
        &traffic,
        &on,
    ));
    if let Some(p) = progress.get() {
        p.finish();
    }
    if let Converged::Unreadable(e) = converged.map_err(release_error)? {
        crate::report::warning(&format!(
            "cannot read the deploy state, so an interrupted deploy is not checked: {e}"
        ));
    }
    Ok(())
}
