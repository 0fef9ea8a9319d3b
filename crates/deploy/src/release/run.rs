//! `berth deploy` and `berth rollback`: one release, from the validated project to its commit.
//!
//! The order: validate everything (desired state and every service's policy) before touching
//! anything; then take the project lock, converge a release a previous process left half done,
//! retire standbys, resolve images, find what changed, record the release, create what does
//! not exist yet (as `up` would), run release commands, roll each changed service, then commit
//! (keeping blue-green standbys) or revert, and attach the routes of unchanged services.

use super::attach::attach_routes;
use super::error::ReleaseRunError;
use super::record::{config_hash, git_commit, service_images};
use super::recover::{recover, retire_standbys};
use super::state::StateDir;
use crate::actual::Actual;
use crate::desired::{desired_state, Context, Desired};
use crate::images::{ensure_proxy_network, ImageEvent};
use crate::labels;
use crate::plan::{plan, Plan, PlanOptions, Step};
use crate::policy::{strategy_name, Kind, Policy};
use crate::release::{self as release_ops, ReleaseError};
use crate::rollout::{DeployEvent, Deployer, Manual, ServiceUpdate};
use crate::store::{JournalStep, NewRelease, Outcome};
use crate::traffic::Traffic;
use crate::{execute, ExecuteOptions};
use berth_compose::berth_ext::Strategy;
use berth_compose::Project;
use berth_engine::{ContainerSpec, Engine};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// What a release reports while it works.
#[derive(Debug, Clone)]
pub enum ReleaseEvent {
    /// A rollout event, shown live or as a JSON line.
    Deploy(DeployEvent),
    /// An image build's progress (shown live only).
    Image(ImageEvent),
    /// A warning outside the event stream (a problem of the project or of the journal).
    Warning(String),
    /// The backup taken before the release command is in the repository.
    BackedUp { snapshots: Vec<String> },
}

/// What a deploy runs before its first release command: the backup of `berth deploy`, given
/// by the CLI so that deploys do not depend on backups. It gets the release number and
/// returns the ids of the snapshots it made, or why it failed. The future owns what it uses
/// (clones of the engine handle and the project), so the hook borrows nothing of the release.
pub type BeforeRisk =
    dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<Vec<String>, String>>>> + Sync;

/// A rollback: the release whose images and configuration run again.
#[derive(Debug, Clone, Default)]
pub struct Rollback {
    pub number: u64,
    /// Image ids by service.
    pub ids: BTreeMap<String, String>,
    /// The images as that release named them (`name:tag`), by service.
    pub refs: BTreeMap<String, String>,
    /// The release's recorded container specs by service (its configuration).
    pub specs: BTreeMap<String, Vec<ContainerSpec>>,
}

/// One deploy or rollback, with every flag resolved.
pub struct Request<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    /// The project directory and compose files, for the labels of what is created.
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub state: &'a StateDir,
    /// The proxy's admin interface.
    pub traffic: &'a Traffic,
    /// Services named on the command line; empty means all.
    pub services: Vec<String>,
    /// `--strategy`: replaces routed services' own.
    pub strategy: Option<Strategy>,
    pub keep_old: Duration,
    pub build: bool,
    pub rollback: Option<Rollback>,
    /// The command holding the project lock, as the lock shows it.
    pub command: &'static str,
    /// Run before the first release command (`None`: `--no-backup`, or nothing to back up).
    pub before_release_command: Option<&'a BeforeRisk>,
}

/// Everything validated before any change.
#[derive(Debug)]
pub struct Validated {
    pub context: Context,
    pub desired: Desired,
    pub policies: BTreeMap<String, Policy>,
    /// Whether any service is routed (then the proxy must run).
    pub routed: bool,
}

/// How a release ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every service already ran its desired configuration.
    Unchanged,
    /// Release `number` rolled `services`.
    Deployed { number: u64, services: Vec<String> },
}

