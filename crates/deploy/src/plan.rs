//! The plan: the ordered steps that take the engine from the actual to the desired state.
//!
//! Carrying a plan out is the executor's job; the plan only decides. Every step names the
//! container it acts on, so `berth up --dry-run` can print the plan line by line.

use crate::actual::{Actual, Observed};
use crate::desired::{Condition, Desired, DesiredService};
use crate::error::PlanError;
use crate::order::DependencyGraph;
use berth_compose::duration::format_go;
use berth_engine::{ContainerSpec, NetworkSpec, VolumeSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// Flags of `berth up`, as in `docker compose up`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Remove containers of services that are no longer in the project.
    pub remove_orphans: bool,
    /// Recreate containers even when their configuration did not change.
    pub force_recreate: bool,
    /// Never recreate existing containers, even when their configuration changed.
    pub no_recreate: bool,
    /// Services to converge (plus their dependencies); empty means all of `desired`.
    pub services: Vec<String>,
}

/// Flags of `berth down`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownOptions {
    /// `-v`: also remove the project's named volumes (never external ones).
    pub volumes: bool,
    /// Also remove containers of services that are no longer in the project.
    pub remove_orphans: bool,
    /// Only these services' containers (one-offs included); empty means the whole project.
    /// Networks, volumes and orphans are left alone when services are named: the other
    /// services still use them.
    pub services: Vec<String>,
}

/// An existing container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub service: String,
}

