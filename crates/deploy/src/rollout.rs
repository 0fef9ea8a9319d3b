//! The zero-downtime sequence for one service, top to bottom, and its way back.
//!
//! Old replicas are never destroyed before the release commits: a replaced container is
//! renamed aside (`NAME-berth-old-rN`) and, once traffic left it, stopped but kept. Every new
//! container carries the `berth.release=N` label. That makes the way back a function of what
//! the engine shows, not of what this process remembers: [`Deployer::revert`] starts the
//! containers without the label, moves traffic to them, removes the labelled ones and gives the
//! old ones their names back. The same function serves a failed deploy and the next command
//! after `berth deploy` was killed.

use crate::labels;
use crate::policy::{FailureAction, Kind, Order, Policy, Route, MIN_REQUESTS_FOR_RATE};
use crate::route_change::{self, RouteBefore};
use crate::store::JournalStep;
use crate::traffic::{replica_set, SetCounts, Traffic};
use berth_compose::berth_ext::Strategy;
use berth_engine::{ContainerSpec, ContainerSummary, Engine, EngineError, HealthOutcome};
use berth_proxy_api::{RouteSpec, SetSpec};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a deploy reports while it works: shown live on a terminal, one JSON line per event
/// with `--format json`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeployEvent {
    Release {
        number: u64,
        /// Services rolled from their previous containers.
        services: Vec<String>,
        /// Services that had no containers and are created as `up` would.
        created: Vec<String>,
    },
    Step {
        service: String,
        message: String,
    },
    Healthy {
        service: String,
        container: String,
        after_ms: u64,
    },
    Switched {
        service: String,
        set: String,
        /// From the new replicas being healthy (container healthcheck) to the proxy sending
        /// them traffic, the proxy's own health check included.
        switch_ms: f64,
    },
    Weights {
        service: String,
        canary_percent: u8,
    },
    Monitor {
        service: String,
        requests: u64,
        errors: u64,
    },
    RollingBack {
        service: String,
        reason: String,
    },
    Warning {
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The new version is bad; `logs` are its failing container's last lines.
    #[error("service `{service}`: {reason}")]
    Unhealthy {
        service: String,
        reason: String,
        logs: Vec<String>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("service `{service}`: the proxy: {message}")]
    Proxy { service: String, message: String },
    /// The proxy's own health check did not pass a new set by its deadline; the proxy did not
    /// add it and left the route as it was.
    #[error("service `{service}`: set `{set}` did not pass the proxy's health check in time")]
    ProxyCheckFailed { service: String, set: String },
    /// `berth abort` during a canary.
    #[error("service `{service}`: the canary was aborted by `berth abort`")]
    Aborted { service: String },
}

/// One service's update: the replicas wanted and the containers running now.
#[derive(Debug, Clone)]
pub struct ServiceUpdate {
    pub service: String,
    /// Replica `n` is `specs[n - 1]`, each with the `berth.release` label of this release.
    pub specs: Vec<ContainerSpec>,
    /// The service's containers before the deploy (not one-offs), any release.
    pub old: Vec<ContainerSummary>,
    pub policy: Policy,
}

/// Everything a rollout needs from outside: the engine, the proxy when a service is routed,
/// and where to report.
pub struct Deployer<'a> {
    pub engine: &'a Engine,
    pub traffic: Option<&'a Traffic>,
    pub project: &'a str,
    pub release: u64,
    pub on: &'a (dyn Fn(DeployEvent) + Sync),
    /// Called with a step before each change that the journal should hold.
    pub journal: &'a (dyn Fn(JournalStep) + Sync),
    /// Asked while a canary runs: whether `berth promote` or `berth abort` was given.
    pub control: &'a (dyn Fn() -> Option<Manual> + Sync),
}

/// A human's decision on a running canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    Promote,
    Abort,
}