/// Validates the desired state and every service's policy; touches nothing.
pub fn validate(
    req: &Request<'_>,
    on: &(dyn Fn(ReleaseEvent) + Sync),
) -> Result<Validated, ReleaseRunError> {
    let context = Context {
        working_dir: req.working_dir.clone(),
        config_files: req.config_files.clone(),
        services: req.services.clone(),
        image_ids: BTreeMap::new(),
        release: None,
    };
    let desired = desired_state(req.project, &context)?;
    for w in &desired.warnings {
        on(ReleaseEvent::Warning(w.clone()));
    }
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for d in &desired.services {
        let svc = &req.project.services[&d.name];
        let Some(spec) = d.containers.first() else {
            continue;
        };
        let mut p = crate::policy::policy(req.project, &d.name, svc, spec, d.health_deadline)
            .map_err(ReleaseRunError::Policy)?;
        if let (Some(st), Kind::Routed(_)) = (req.strategy, &p.kind) {
            p.strategy = st;
        }
        for n in &p.notes {
            on(ReleaseEvent::Deploy(DeployEvent::Warning {
                message: n.clone(),
            }));
        }
        policies.insert(d.name.clone(), p);
    }
    let routed = policies.values().any(|p| matches!(p.kind, Kind::Routed(_)));
    Ok(Validated {
        context,
        desired,
        policies,
        routed,
    })
}