impl ContainerRef {
    fn of(o: &Observed<'_>) -> Self {
        ContainerRef {
            id: o.summary.id.clone(),
            name: o.summary.name.trim_start_matches('/').to_string(),
            service: o.service.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecreateReason {
    /// The config hash differs.
    ConfigChanged,
    /// `--force-recreate`.
    Forced,
    /// The container has no berth config hash (see [`crate::actual`] on adoption).
    NotCreatedByBerth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveReason {
    /// Its service is no longer in the project.
    Orphan,
    /// Its replica number is above the desired replica count.
    ScaleDown,
    /// Another container already serves the same replica number.
    Duplicate,
    /// Its number label is missing or unreadable, so it can never be matched.
    Unnumbered,
    /// `berth down`.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    UpToDate,
    /// Created by someone else (e.g. `docker-compose up`) but running what the project asks.
    Adopted,
    /// The configuration changed but `--no-recreate` was given.
    NoRecreate,
}

/// One thing to do. Steps are listed in order, and each one assumes the previous ones of its
/// service, level and resources succeeded; the executor runs steps of independent services
/// concurrently (see `execute::batches`).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    CreateNetwork(NetworkSpec),
    CreateVolume(VolumeSpec),
    /// An external network that exists; nothing to do but shown in the plan.
    UseExternalNetwork(String),
    UseExternalVolume(String),
    /// Create a container (attach its extra networks), without starting it.
    Create {
        service: String,
        spec: Box<ContainerSpec>,
    },
    /// Start a container by name.
    Start {
        service: String,
        name: String,
    },
    /// Stop and remove `old`, then create and start `spec`. The new container is created only
    /// after the old one is gone because both have the same name.
    Recreate {
        old: ContainerRef,
        spec: Box<ContainerSpec>,
        reason: RecreateReason,
    },
    /// Restart a container because a dependency with `restart: true` was recreated or
    /// restarted, as Compose does.
    Restart {
        container: ContainerRef,
        timeout: Option<Duration>,
        dependency: String,
    },
    /// Stop with the given grace period (the engine's default when None).
    Stop {
        container: ContainerRef,
        timeout: Option<Duration>,
    },
    /// Remove a stopped container.
    Remove {
        container: ContainerRef,
        reason: RemoveReason,
    },
    /// Nothing to do; listed so the dry run shows every container.
    Keep {
        container: ContainerRef,
        reason: KeepReason,
    },
    /// Wait until every container of `service` meets `condition`; fail after `deadline`
    /// (None: no limit, for `service_completed_successfully`, as Compose waits for a one-shot
    /// job however long it runs; the systemd unit's start timeout still bounds it).
    WaitHealthy {
        service: String,
        condition: Condition,
        deadline: Option<Duration>,
    },
    /// Something the user should know; not an action.
    Warn(String),
    RemoveNetwork(String),
    RemoveVolume(String),
}

impl Step {
    /// Whether the step changes anything on the engine.
    pub fn is_action(&self) -> bool {
        !matches!(
            self,
            Step::Keep { .. }
                | Step::Warn(_)
                | Step::UseExternalNetwork(_)
                | Step::UseExternalVolume(_)
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateNetwork(n) => write!(f, "create network {}", n.name),
            Step::CreateVolume(v) => write!(f, "create volume {}", v.name),
            Step::UseExternalNetwork(n) => write!(f, "use external network {n}"),
            Step::UseExternalVolume(v) => write!(f, "use external volume {v}"),
            Step::Create { spec, .. } => write!(f, "create container {}", spec.name),
            Step::Start { name, .. } => write!(f, "start container {name}"),
            Step::Recreate { old, reason, .. } => {
                let why = match reason {
                    RecreateReason::ConfigChanged => "config changed",
                    RecreateReason::Forced => "forced",
                    RecreateReason::NotCreatedByBerth => "not created by berth",
                };
                write!(f, "recreate container {} ({why})", old.name)
            }
            Step::Restart {
                container,
                dependency,
                ..
            } => write!(
                f,
                "restart container {} (dependency {dependency} changed)",
                container.name
            ),
            Step::Stop { container, .. } => write!(f, "stop container {}", container.name),
            Step::Remove { container, reason } => match reason {
                RemoveReason::Orphan => write!(f, "remove orphan container {}", container.name),
                RemoveReason::ScaleDown => {
                    write!(f, "remove container {} (scaled down)", container.name)
                }
                RemoveReason::Duplicate => {
                    write!(f, "remove container {} (duplicate replica)", container.name)
                }
                RemoveReason::Unnumbered => {
                    write!(f, "remove container {} (no replica number)", container.name)
                }
                RemoveReason::Down => write!(f, "remove container {}", container.name),
            },
            Step::Keep { container, reason } => match reason {
                KeepReason::UpToDate => write!(f, "keep container {} (up to date)", container.name),
                KeepReason::Adopted => write!(
                    f,
                    "keep container {} (adopted: it matches the project)",
                    container.name
                ),
                KeepReason::NoRecreate => write!(
                    f,
                    "keep container {} (config changed, kept by --no-recreate)",
                    container.name
                ),
            },
            Step::WaitHealthy {
                service,
                condition,
                deadline,
            } => {
                let what = match condition {
                    Condition::Started => "running",
                    Condition::Healthy => "healthy",
                    Condition::CompletedSuccessfully => "completed successfully",
                };
                write!(f, "wait for {service} to be {what}")?;
                match deadline {
                    Some(d) => write!(f, " (up to {})", format_go(*d)),
                    None => Ok(()),
                }
            }
            Step::Warn(w) => write!(f, "warning: {w}"),
            Step::RemoveNetwork(n) => write!(f, "remove network {n}"),
            Step::RemoveVolume(v) => write!(f, "remove volume {v}"),
        }
    }
}

/// An ordered list of steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// True when carrying the plan out would change nothing.
    pub fn is_noop(&self) -> bool {
        !self.steps.iter().any(Step::is_action)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|s| match s {
            Step::Warn(w) => Some(w.as_str()),
            _ => None,
        })
    }
}

/// One line per step: the `--dry-run` output.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Plans `berth up`: networks and volumes first, then orphans, then services level by level,
/// each service's containers after waits for its dependencies.
pub fn plan(desired: &Desired, actual: &Actual, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let mut steps = Vec::new();
    resources(desired, actual, &mut steps)?;

    let observed: Vec<Observed<'_>> = actual
        .project_containers(&desired.project)
        .into_iter()
        .filter(|o| !o.oneoff)
        .collect();

    // Orphans: containers of services the project no longer has. Services merely not selected
    // (or disabled by a profile that is still in the project) are left alone.
    for o in observed
        .iter()
        .filter(|o| !desired.all_services.contains(o.service))
    {
        if opts.remove_orphans {
            if o.is_up() {
                steps.push(Step::Stop {
                    container: ContainerRef::of(o),
                    timeout: None,
                });
            }
            steps.push(Step::Remove {
                container: ContainerRef::of(o),
                reason: RemoveReason::Orphan,
            });
        } else {
            steps.push(Step::Warn(format!(
                "found orphan container {} of service `{}`, which is not in the project; run with --remove-orphans to remove it",
                ContainerRef::of(o).name,
                o.service
            )));
        }
    }

    let graph = DependencyGraph::from_edges(desired.services.iter().map(|s| {
        (
            s.name.clone(),
            s.depends_on.iter().map(|d| d.service.clone()).collect(),
        )
    }));
    let selected = graph.closure(&opts.services)?;

    let mut by_service: BTreeMap<&str, Vec<Observed<'_>>> = BTreeMap::new();
    for o in &observed {
        by_service.entry(o.service).or_default().push(*o);
    }

    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut waited: BTreeSet<(String, Condition)> = BTreeSet::new();
    for name in desired.levels.iter().flatten() {
        if !selected.contains(name) {
            continue;
        }
        let Some(ds) = desired.service(name) else {
            continue;
        };
        let existing = by_service.remove(name.as_str()).unwrap_or_default();
        let out = service_steps(ds, &existing, opts, &changed);
        if out.changed {
            changed.insert(name.clone());
        }
        steps.extend(out.removals);
        if out.activates {
            for d in &ds.depends_on {
                if waited.insert((d.service.clone(), d.condition)) {
                    let deadline = match d.condition {
                        Condition::Started => Some(crate::deadline::started()),
                        Condition::Healthy => {
                            desired.service(&d.service).map(|s| s.health_deadline)
                        }
                        Condition::CompletedSuccessfully => None,
                    };
                    steps.push(Step::WaitHealthy {
                        service: d.service.clone(),
                        condition: d.condition,
                        deadline,
                    });
                }
            }
        }
        steps.extend(out.steps);
    }
    Ok(Plan { steps })
}

/// Networks and volumes: create the missing ones, check that external ones exist, and warn
/// about same-named ones another project (or a human) created, which are used as they are.
fn resources(desired: &Desired, actual: &Actual, steps: &mut Vec<Step>) -> Result<(), PlanError> {
    for n in &desired.external_networks {
        if actual.network(n).is_none() {
            return Err(PlanError::MissingExternal {
                kind: "network",
                name: n.clone(),
            });
        }
    }
    for v in &desired.external_volumes {
        if actual.volume(v).is_none() {
            return Err(PlanError::MissingExternal {
                kind: "volume",
                name: v.clone(),
            });
        }
    }
    let foreign = |kind: &str, name: &str| {
        Step::Warn(format!(
            "{kind} {name} already exists but was not created for project `{}`; it is used as it is. Declare it with `external: true` if that is intended",
            desired.project
        ))
    };
    for n in &desired.networks {
        match actual.network(&n.name) {
            None => steps.push(Step::CreateNetwork(n.clone())),
            Some(r) if r.project() != Some(desired.project.as_str()) => {
                steps.push(foreign("network", &n.name))
            }
            Some(_) => {}
        }
    }
    for n in &desired.external_networks {
        steps.push(Step::UseExternalNetwork(n.clone()));
    }
    for v in &desired.volumes {
        match actual.volume(&v.name) {
            None => steps.push(Step::CreateVolume(v.clone())),
            Some(r) if r.project() != Some(desired.project.as_str()) => {
                steps.push(foreign("volume", &v.name))
            }
            Some(_) => {}
        }
    }
    for v in &desired.external_volumes {
        steps.push(Step::UseExternalVolume(v.clone()));
    }
    Ok(())
}

struct ServiceSteps {
    /// Stops and removals of surplus containers; they need no waiting.
    removals: Vec<Step>,
    /// Per-replica steps in replica order.
    steps: Vec<Step>,
    /// Whether any container is created, started, recreated or restarted (so dependencies
    /// must be waited for first).
    activates: bool,
    /// Whether any container was recreated or restarted (so dependents with `restart: true`
    /// restart too).
    changed: bool,
}

fn service_steps(
    ds: &DesiredService,
    existing: &[Observed<'_>],
    opts: &PlanOptions,
    changed_services: &BTreeSet<String>,
) -> ServiceSteps {
    let timeout = ds.containers.first().and_then(|c| c.stop_timeout);
    let mut out = ServiceSteps {
        removals: Vec::new(),
        steps: Vec::new(),
        activates: false,
        changed: false,
    };
    let remove = |out: &mut ServiceSteps, o: &Observed<'_>, reason| {
        if o.is_up() {
            out.removals.push(Step::Stop {
                container: ContainerRef::of(o),
                timeout,
            });
        }
        out.removals.push(Step::Remove {
            container: ContainerRef::of(o),
            reason,
        });
    };

    // Group by replica number; prefer, for each number, a running container with the right
    // hash, so that a leftover copy is what gets removed.
    let mut by_number: BTreeMap<u64, Vec<Observed<'_>>> = BTreeMap::new();
    for o in existing {
        match o.number {
            Some(n) => by_number.entry(n).or_default().push(*o),
            None => remove(&mut out, o, RemoveReason::Unnumbered),
        }
    }
    for list in by_number.values_mut() {
        list.sort_by_key(|o| (o.hash != Some(ds.config_hash.as_str()), !o.is_up()));
    }
    // Scale down: the highest numbers go first.
    for (_, list) in by_number.range(ds.replicas + 1..).rev() {
        for o in list {
            remove(&mut out, o, RemoveReason::ScaleDown);
        }
    }

    let restart_dep = ds
        .depends_on
        .iter()
        .find(|d| d.restart && changed_services.contains(&d.service))
        .map(|d| d.service.clone());

    for (i, spec) in ds.containers.iter().enumerate() {
        let n = i as u64 + 1;
        let list = by_number.get(&n).map(Vec::as_slice).unwrap_or(&[]);
        for dup in list.iter().skip(1) {
            remove(&mut out, dup, RemoveReason::Duplicate);
        }
        let Some(c) = list.first() else {
            out.steps.push(Step::Create {
                service: ds.name.clone(),
                spec: Box::new(spec.clone()),
            });
            out.steps.push(Step::Start {
                service: ds.name.clone(),
                name: spec.name.clone(),
            });
            out.activates = true;
            continue;
        };
        let adopted = c.hash.is_none()
            && c.observed
                .is_some_and(|o| crate::adopt::matches(spec, o).is_ok());
        let recreate = match c.hash {
            _ if opts.no_recreate => None,
            _ if opts.force_recreate => Some(RecreateReason::Forced),
            None if adopted => None,
            None => Some(RecreateReason::NotCreatedByBerth),
            Some(h) if h != ds.config_hash => Some(RecreateReason::ConfigChanged),
            Some(_) => None,
        };
        let cref = ContainerRef::of(c);
        if let Some(reason) = recreate {
            out.steps.push(Step::Recreate {
                old: cref,
                spec: Box::new(spec.clone()),
                reason,
            });
            out.activates = true;
            out.changed = true;
        } else if !c.is_up() {
            out.steps.push(Step::Start {
                service: ds.name.clone(),
                name: cref.name,
            });
            out.activates = true;
        } else if let Some(dep) = &restart_dep {
            out.steps.push(Step::Restart {
                container: cref,
                timeout,
                dependency: dep.clone(),
            });
            out.activates = true;
            out.changed = true;
        } else {
            let reason = if adopted {
                KeepReason::Adopted
            } else if c.hash == Some(ds.config_hash.as_str()) {
                KeepReason::UpToDate
            } else {
                KeepReason::NoRecreate
            };
            out.steps.push(Step::Keep {
                container: cref,
                reason,
            });
        }
    }
    out
}

/// Plans `berth down`: stop and remove the project's containers in reverse dependency order
/// (dependents before what they depend on), then the project's networks, then with
/// `volumes` its named volumes; with `services`, only those services' containers. Only resources carrying the project's label are touched, and
/// external ones never, even when they carry it.
pub fn plan_down(desired: &Desired, actual: &Actual, opts: &DownOptions) -> Plan {
    let mut steps = Vec::new();
    let observed = actual.project_containers(&desired.project);
    let stop_timeout = |service: &str| {
        desired
            .service(service)
            .and_then(|s| s.containers.first())
            .and_then(|c| c.stop_timeout)
    };
    let take = |o: &Observed<'_>, steps: &mut Vec<Step>| {
        if o.is_up() {
            steps.push(Step::Stop {
                container: ContainerRef::of(o),
                timeout: stop_timeout(o.service),
            });
        }
        steps.push(Step::Remove {
            container: ContainerRef::of(o),
            reason: RemoveReason::Down,
        });
    };