/// The number label of a container (0 when missing).
pub fn number(c: &ContainerSummary) -> u64 {
    c.labels
        .get(labels::COMPOSE_CONTAINER_NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The release label of a container, as the number N of `rN`.
pub fn release_of(c: &ContainerSummary) -> Option<u64> {
    c.labels
        .get(labels::RELEASE)
        .and_then(|r| r.strip_prefix('r').unwrap_or(r).parse().ok())
}

/// The name a container is kept under while its replacement runs.
pub fn aside_name(canonical: &str, release: u64) -> String {
    format!("{canonical}-berth-old-r{release}")
}

/// The name an aside container had before, from its aside name.
pub fn canonical_name(name: &str) -> &str {
    match name.find("-berth-old-r") {
        Some(i) => &name[..i],
        None => name,
    }
}

/// An old container as deploy output names it: "old NAME (rN)", its release when it has one,
/// since the new container that replaces it takes the same name.
fn old_name(c: &ContainerSummary) -> String {
    match release_of(c) {
        Some(n) => format!("old {} (r{n})", canonical_name(&c.name)),
        None => format!("old {}", canonical_name(&c.name)),
    }
}

/// How long new requests may be held while a route switches to new settings.
const SWITCH_HOLD: Duration = Duration::from_secs(10);
/// How long the proxy may take to see replicas healthy on a route whose settings just
/// changed (they passed the same check moments before, so this is a bound, not a wait).
const SWITCH_CHECK: Duration = Duration::from_secs(5);

fn is_running(c: &ContainerSummary) -> bool {
    matches!(c.state.as_str(), "running" | "restarting")
}

/// Whether a canary is clearly slower than stable: its p99 at least 4 times stable's (two
/// latency buckets up, since buckets double) and above 50 ms. None while either side has too
/// few responses to say.
fn slower(canary: &SetCounts, stable: &SetCounts) -> Option<String> {
    let (c, s) = (canary.p99_ms()?, stable.p99_ms()?);
    (c >= 4.0 * s && c > 50.0).then(|| {
        format!(
            "its p99 latency is {c:.0} ms against stable's {s:.0} ms (the bound is 4x and 50 ms)"
        )
    })
}

/// "N of M requests failed (x%, the bound is y%)", as every error-rate failure says it.
fn failed_share(d: &SetCounts, bound: f64) -> String {
    format!(
        "{} of {} requests failed ({:.1}%, the bound is {:.1}%)",
        d.errors,
        d.requests,
        d.error_rate() * 100.0,
        bound * 100.0
    )
}

/// Whether all of a service's new replicas start in one batch: a routed blue-green or canary
/// service, or a route whose shared settings change (proven on a staging route), moves its
/// traffic in one swap.
fn all_at_once(routed: bool, staging: bool, strategy: Strategy) -> bool {
    routed && (staging || matches!(strategy, Strategy::BlueGreen | Strategy::Canary))
}

/// Replicas 1 to `wanted` in the batches they are replaced in: one batch when all at once,
/// else `parallelism` at a time.
fn batches(wanted: u64, all_at_once: bool, parallelism: usize) -> Vec<Vec<u64>> {
    let size = if all_at_once {
        (wanted as usize).max(1)
    } else {
        parallelism
    };
    let numbers: Vec<u64> = (1..=wanted).collect();
    numbers.chunks(size).map(<[u64]>::to_vec).collect()
}

/// The weights of a one-swap switch: every new set takes traffic, and every old set the
/// route still has gets weight 0 (old sets already gone are not named).
fn swap_weights(
    new_sets: &[String],
    old_sets: &[String],
    present: &[String],
) -> BTreeMap<String, u32> {
    let mut weights: BTreeMap<String, u32> = new_sets.iter().map(|s| (s.clone(), 100)).collect();
    for s in old_sets.iter().filter(|s| present.contains(s)) {
        weights.insert(s.clone(), 0);
    }
    weights
}

/// The weights that give the new sets `percent` of the traffic together. With k new and m
/// stable sets, new ones weigh p*m and stable ones (100-p)*k.
fn canary_weights(percent: u8, new_sets: &[String], stable: &[String]) -> BTreeMap<String, u32> {
    let (k, m) = (new_sets.len() as u32, stable.len().max(1) as u32);
    let p = u32::from(percent.min(100));
    new_sets
        .iter()
        .map(|s| (s.clone(), p * m))
        .chain(stable.iter().map(|s| (s.clone(), (100 - p) * k)))
        .collect()
}

impl Deployer<'_> {
    fn step(&self, service: &str, message: impl Into<String>) {
        (self.on)(DeployEvent::Step {
            service: service.to_string(),
            message: message.into(),
        });
    }

    /// Rolls one service to its new replicas: validate, start new, wait healthy (with a
    /// deadline), switch, drain old, stop old, then watch the new version for the monitor
    /// window. Old containers are stopped but kept until the release commits; on failure
    /// the caller reverts every service of the release with [`Deployer::revert`].
    ///
    /// Behind the proxy every replica is its own target set ([`replica_set`]), so one
    /// replica is added or drained without touching the others.
    ///
    /// `before` is the route as it was before the release (read by [`Deployer::route_before`]).
    pub async fn roll(&self, u: &ServiceUpdate, before: &RouteBefore) -> Result<(), RolloutError> {
        // Validate: a routed service needs the proxy.
        let p = &u.policy;
        let routed = match (&p.kind, self.traffic) {
            (Kind::Routed(route), Some(t)) => Some((route, t)),
            (Kind::Routed(_), None) => {
                return Err(RolloutError::Proxy {
                    service: u.service.clone(),
                    message: "no proxy to route through".into(),
                })
            }
            _ => None,
        };
        let mut old: BTreeMap<u64, ContainerSummary> =
            u.old.iter().map(|c| (number(c), c.clone())).collect();
        let wanted = u.specs.len() as u64;
        // Replicas beyond the new count are not replaced, only retired with the last batch.
        let extra: Vec<ContainerSummary> = old.split_off(&(wanted + 1)).into_values().collect();

        // Give every running old replica its own set (a service started by `up` is routed
        // from here on). An existing route keeps its settings and its replicas their
        // addresses: how the running version is reached changes only once the new replicas
        // passed the proxy's check under the new settings.
        let mut changes: Vec<String> = Vec::new();
        let mut staging: Option<String> = None;
        if let Some((route, t)) = routed {
            let running: Vec<String> = old
                .values()
                .chain(&extra)
                .filter(|c| is_running(c))
                .map(|c| replica_set(&c.id))
                .collect();
            let port = match before.present() {
                Some(live) => {
                    changes = route_change::changes(live, route);
                    route_change::live_port(live).unwrap_or(route.port)
                }
                None => {
                    t.ensure_route(route, &u.service).await?;
                    route.port
                }
            };
            self.prune_stale(t, route, &running, &u.service).await?;
            for c in old.values().chain(&extra).filter(|c| is_running(c)) {
                if let Some(ip) = self.ip(&c.id).await? {
                    t.ensure_replica(
                        &route.name,
                        &c.id,
                        &format!("{ip}:{port}"),
                        100,
                        p.health_deadline,
                        &u.service,
                    )
                    .await?;
                }
            }
            if let Some(live) = before.present() {
                if !route_change::same_settings(live, route) {
                    // Hosts, path prefix and health path are shared by all of a route's
                    // sets: the new replicas are checked on a staging route, then the real
                    // one switches to them in one change.
                    let spec = route_change::staging_spec(route);
                    t.put_route(&spec, &u.service).await?;
                    staging = Some(spec.name);
                }
            }
            if !changes.is_empty() {
                self.step(
                    &u.service,
                    format!(
                        "route change: {}; {}",
                        changes.join(", "),
                        if staging.is_some() {
                            "traffic moves in one step once every new replica passed the proxy's check under the new settings"
                        } else {
                            "the old replicas keep their addresses until they leave"
                        }
                    ),
                );
            }
        }

        let all_at_once = all_at_once(routed.is_some(), staging.is_some(), p.strategy);
        let batches = batches(wanted, all_at_once, p.parallelism);
        let stop_first = p.order == Order::StopFirst;
        let mut prestarted: Option<Vec<(u64, String, String)>> = None;

        for (i, batch) in batches.iter().enumerate() {
            let last = i + 1 == batches.len();
            if stop_first {
                // Out of rotation first, so nothing is sent to a container that is stopping.
                for n in batch.iter() {
                    if let Some(o) = old.get(n) {
                        if let Some((route, t)) = routed {
                            self.drain_replica(t, route, &u.service, o, p).await?;
                        }
                        self.step(&u.service, format!("stopping {}", old_name(o)));
                        self.engine.stop_container(&o.id, p.stop_grace).await?;
                    }
                }
            }
            // Start new and wait until healthy (with a deadline); a start-first batch was
            // already started during the previous batch's look.
            let started = match prestarted.take() {
                Some(started) => started,
                None => self.start_batch(u, batch, &old).await?,
            };
            let healthy_at = Instant::now();
            // Shift traffic to the new replicas.
            if let Some((route, t)) = routed {
                let mut new_sets = Vec::new();
                let mut new_addrs = Vec::new();
                for (_, id, name) in &started {
                    let Some(addr) = self.target(id, route).await? else {
                        return Err(self
                            .unhealthy(
                                &u.service,
                                id,
                                "new container has no address on the proxy network".into(),
                            )
                            .await);
                    };
                    // Blue-green and canary add the new replicas with no traffic, then move
                    // it in one swap; rolling adds each replica beside the old one. Under new
                    // shared settings they are checked on the staging route.
                    let weight = if all_at_once { 0 } else { 100 };
                    t.ensure_replica(
                        staging.as_deref().unwrap_or(&route.name),
                        id,
                        &addr,
                        weight,
                        p.health_deadline,
                        &u.service,
                    )
                    .await
                    .map_err(|e| self.not_healthy_behind_proxy(e, name, &addr, route, &changes))?;
                    new_sets.push(replica_set(id));
                    new_addrs.push(addr);
                }
                let old_sets: Vec<String> = old
                    .values()
                    .chain(&extra)
                    .map(|c| replica_set(&c.id))
                    .collect();
                if let (Some(stage), Some(live)) = (&staging, before.present()) {
                    if p.strategy == Strategy::Canary {
                        self.step(
                            &u.service,
                            "no canary: a route's hosts, path prefix and health path are shared by all its replicas",
                        );
                    }
                    self.switch_route(t, route, live, stage, &new_sets, &new_addrs, &u.service)
                        .await?;
                } else if p.strategy == Strategy::Canary && all_at_once {
                    self.canary(t, route, u, &new_sets, &old_sets).await?;
                } else if all_at_once {
                    let present: Vec<String> = t
                        .sets(&route.name)
                        .await?
                        .into_iter()
                        .map(|s| s.0)
                        .collect();
                    let weights = swap_weights(&new_sets, &old_sets, &present);
                    t.set_weights(&route.name, weights, &u.service).await?;
                }
                self.switched(&u.service, &new_sets.join(","), healthy_at);
                (self.journal)(JournalStep::Switched {
                    service: u.service.clone(),
                    batch: i,
                });
                // Drain old: the replaced replicas leave rotation; in-flight requests and
                // WebSockets finish, up to drain_timeout.
                if !stop_first {
                    let mut leaving: Vec<&ContainerSummary> =
                        batch.iter().filter_map(|n| old.get(n)).collect();
                    if last {
                        leaving.extend(extra.iter());
                    }
                    let drains = leaving
                        .iter()
                        .map(|o| self.drain_replica(t, route, &u.service, o, p));
                    futures_util::future::try_join_all(drains).await?;
                } else if last {
                    for o in &extra {
                        self.drain_replica(t, route, &u.service, o, p).await?;
                    }
                }
            } else {
                (self.journal)(JournalStep::Switched {
                    service: u.service.clone(),
                    batch: i,
                });
            }
            // Stop old (kept, renamed, until the release commits).
            if !stop_first {
                for n in batch.iter() {
                    if let Some(o) = old.get(n) {
                        self.step(&u.service, format!("stopping {}", old_name(o)));
                        self.engine.stop_container(&o.id, p.stop_grace).await?;
                    }
                }
            }
            if last {
                for o in &extra {
                    self.step(&u.service, format!("stopping {}, scaled down", old_name(o)));
                    self.engine.stop_container(&o.id, p.stop_grace).await?;
                }
            }
            if !last {
                // A first look at the new replicas before replacing more: a version that
                // answers 500s is caught while it has only this batch's share of traffic.
                // Start-first, the next batch starts meanwhile (it gets no traffic until the
                // look passed), so the look costs no time.
                let look = self.watch(
                    u,
                    p.delay
                        .max(Duration::from_secs(1))
                        .min(p.monitor.max(Duration::from_secs(1))),
                );
                if stop_first {
                    look.await?;
                } else {
                    let next = self.start_batch(u, &batches[i + 1], &old);
                    // A failed look cancels the next batch's start at once; the revert
                    // removes whatever it had created.
                    let ((), next) = futures_util::future::try_join(look, next).await?;
                    prestarted = Some(next);
                }
            }
        }
        // Monitor the new version for the monitor window. Commit is the caller's: old
        // containers stay (stopped, renamed aside) until the whole release commits.
        self.watch(u, p.monitor).await
    }

    /// Starts a batch's new replicas, each taking the name of the old one it replaces (which
    /// is renamed aside and keeps running when start-first), and waits until every one is
    /// healthy within the deadline. Returns (number, id, name) of each.
    async fn start_batch(
        &self,
        u: &ServiceUpdate,
        batch: &[u64],
        old: &BTreeMap<u64, ContainerSummary>,
    ) -> Result<Vec<(u64, String, String)>, RolloutError> {
        let mut started = Vec::new();
        for n in batch.iter() {
            let spec = &u.specs[(*n - 1) as usize];
            if let Some(o) = old.get(n) {
                (self.journal)(JournalStep::Aside {
                    service: u.service.clone(),
                    container: o.id.clone(),
                    name: o.name.clone(),
                });
                self.engine
                    .rename_container(&o.id, &aside_name(&spec.name, self.release))
                    .await?;
            }
            (self.journal)(JournalStep::Create {
                service: u.service.clone(),
                name: spec.name.clone(),
            });
            self.step(
                &u.service,
                format!("starting new {} (r{})", spec.name, self.release),
            );
            let id = self.engine.create_container(spec).await?;
            self.engine.start_container(&id).await?;
            started.push((*n, id, spec.name.clone()));
        }
        for (_, id, name) in &started {
            self.wait_new(&u.service, id, name, u.policy.health_deadline)
                .await?;
        }
        Ok(started)
    }

    /// A new replica the proxy's health check did not pass, said with what the proxy asked
    /// of it and the route settings this release changes (the likely cause).
    fn not_healthy_behind_proxy(
        &self,
        e: RolloutError,
        name: &str,
        addr: &str,
        route: &Route,
        changes: &[String],
    ) -> RolloutError {
        let why = if changes.is_empty() {
            String::new()
        } else {
            format!(
                "; this release changes {}: check the new value is where the app answers",
                changes.join(", ")
            )
        };
        match e {
            RolloutError::ProxyCheckFailed { service, .. } => RolloutError::Unhealthy {
                service,
                reason: format!(
                    "new replica {name} did not pass the proxy's health check (GET {} on {addr}) within its deadline{why}",
                    route.health_path
                ),
                logs: Vec::new(),
            },
            RolloutError::Proxy { service, message } => RolloutError::Unhealthy {
                service,
                reason: format!(
                    "new replica {name} was not added to the proxy: {message}{why}"
                ),
                logs: Vec::new(),
            },
            e => e,
        }
    }

    /// The switch to new route settings: the new replicas passed the proxy's check on the
    /// staging route, so the real route takes the new settings with only them as its sets,
    /// in one change. New requests are held meanwhile, until the proxy saw the new replicas
    /// healthy on the real route (a changed health path makes the proxy check every target
    /// again before it gets traffic); requests already routed finish on the old replicas.
    #[allow(clippy::too_many_arguments)]
    async fn switch_route(
        &self,
        t: &Traffic,
        route: &Route,
        live: &RouteSpec,
        stage: &str,
        new_sets: &[String],
        new_addrs: &[String],
        service: &str,
    ) -> Result<(), RolloutError> {
        let spec = RouteSpec {
            name: route.name.clone(),
            hosts: route.hosts.clone(),
            path_prefix: route.path_prefix.clone(),
            health_path: Some(route.health_path.clone()),
            sets: new_sets
                .iter()
                .zip(new_addrs)
                .map(|(id, addr)| SetSpec {
                    id: id.clone(),
                    weight: 100,
                    targets: vec![addr.clone()],
                })
                .collect(),
            maintenance: live.maintenance.clone(),
        };
        (self.journal)(JournalStep::RouteSwitch {
            service: service.to_string(),
        });
        t.pause(&route.name, SWITCH_HOLD, service).await?;
        let switched = async {
            t.put_route(&spec, service).await?;
            t.wait_healthy(&route.name, new_addrs, SWITCH_CHECK, service)
                .await
        }
        .await;
        let resumed = t.resume(&route.name, service).await;
        match switched {
            Ok(true) => {}
            // The revert puts the route back as it was.
            Ok(false) => {
                return Err(RolloutError::Unhealthy {
                    service: service.to_string(),
                    reason: format!(
                        "the new replicas passed the proxy's check on the staging route but not on route `{}` within {}s",
                        route.name,
                        SWITCH_CHECK.as_secs()
                    ),
                    logs: Vec::new(),
                })
            }
            Err(e) => return Err(e),
        }
        resumed?;
        t.remove_route(stage, service).await
    }

    /// The route of a routed service as it is now, journaled before the release changes it,
    /// so that a revert (by this process or the next after a kill) puts it back exactly.
    pub async fn route_before(&self, u: &ServiceUpdate) -> Result<RouteBefore, RolloutError> {
        let (Kind::Routed(route), Some(t)) = (&u.policy.kind, self.traffic) else {
            return Ok(RouteBefore::Unknown);
        };
        let before = match t.route_spec(&route.name).await? {
            Some(spec) => RouteBefore::Present(spec),
            None => RouteBefore::Absent,
        };
        (self.journal)(JournalStep::Route {
            service: u.service.clone(),
            before: before.clone(),
        });
        Ok(before)
    }

    fn switched(&self, service: &str, set: &str, healthy_at: Instant) {
        (self.on)(DeployEvent::Switched {
            service: service.to_string(),
            set: set.to_string(),
            switch_ms: healthy_at.elapsed().as_secs_f64() * 1000.0,
        });
    }

    /// Takes an old replica out of rotation and waits for its drain.
    async fn drain_replica(
        &self,
        t: &Traffic,
        route: &Route,
        service: &str,
        c: &ContainerSummary,
        p: &Policy,
    ) -> Result<(), RolloutError> {
        let id = replica_set(&c.id);
        if t.sets(&route.name).await?.iter().any(|s| s.0 == id) {
            self.step(service, format!("draining {}", old_name(c)));
            t.remove_set(&route.name, &id, p.drain_timeout, service)
                .await?;
        }
        Ok(())
    }

    async fn wait_new(
        &self,
        service: &str,
        id: &str,
        name: &str,
        deadline: Duration,
    ) -> Result<(), RolloutError> {
        let t0 = Instant::now();
        match self.engine.wait_healthy(id, deadline).await? {
            HealthOutcome::Healthy | HealthOutcome::Running => {
                (self.on)(DeployEvent::Healthy {
                    service: service.to_string(),
                    container: name.to_string(),
                    after_ms: t0.elapsed().as_millis() as u64,
                });
                Ok(())
            }
            bad => {
                let reason = match bad {
                    HealthOutcome::Exited(code) => {
                        format!("new container {name} exited with code {code} at start")
                    }
                    HealthOutcome::Unhealthy => {
                        format!("new container {name} failed its healthcheck")
                    }
                    _ => format!(
                        "new container {name} was not healthy within {}s",
                        deadline.as_secs()
                    ),
                };
                Err(self.unhealthy(service, id, reason).await)
            }
        }
    }

    /// Watches the new replicas for the monitor window: a container that exits or turns
    /// unhealthy, or an error rate above the bound, fails the release.
    async fn watch(&self, u: &ServiceUpdate, window: Duration) -> Result<(), RolloutError> {
        let p = &u.policy;
        if window.is_zero() {
            return Ok(());
        }
        self.step(
            &u.service,
            format!("monitoring for {}s", window.as_secs_f64()),
        );
        let routed = match (&p.kind, self.traffic) {
            (Kind::Routed(r), Some(t)) => Some((r, t)),
            _ => None,
        };
        let new_sets: Vec<String> = self
            .new_containers(&u.service)
            .await?
            .iter()
            .map(|c| replica_set(&c.id))
            .collect();
        let base = match routed {
            Some((r, t)) => t.counts(&r.name, &new_sets).await?,
            None => SetCounts::default(),
        };
        let until = Instant::now() + window;
        let mut last = SetCounts::default();
        loop {
            let new = self.new_containers(&u.service).await?;
            for c in &new {
                let bad = match (c.state.as_str(), c.health.as_deref()) {
                    ("exited" | "dead" | "restarting", _) => Some(format!(
                        "new container {} stopped during the monitor window (exit code {})",
                        c.name,
                        c.exit_code.unwrap_or(-1)
                    )),
                    (_, Some("unhealthy")) => Some(format!(
                        "new container {} turned unhealthy during the monitor window",
                        c.name
                    )),
                    _ => None,
                };
                if let Some(reason) = bad {
                    if p.failure_action != FailureAction::Continue {
                        return Err(self.unhealthy(&u.service, &c.id, reason).await);
                    }
                }
            }
            if let Some((r, t)) = routed {
                let d = t.counts(&r.name, &new_sets).await?.since(&base);
                last = d.clone();
                if d.requests >= MIN_REQUESTS_FOR_RATE
                    && d.error_rate() > p.max_error_rate
                    && p.failure_action != FailureAction::Continue
                {
                    // Take the failing replicas out of rotation before anything else, when
                    // old ones still serve (between batches), so no more requests reach them.
                    let sets = t.sets(&r.name).await?;
                    let others_serve = sets
                        .iter()
                        .any(|(id, w, _)| *w > 0 && !new_sets.contains(id));
                    if others_serve {
                        let zero = sets
                            .iter()
                            .filter(|(id, _, _)| new_sets.contains(id))
                            .map(|(id, _, _)| (id.clone(), 0))
                            .collect();
                        t.set_weights(&r.name, zero, &u.service).await?;
                    }
                    let reason = failed_share(&d, p.max_error_rate).replacen(
                        "requests failed",
                        "requests to the new version failed",
                        1,
                    );
                    return Err(self.new_version_failed(&u.service, reason).await);
                }
            }
            if Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (self.on)(DeployEvent::Monitor {
            service: u.service.clone(),
            requests: last.requests,
            errors: last.errors,
        });
        Ok(())
    }

    /// Canary: the new replicas beside the stable ones at each step's share of traffic,
    /// their error rate compared with the bound after each interval; then all traffic to
    /// them. On a bad step all traffic goes back to stable at once.
    async fn canary(
        &self,
        t: &Traffic,
        route: &Route,
        u: &ServiceUpdate,
        new_sets: &[String],
        old_sets: &[String],
    ) -> Result<(), RolloutError> {
        let p = &u.policy;
        let present: Vec<String> = t
            .sets(&route.name)
            .await?
            .into_iter()
            .map(|s| s.0)
            .collect();
        let stable: Vec<String> = old_sets
            .iter()
            .filter(|s| present.contains(s))
            .cloned()
            .collect();
        (self.journal)(JournalStep::Canary {
            service: u.service.clone(),
        });
        let share = |percent: u8| canary_weights(percent, new_sets, &stable);
        'steps: for step in &p.canary_steps {
            t.set_weights(&route.name, share(*step), &u.service).await?;
            (self.on)(DeployEvent::Weights {
                service: u.service.clone(),
                canary_percent: *step,
            });
            let paused = p.canary_pauses.contains(step);
            if paused {
                self.step(
                    &u.service,
                    format!("canary paused at {step}%: run `berth promote` or `berth abort`"),
                );
            }
            let base = t.counts(&route.name, new_sets).await?;
            let stable_base = t.counts(&route.name, &stable).await?;
            let until = Instant::now() + p.canary_interval;
            while paused || Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(200)).await;
                match (self.control)() {
                    Some(Manual::Promote) => break 'steps,
                    Some(Manual::Abort) => {
                        t.set_weights(&route.name, share(0), &u.service).await?;
                        return Err(RolloutError::Aborted {
                            service: u.service.clone(),
                        });
                    }
                    None => {}
                }
                let d = t.counts(&route.name, new_sets).await?.since(&base);
                let s = t.counts(&route.name, &stable).await?.since(&stable_base);
                let slow = slower(&d, &s);
                if let Some(why) = slow {
                    t.set_weights(&route.name, share(0), &u.service).await?;
                    return Err(self
                        .new_version_failed(&u.service, format!("canary at {step}%: {why}"))
                        .await);
                }
                if d.requests >= MIN_REQUESTS_FOR_RATE && d.error_rate() > p.max_error_rate {
                    // Abort: all traffic back to stable at once, before anything else.
                    t.set_weights(&route.name, share(0), &u.service).await?;
                    let reason =
                        format!("canary at {step}%: {}", failed_share(&d, p.max_error_rate));
                    return Err(self.new_version_failed(&u.service, reason).await);
                }
            }
        }
        // Promote: all traffic to the new replicas; the caller drains stable.
        t.set_weights(&route.name, share(100), &u.service).await?;
        (self.on)(DeployEvent::Weights {
            service: u.service.clone(),
            canary_percent: 100,
        });
        Ok(())
    }

    /// The proxy target of a container: its address on the proxy network and the route's
    /// port.
    async fn target(&self, id: &str, route: &Route) -> Result<Option<String>, RolloutError> {
        Ok(self.ip(id).await?.map(|ip| format!("{ip}:{}", route.port)))
    }

    /// A container's address on the proxy network.
    async fn ip(&self, id: &str) -> Result<Option<String>, RolloutError> {
        Ok(self
            .engine
            .container_ip(id, labels::PROXY_NETWORK)
            .await?
            .map(|ip| ip.to_string()))
    }

    /// The service's containers created by this release.
    async fn new_containers(&self, service: &str) -> Result<Vec<ContainerSummary>, RolloutError> {
        let release = format!("r{}", self.release);
        Ok(self
            .engine
            .list_containers(
                &[
                    (labels::COMPOSE_PROJECT, Some(self.project)),
                    (labels::COMPOSE_SERVICE, Some(service)),
                    (labels::RELEASE, Some(&release)),
                ],
                true,
            )
            .await?)
    }

    /// A failure of the new version found by watching traffic rather than one container:
    /// reported with the logs of the service's first new container.
    async fn new_version_failed(&self, service: &str, reason: String) -> RolloutError {
        let id = match self.new_containers(service).await {
            Ok(new) => new.first().map(|c| c.id.clone()).unwrap_or_default(),
            Err(e) => return e,
        };
        self.unhealthy(service, &id, reason).await
    }

    async fn unhealthy(&self, service: &str, id: &str, reason: String) -> RolloutError {
        let logs = if id.is_empty() {
            Vec::new()
        } else {
            self.engine.last_log_lines(id, 15).await.unwrap_or_default()
        };
        RolloutError::Unhealthy {
            service: service.to_string(),
            reason,
            logs,
        }
    }

    /// Puts a service back as it was before this release, from what the engine shows: the
    /// containers without this release's label are started again and take the traffic back,
    /// then the labelled ones are removed and the old ones get their names back. Safe to run
    /// again after an interruption at any point.
    ///
    /// `before` is the route as it was before the release; it is put back exactly (settings,
    /// sets, weights, ports), with the addresses the old containers have now.
    pub async fn revert(
        &self,
        service: &str,
        policy: &Policy,
        before: &RouteBefore,
    ) -> Result<(), RolloutError> {
        let all = self
            .engine
            .list_containers(
                &[
                    (labels::COMPOSE_PROJECT, Some(self.project)),
                    (labels::COMPOSE_SERVICE, Some(service)),
                    (labels::COMPOSE_ONEOFF, Some("False")),
                ],
                true,
            )
            .await?;
        let (new, old): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|c| release_of(c) == Some(self.release));
        (self.on)(DeployEvent::RollingBack {
            service: service.to_string(),
            reason: format!(
                "removing {} new container(s), putting back {}",
                new.len(),
                old.len()
            ),
        });
        let route = match &policy.kind {
            Kind::Routed(r) => Some(r),
            _ => None,
        };
        if let (Some(route), Some(t)) = (route, self.traffic) {
            // Routed: the old replicas can run beside the new ones, so they come back first
            // and take the traffic before the new ones are drained and go away.
            for c in &old {
                if !is_running(c) {
                    self.engine.start_container(&c.id).await?;
                }
            }
            for c in &old {
                let _ = self
                    .engine
                    .wait_healthy(&c.id, policy.health_deadline)
                    .await?;
            }
            match before {
                RouteBefore::Present(saved) => {
                    self.restore_route(t, route, saved, &old, policy, service)
                        .await?
                }
                // There was no route: none is left, as before the release.
                RouteBefore::Absent => t.remove_route(&route.name, service).await?,
                RouteBefore::Unknown => self.readd_old(t, route, &old, policy, service).await?,
            }
            t.remove_route(&route_change::staging_name(&route.name), service)
                .await?;
        }
        for c in &new {
            self.engine
                .remove_container(&c.id, true, false)
                .await
                .or_else(|e| match e {
                    EngineError::NotFound { .. } => Ok(()),
                    e => Err(e),
                })?;
        }
        for c in &old {
            let canonical = canonical_name(&c.name);
            if canonical != c.name {
                self.engine.rename_container(&c.id, canonical).await?;
            }
        }
        if route.is_none() {
            // Not routed: the new containers are gone (a volume has one writer again), so the
            // old ones can start.
            for c in &old {
                if !is_running(c) {
                    self.engine.start_container(&c.id).await?;
                }
            }
        }
        Ok(())
    }

    /// Puts the route back as `saved`: each saved set that belongs to an old container, at
    /// its weight, on the port it was reached on, at the container's address now. When the
    /// route's shared settings are as saved, missing sets are added (once healthy) and the
    /// others drained; otherwise the route gets its saved settings in one change while new
    /// requests are held, until the proxy saw the old replicas healthy again.
    async fn restore_route(
        &self,
        t: &Traffic,
        route: &Route,
        saved: &RouteSpec,
        old: &[ContainerSummary],
        policy: &Policy,
        service: &str,
    ) -> Result<(), RolloutError> {
        let mut sets = Vec::new();
        for set in &saved.sets {
            let Some(c) = old.iter().find(|c| replica_set(&c.id) == set.id) else {
                // A container gone before the release: its address serves nothing.
                continue;
            };
            let port = set
                .targets
                .first()
                .and_then(|a| route_change::port_of(a))
                .unwrap_or(route.port);
            if let Some(ip) = self.ip(&c.id).await? {
                sets.push(SetSpec {
                    id: set.id.clone(),
                    weight: set.weight,
                    targets: vec![format!("{ip}:{port}")],
                });
            }
        }
        let restored = RouteSpec {
            sets,
            ..saved.clone()
        };
        let live = t.route_spec(&route.name).await?;
        let same = live.as_ref().is_some_and(|l| {
            l.hosts == restored.hosts
                && l.path_prefix == restored.path_prefix
                && l.health_path == restored.health_path
                && l.maintenance == restored.maintenance
        });
        if same {
            for set in &restored.sets {
                t.ensure_set(&route.name, set, policy.health_deadline, service)
                    .await?;
            }
            let keep: Vec<&str> = restored.sets.iter().map(|s| s.id.as_str()).collect();
            let leaving: Vec<String> = t
                .sets(&route.name)
                .await?
                .into_iter()
                .map(|s| s.0)
                .filter(|s| !keep.contains(&s.as_str()))
                .collect();
            let drains = leaving
                .iter()
                .map(|s| t.remove_set(&route.name, s, policy.drain_timeout, service));
            futures_util::future::try_join_all(drains).await?;
            return Ok(());
        }
        let addrs: Vec<String> = restored
            .sets
            .iter()
            .flat_map(|s| s.targets.iter().cloned())
            .collect();
        t.pause(&route.name, SWITCH_HOLD, service).await?;
        let put = async {
            t.put_route(&restored, service).await?;
            t.wait_healthy(&route.name, &addrs, SWITCH_CHECK, service)
                .await
        }
        .await;
        t.resume(&route.name, service).await?;
        match put? {
            true => Ok(()),
            false => Err(RolloutError::Proxy {
                service: service.to_string(),
                message: format!(
                    "route `{}` has its previous settings back, but the proxy did not see the old replicas healthy within {}s",
                    route.name,
                    SWITCH_CHECK.as_secs()
                ),
            }),
        }
    }

    /// Without a saved route (a journal from before berth saved routes): each old replica
    /// gets its own set back at full weight, on the port its set had if it still has one,
    /// and every other set is drained.
    async fn readd_old(
        &self,
        t: &Traffic,
        route: &Route,
        old: &[ContainerSummary],
        policy: &Policy,
        service: &str,
    ) -> Result<(), RolloutError> {
        let live = t.sets(&route.name).await?;
        let mut keep = Vec::new();
        for c in old {
            let id = replica_set(&c.id);
            let port = live
                .iter()
                .find(|s| s.0 == id)
                .and_then(|s| s.2.first())
                .and_then(|a| route_change::port_of(a))
                .unwrap_or(route.port);
            if let Some(ip) = self.ip(&c.id).await? {
                t.ensure_replica(
                    &route.name,
                    &c.id,
                    &format!("{ip}:{port}"),
                    100,
                    policy.health_deadline,
                    service,
                )
                .await?;
                keep.push(id);
            }
        }
        let leaving: Vec<String> = t
            .sets(&route.name)
            .await?
            .into_iter()
            .map(|s| s.0)
            .filter(|s| !keep.contains(s))
            .collect();
        if !keep.is_empty() {
            let drains = leaving
                .iter()
                .map(|s| t.remove_set(&route.name, s, policy.drain_timeout, service));
            futures_util::future::try_join_all(drains).await?;
        }
        Ok(())
    }

    /// Points the service's route at its running replicas, one set each at full weight, and
    /// drains sets of containers that are gone: for a service that did not change (a first
    /// deploy after `up`, or a proxy that lost its state).
    pub async fn attach(&self, service: &str, policy: &Policy) -> Result<(), RolloutError> {
        let (Kind::Routed(route), Some(t)) = (&policy.kind, self.traffic) else {
            return Ok(());
        };
        let running = self
            .engine
            .list_containers(
                &[
                    (labels::COMPOSE_PROJECT, Some(self.project)),
                    (labels::COMPOSE_SERVICE, Some(service)),
                    (labels::COMPOSE_ONEOFF, Some("False")),
                ],
                false,
            )
            .await?;
        let keep: Vec<String> = running.iter().map(|c| replica_set(&c.id)).collect();
        if t.route_spec(&route.name).await?.is_some() {
            self.prune_stale(t, route, &keep, service).await?;
            // Replicas the route still reaches keep its settings: new ones are applied by a
            // deploy, which proves new replicas under them first.
            if let Some(live) = t.route_spec(&route.name).await? {
                let changes = route_change::changes(&live, route);
                if !changes.is_empty() && !live.sets.is_empty() {
                    (self.on)(DeployEvent::Warning {
                        message: format!(
                            "service `{service}`: {} not applied to the running replicas; `berth deploy` applies it once new replicas pass the proxy's health check",
                            changes.join(", ")
                        ),
                    });
                    return Ok(());
                }
            }
        }
        t.ensure_route(route, service).await?;
        for c in &running {
            if let Some(addr) = self.target(&c.id, route).await? {
                t.ensure_replica(
                    &route.name,
                    &c.id,
                    &addr,
                    100,
                    policy.health_deadline,
                    service,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Removes the sets of containers that no longer run (`up` or `down` replaced them
    /// without the proxy): they serve nothing, and Docker may already have given their
    /// address to a new container, which the proxy would then refuse.
    async fn prune_stale(
        &self,
        t: &Traffic,
        route: &Route,
        keep: &[String],
        service: &str,
    ) -> Result<(), RolloutError> {
        for (set, _, _) in t.sets(&route.name).await? {
            if !keep.contains(&set) {
                t.remove_set(&route.name, &set, Duration::from_secs(1), service)
                    .await?;
            }
        }
        Ok(())
    }

    /// After the release committed: the old containers of `service` (stopped, or kept
    /// warm by blue-green) are removed.
    pub async fn retire_old(&self, service: &str) -> Result<(), RolloutError> {
        let all = self
            .engine
            .list_containers(
                &[
                    (labels::COMPOSE_PROJECT, Some(self.project)),
                    (labels::COMPOSE_SERVICE, Some(service)),
                    (labels::COMPOSE_ONEOFF, Some("False")),
                ],
                true,
            )
            .await?;
        for c in all.iter().filter(|c| release_of(c) != Some(self.release)) {
            self.engine
                .remove_container(&c.id, true, false)
                .await
                .or_else(|e| match e {
                    EngineError::NotFound { .. } => Ok(()),
                    e => Err(e),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_routed_blue_green_canary_or_staged_services_switch_at_once() {
        assert!(all_at_once(true, false, Strategy::BlueGreen));
        assert!(all_at_once(true, false, Strategy::Canary));
        assert!(all_at_once(true, true, Strategy::Rolling));
        assert!(!all_at_once(true, false, Strategy::Rolling));
        // Without a route there is no traffic to swap.
        assert!(!all_at_once(false, true, Strategy::BlueGreen));
    }

    #[test]
    fn batches_follow_parallelism_or_hold_every_replica() {
        assert_eq!(batches(5, false, 2), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(batches(3, false, 1), vec![vec![1], vec![2], vec![3]]);
        assert_eq!(batches(3, true, 1), vec![vec![1, 2, 3]]);
        assert!(batches(0, true, 1).is_empty());
    }

    #[test]
    fn a_swap_zeroes_the_old_sets_the_route_still_has() {
        let w = swap_weights(
            &sets(&["n1", "n2"]),
            &sets(&["o1", "o2"]),
            &sets(&["o1", "n1"]),
        );
        let want: BTreeMap<String, u32> = [("n1", 100), ("n2", 100), ("o1", 0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(w, want);
    }

    #[test]
    fn canary_weights_give_the_new_sets_exactly_their_share() {
        let w = canary_weights(10, &sets(&["n1"]), &sets(&["s1", "s2"]));
        assert_eq!(w["n1"], 20);
        assert_eq!(w["s1"], 90);
        assert_eq!(w["s2"], 90);
        // 20 of 200: 10 percent.
        let total: u32 = w.values().sum();
        assert_eq!(w["n1"] * 10, total);
        let all = canary_weights(100, &sets(&["n1"]), &sets(&["s1"]));
        assert_eq!((all["n1"], all["s1"]), (100, 0));
        let none = canary_weights(0, &sets(&["n1"]), &sets(&["s1"]));
        assert_eq!((none["n1"], none["s1"]), (0, 100));
    }

    fn counts(requests: u64, errors: u64, latency: Vec<u64>) -> SetCounts {
        SetCounts {
            requests,
            errors,
            latency,
        }
    }

    #[test]
    fn a_canary_is_slower_at_four_times_stables_p99_above_50_ms() {
        let n = crate::policy::MIN_REQUESTS_FOR_RATE;
        // Every response in one bucket: the p99 is that bucket's bound.
        let at = |bucket: usize| {
            let mut l = vec![0; 16];
            l[bucket] = n;
            counts(n, 0, l)
        };
        let stable = at(2);
        let (c, s) = (at(4).p99_ms().unwrap(), stable.p99_ms().unwrap());
        assert!(c >= 4.0 * s);
        assert_eq!(slower(&at(4), &stable).is_some(), c > 50.0);
        assert!(slower(&at(2), &stable).is_none());
        // Too few responses on either side say nothing.
        assert!(slower(&counts(1, 0, vec![1]), &stable).is_none());
    }

    #[test]
    fn the_failed_share_says_counts_rate_and_bound() {
        assert_eq!(
            failed_share(&counts(200, 10, vec![]), 0.01),
            "10 of 200 requests failed (5.0%, the bound is 1.0%)"
        );
    }
}