/// Runs the release that `validate` accepted.
pub async fn run(
    req: &Request<'_>,
    v: Validated,
    on: &(dyn Fn(ReleaseEvent) + Sync),
) -> Result<RunOutcome, ReleaseRunError> {
    let engine = req.engine;
    let project = req.project.name.as_str();
    let policies = &v.policies;
    let on_deploy = |e: DeployEvent| on(ReleaseEvent::Deploy(e));
    if v.routed {
        req.traffic
            .check()
            .await
            .map_err(ReleaseRunError::ProxyDown)?;
    }
    let traffic = v.routed.then_some(req.traffic);

    // One deploy per project at a time; the lock says who holds it.
    let _lock = req.state.lock(project, req.command)?;
    let store = Mutex::new(req.state.open_store()?);

    // A deploy killed earlier is converged first: finished when it had committed, else
    // reverted, so this one starts from a known state.
    let running = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .running(project)?;
    if let Some(r) = running {
        recover(
            engine, &store, project, r.number, policies, traffic, &on_deploy,
        )
        .await?;
    }
    retire_standbys(engine, project).await?;

    // Images: built or found; for a rollback, the release's own image ids.
    let on_image = |e: ImageEvent| on(ReleaseEvent::Image(e));
    let ids = match &req.rollback {
        Some(rb) => {
            for (svc, id) in &rb.ids {
                if engine.image_id(id).await?.is_none() {
                    return Err(ReleaseRunError::RollbackImageGone {
                        service: svc.clone(),
                        number: rb.number,
                        id: id.clone(),
                    });
                }
            }
            let mut all = crate::images::resolve(engine, &v.desired, false, &on_image).await?;
            all.extend(rb.ids.clone());
            all
        }
        None => crate::images::resolve(engine, &v.desired, req.build, &on_image).await?,
    };
    let ctx = Context {
        image_ids: ids.clone(),
        ..v.context
    };
    let mut desired = desired_state(req.project, &ctx)?;
    if let Some(rb) = &req.rollback {
        let names = rollback_names(engine, rb).await?;
        apply_rollback(&mut desired, rb, &names);
    }
    ensure_proxy_network(engine, &desired).await?;
    let before = crate::actual::read(engine, project).await?;

    // What changed: services whose running containers differ from the desired spec.
    let mut changed: Vec<String> = Vec::new();
    for d in &desired.services {
        let Some(differs) = containers_differ(&before, project, d) else {
            continue;
        };
        // The proxy is asked only when the containers alone do not tell.
        let differs = differs || route_changes(traffic, policies.get(&d.name)).await?;
        if differs && (req.services.is_empty() || req.services.contains(&d.name)) {
            changed.push(d.name.clone());
        }
    }
    let preliminary = create_missing(&desired, &before, &req.services)?;
    if changed.is_empty() && preliminary.is_noop() && req.rollback.is_none() {
        attach_routes(engine, project, &desired, policies, traffic, &on_deploy).await?;
        return Ok(RunOutcome::Unchanged);
    }

    // Record the release.
    let new = NewRelease {
        git_commit: git_commit(&ctx.working_dir),
        config_hash: config_hash(
            desired
                .services
                .iter()
                .map(|d| (d.name.as_str(), d.config_hash.as_str())),
        ),
        strategy: release_strategy(&changed, policies).to_string(),
        services: service_images(&desired, &ids),
        rollback_of: req.rollback.as_ref().map(|rb| rb.number),
    };
    let rel = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .begin_release(project, &new)?;
    let number = rel.number;
    let journal = |step: JournalStep| {
        if let Err(e) = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal_append(project, number, step)
        {
            on(ReleaseEvent::Warning(format!(
                "cannot write the deploy journal: {e}"
            )));
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
            Step::Create { service, .. } => Some(service.clone()),
            _ => None,
        })
        .collect();
    created.dedup();
    on_deploy(DeployEvent::Release {
        number,
        services: changed.clone(),
        created,
    });
    // `berth promote` and `berth abort` (other processes) append to this release's journal.
    let control = || -> Option<Manual> {
        let entries = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal(project, number)
            .ok()?;
        entries.iter().rev().find_map(|e| match e.step {
            JournalStep::Promote => Some(Manual::Promote),
            JournalStep::Abort => Some(Manual::Abort),
            _ => None,
        })
    };
    let d = Deployer {
        engine,
        traffic,
        project,
        release: number,
        on: &on_deploy,
        journal: &journal,
        control: &control,
    };
    let finish = |outcome: Outcome| -> Result<(), ReleaseRunError> {
        store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish_release(project, number, outcome)?;
        Ok(())
    };

    // The containers of the new release carry its number.
    label_release(&mut desired, number);

    // What does not exist yet is created as `up` would (nothing running is touched).
    let first_plan = create_missing(&desired, &before, &req.services)?;
    let selected: Vec<String> = desired.services.iter().map(|d| d.name.clone()).collect();
    let exec = execute(
        engine,
        &desired,
        &first_plan,
        &ExecuteOptions {
            remove_anonymous_volumes: false,
            wait_for: selected,
            settle_check: vec![],
        },
        &|_| {},
    )
    .await;
    if let Err(e) = exec {
        finish(Outcome::Failed(e.to_string()))?;
        return Err(e.into());
    }

    // Before risk, a backup: a release command (a migration) is the step a deploy cannot
    // undo by itself, so the data it is about to change is saved first, and the release
    // record names the snapshots for `berth rollback` to offer.
    let migrates = changed.iter().any(|name| {
        policies
            .get(name)
            .is_some_and(|p| p.release_command.is_some())
    });
    if let (true, Some(backup)) = (migrates, req.before_release_command) {
        match backup(number).await {
            Ok(snapshots) => {
                store
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record_backup(project, number, &snapshots)?;
                on(ReleaseEvent::BackedUp { snapshots });
            }
            Err(e) => {
                let e = ReleaseRunError::Backup(e);
                finish(Outcome::Failed(e.to_string()))?;
                return Err(e);
            }
        }
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
            if let Err(e) = release_ops::run_release_command(&d, name, &spec, &cmd).await {
                finish(Outcome::Failed(e.to_string()))?;
                return Err(e.into());
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
            let policy = rollout_policy(policies.get(name)?, req.rollback.is_some());
            Some(ServiceUpdate {
                service: name.clone(),
                specs: d.containers.clone(),
                old,
                policy,
            })
        })
        .collect();
    if let Err(e) = release_ops::roll_all(&d, &updates).await {
        let outcome = match &e {
            ReleaseError::RolledBack { .. } => Outcome::RolledBack(e.to_string()),
            _ => Outcome::Failed(e.to_string()),
        };
        finish(outcome)?;
        return Err(e.into());
    }

    // Commit: the release is good; old containers go, except a blue-green service's previous
    // set, which stays running (renamed aside) for an instant `berth rollback` until the next
    // deploy, `up` or rollback, or until `--keep-old` has passed.
    let standby = standby_services(&updates, req.keep_old);
    let retire: Vec<String> = changed
        .iter()
        .filter(|c| !standby.contains(c))
        .cloned()
        .collect();
    if !standby.is_empty() {
        journal(JournalStep::Standby {
            services: standby.clone(),
            until: crate::clock::now_ms() + req.keep_old.as_millis() as u64,
        });
        on_deploy(DeployEvent::Step {
            service: standby.join(","),
            message: format!(
                "the previous set stays running for up to {}s for an instant rollback",
                req.keep_old.as_secs()
            ),
        });
    }
    release_ops::commit(&d, &retire).await?;
    attach_routes(engine, project, &desired, policies, traffic, &on_deploy).await?;
    finish(Outcome::Succeeded)?;
    Ok(RunOutcome::Deployed {
        number,
        services: changed,
    })
}