    let whole = opts.services.is_empty();
    let selected = |service: &str| whole || opts.services.iter().any(|s| s == service);
    // Orphans first: nothing in the project depends on them.
    for o in observed
        .iter()
        .filter(|o| whole && !desired.all_services.contains(o.service))
    {
        if opts.remove_orphans {
            take(o, &mut steps);
        } else {
            steps.push(Step::Warn(format!(
                "found orphan container {} of service `{}`, which is not in the project; run with --remove-orphans to remove it",
                ContainerRef::of(o).name,
                o.service
            )));
        }
    }
    // Services outside `desired.levels` (not selected when `desired` was built) come first,
    // in name order; then the exact reverse of the order `up` uses.
    let in_levels: BTreeSet<&str> = desired
        .levels
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let mut order: Vec<&str> = desired
        .all_services
        .iter()
        .map(String::as_str)
        .filter(|s| !in_levels.contains(s))
        .collect();
    for level in desired.levels.iter().rev() {
        order.extend(level.iter().rev().map(String::as_str));
    }
    for service in order.into_iter().filter(|s| selected(s)) {
        let mut mine: Vec<&Observed<'_>> =
            observed.iter().filter(|o| o.service == service).collect();
        mine.sort_by_key(|o| (o.oneoff, o.number));
        for o in mine {
            take(o, &mut steps);
        }
    }

    if !whole {
        return Plan { steps };
    }
    let ours = |labels: Option<&str>| labels == Some(desired.project.as_str());
    let mut networks: Vec<&str> = actual
        .networks
        .iter()
        .filter(|n| ours(n.project()) && !desired.external_networks.contains(&n.name))
        .map(|n| n.name.as_str())
        .collect();
    networks.sort();
    steps.extend(networks.into_iter().map(|n| Step::RemoveNetwork(n.into())));
    if opts.volumes {
        let mut volumes: Vec<&str> = actual
            .volumes
            .iter()
            .filter(|v| ours(v.project()) && !desired.external_volumes.contains(&v.name))
            .map(|v| v.name.as_str())
            .collect();
        volumes.sort();
        steps.extend(volumes.into_iter().map(|v| Step::RemoveVolume(v.into())));
    }
    Plan { steps }
}