/// Whether a service's running containers differ from its desired spec (another config hash,
/// or not up); `None` when it has none (it is created, not rolled). A rollback too changes
/// only what differs: a service whose containers already run the release's configuration and
/// image (an unchanged db) is left running.
pub fn containers_differ(
    before: &Actual,
    project: &str,
    d: &crate::desired::DesiredService,
) -> Option<bool> {
    let current: Vec<_> = before
        .project_containers(project)
        .into_iter()
        .filter(|c| c.service == d.name && !c.oneoff)
        .collect();
    if current.is_empty() {
        return None;
    }
    Some(
        current
            .iter()
            .any(|c| c.hash != Some(d.config_hash.as_str()) || !c.is_up()),
    )
}

/// The release's strategy as `releases` shows it: that of the first changed routed service,
/// else `rolling`.
pub fn release_strategy(changed: &[String], policies: &BTreeMap<String, Policy>) -> &'static str {
    changed
        .iter()
        .filter_map(|c| policies.get(c))
        .find(|p| matches!(p.kind, Kind::Routed(_)))
        .map(|p| strategy_name(p.strategy))
        .unwrap_or("rolling")
}

/// The policy a service rolls with: a rollback returns to a known release; it is not tried on
/// a share of traffic, so a canary rolls.
pub fn rollout_policy(policy: &Policy, rollback: bool) -> Policy {
    let mut policy = policy.clone();
    if rollback && policy.strategy == Strategy::Canary {
        policy.strategy = Strategy::Rolling;
    }
    policy
}

/// The services whose previous set stays running after the commit: routed blue-green ones,
/// unless `--keep-old` is zero. The others' old containers are retired.
pub fn standby_services(updates: &[ServiceUpdate], keep_old: Duration) -> Vec<String> {
    if keep_old.is_zero() {
        return Vec::new();
    }
    updates
        .iter()
        .filter(|u| {
            u.policy.strategy == Strategy::BlueGreen && matches!(u.policy.kind, Kind::Routed(_))
        })
        .map(|u| u.service.clone())
        .collect()
}

/// Whether the service's route in the proxy has other settings than its `x-berth.proxy`
/// (port, host, path prefix, health path). Such a change is a release like a new image: new
/// replicas are proven under the new settings before the route moves to them.
async fn route_changes(
    traffic: Option<&Traffic>,
    policy: Option<&Policy>,
) -> Result<bool, ReleaseRunError> {
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
    let live = t.route_spec(&route.name).await?;
    Ok(live.is_some_and(|live| !crate::route_change::changes(&live, route).is_empty()))
}

/// The plan that creates what does not exist yet, as `up` would, and touches nothing that
/// runs: a deploy rolls changed services itself.
fn create_missing(
    desired: &Desired,
    before: &Actual,
    services: &[String],
) -> Result<Plan, ReleaseRunError> {
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
async fn rollback_names(
    engine: &Engine,
    rb: &Rollback,
) -> Result<BTreeMap<String, String>, ReleaseRunError> {
    let mut names = BTreeMap::new();
    for (svc, name) in &rb.refs {
        if name.starts_with("sha256:") {
            continue;
        }
        let now = engine.image_id(name).await?;
        if now.is_some() && now.as_ref() == rb.ids.get(svc) {
            names.insert(svc.clone(), name.clone());
        }
    }
    Ok(names)
}

/// For a rollback: the release's own specs (or at least its image ids) replace the desired
/// ones, hashed as every other path hashes (the release label is set once the new release has
/// its number). `names` are the images by name where the name still means the release's image
/// (see `rollback_names`); containers run under that name, which leaves the hash as it is.
fn apply_rollback(desired: &mut Desired, rb: &Rollback, names: &BTreeMap<String, String>) {
    desired.pin_release(&rb.specs, &rb.ids);
    for d in desired.services.iter_mut() {
        if let Some(name) = names.get(&d.name) {
            d.image = name.clone();
            for c in d.containers.iter_mut() {
                c.image = name.clone();
            }
        }
    }
}

/// Labels every container of the desired state with the release that creates it.
fn label_release(desired: &mut Desired, number: u64) {
    for c in desired
        .services
        .iter_mut()
        .flat_map(|d| d.containers.iter_mut())
    {
        c.labels
            .insert(labels::RELEASE.into(), format!("r{number}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actual::Actual;
    use crate::desired::DesiredService;
    use crate::policy::Route;
    use crate::store::ServiceImage;
    use berth_engine::ContainerSummary;

    fn worker() -> Policy {
        crate::release::placeholder_policy()
    }

    fn routed(strategy: Strategy) -> Policy {
        Policy {
            kind: Kind::Routed(Route {
                name: "shop-web".into(),
                hosts: vec![],
                path_prefix: "/".into(),
                health_path: "/health".into(),
                port: 8080,
            }),
            strategy,
            ..worker()
        }
    }

    fn update(service: &str, policy: Policy) -> ServiceUpdate {
        ServiceUpdate {
            service: service.into(),
            specs: vec![],
            old: vec![],
            policy,
        }
    }

    fn service(name: &str, hash: &str) -> DesiredService {
        DesiredService {
            name: name.into(),
            image: "app:latest".into(),
            build: None,
            replicas: 1,
            image_id: None,
            config_hash: hash.into(),
            depends_on: vec![],
            health_deadline: Duration::from_secs(60),
            containers: vec![],
        }
    }

    fn container(service: &str, hash: &str, state: &str, oneoff: bool) -> ContainerSummary {
        let labels = [
            (labels::COMPOSE_PROJECT, "shop"),
            (labels::COMPOSE_SERVICE, service),
            (labels::COMPOSE_CONTAINER_NUMBER, "1"),
            (
                labels::COMPOSE_ONEOFF,
                if oneoff { "True" } else { "False" },
            ),
            (labels::CONFIG_HASH, hash),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        ContainerSummary {
            id: format!("{service}-{hash}"),
            name: format!("shop-{service}-1"),
            image: "app:latest".into(),
            image_id: "sha256:1".into(),
            labels,
            state: state.into(),
            health: None,
            status: String::new(),
            exit_code: None,
            ports: vec![],
            created: 0,
        }
    }

    fn actual(containers: Vec<ContainerSummary>) -> Actual {
        Actual {
            containers,
            ..Default::default()
        }
    }

    #[test]
    fn the_release_strategy_is_the_first_changed_routed_services() {
        let policies: BTreeMap<String, Policy> = [
            ("db".to_string(), worker()),
            ("api".to_string(), routed(Strategy::Canary)),
            ("web".to_string(), routed(Strategy::BlueGreen)),
        ]
        .into_iter()
        .collect();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            release_strategy(&names(&["db", "web", "api"]), &policies),
            "blue-green"
        );
        assert_eq!(release_strategy(&names(&["api"]), &policies), "canary");
        // Workers alone, or nothing changed, roll.
        assert_eq!(release_strategy(&names(&["db"]), &policies), "rolling");
        assert_eq!(release_strategy(&[], &policies), "rolling");
    }

    #[test]
    fn a_rollback_rolls_a_canary_and_keeps_other_strategies() {
        let canary = routed(Strategy::Canary);
        assert_eq!(rollout_policy(&canary, true).strategy, Strategy::Rolling);
        assert_eq!(rollout_policy(&canary, false).strategy, Strategy::Canary);
        let bg = routed(Strategy::BlueGreen);
        assert_eq!(rollout_policy(&bg, true).strategy, Strategy::BlueGreen);
    }

    #[test]
    fn routed_blue_green_services_stay_on_standby_unless_keep_old_is_zero() {
        let updates = vec![
            update("web", routed(Strategy::BlueGreen)),
            update("api", routed(Strategy::Rolling)),
            // A worker has no traffic to switch back, so it has no standby.
            update(
                "jobs",
                Policy {
                    strategy: Strategy::BlueGreen,
                    ..worker()
                },
            ),
        ];
        assert_eq!(
            standby_services(&updates, Duration::from_secs(600)),
            ["web"]
        );
        assert!(standby_services(&updates, Duration::ZERO).is_empty());
    }

    #[test]
    fn a_service_changes_when_a_container_has_another_hash_or_is_not_up() {
        let web = service("web", "h2");
        let same = actual(vec![container("web", "h2", "running", false)]);
        assert_eq!(containers_differ(&same, "shop", &web), Some(false));
        let other = actual(vec![
            container("web", "h2", "running", false),
            container("web", "h1", "running", false),
        ]);
        assert_eq!(containers_differ(&other, "shop", &web), Some(true));
        let stopped = actual(vec![container("web", "h2", "exited", false)]);
        assert_eq!(containers_differ(&stopped, "shop", &web), Some(true));
        // One-offs do not count; without containers a service is created, not rolled.
        let oneoff = actual(vec![container("web", "h1", "running", true)]);
        assert_eq!(containers_differ(&oneoff, "shop", &web), None);
        assert_eq!(containers_differ(&actual(vec![]), "shop", &web), None);
    }

    #[test]
    fn the_config_hash_covers_every_service_in_order() {
        let a = crate::release::config_hash([("db", "1"), ("web", "2")]);
        assert_eq!(a, crate::release::config_hash([("db", "1"), ("web", "2")]));
        assert_ne!(a, crate::release::config_hash([("db", "1"), ("web", "3")]));
        assert_ne!(a, crate::release::config_hash([("web", "2"), ("db", "1")]));
        assert_eq!(
            a,
            blake3::hash(b"db=1;web=2;").to_hex().to_string(),
            "the hash releases already recorded"
        );
    }

    #[test]
    fn up_records_services_whose_hash_differs_or_that_are_new() {
        let desired = Desired {
            project: "shop".into(),
            networks: vec![],
            external_networks: vec![],
            volumes: vec![],
            external_volumes: vec![],
            services: vec![service("db", "1"), service("web", "2"), service("new", "3")],
            levels: vec![],
            all_services: Default::default(),
            warnings: vec![],
        };
        let last = vec![
            ServiceImage {
                service: "db".into(),
                image_ref: "db:15".into(),
                image_id: "sha256:d".into(),
                config_hash: "1".into(),
            },
            ServiceImage {
                service: "web".into(),
                image_ref: "web:1".into(),
                image_id: "sha256:w".into(),
                config_hash: "old".into(),
            },
        ];
        assert_eq!(
            crate::release::changed_since(&desired, &last),
            ["web", "new"]
        );
    }
}
