//! The control plane: every change to routes, made atomically and persisted.

use crate::config::HealthIntervals;
use crate::forward::Forwarder;
use crate::health_check;
use crate::router::Router;
use crate::service::{RouteControl, Service, TargetSet};
use crate::state::{self, PersistedState, STATE_VERSION};
use crate::target::{Health, Target};
use berth_proxy_api::route::{parse_target, RouteSpec, SetSpec};
use berth_proxy_api::status::{DeployReport, RouteStatus, SetStatus, TargetStatus};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no route named `{0}`; add it first with `berth proxy route add`")]
    NoRoute(String),
    #[error("route `{route}` has no set `{set}`")]
    NoSet { route: String, set: String },
    #[error("{0}")]
    Invalid(String),
    #[error("a deploy of route `{0}` is in progress; wait for it to finish")]
    Busy(String),
    #[error("route `{route}`: set `{set}` did not become healthy within {timeout_ms} ms ({detail}); traffic stays on the current set")]
    NotHealthy {
        route: String,
        set: String,
        timeout_ms: u64,
        detail: String,
    },
    #[error("cannot write the state file {path}: {source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ControlError {
    /// The admin API's HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ControlError::NoRoute(_) | ControlError::NoSet { .. } => 404,
            ControlError::Invalid(_) => 400,
            ControlError::Busy(_) => 409,
            ControlError::NotHealthy { .. } => 422,
            ControlError::Persist { .. } => 500,
        }
    }
}

struct SetState {
    spec: SetSpec,
    targets: Vec<Arc<Target>>,
    /// Being deployed: checked, weight 0, not persisted.
    pending: bool,
}

struct RouteState {
    spec: RouteSpec,
    sets: Vec<SetState>,
    draining: Vec<Arc<Target>>,
    control: Arc<RouteControl>,
    busy: bool,
}

impl RouteState {
    /// The route as published and persisted: sets still being deployed are not part of it.
    fn visible_spec(&self) -> RouteSpec {
        let mut spec = self.spec.clone();
        spec.sets = self
            .sets
            .iter()
            .filter(|s| !s.pending)
            .map(|s| s.spec.clone())
            .collect();
        spec
    }

    /// The go-live step: a set that passed its health wait stops being pending and takes
    /// `weight`. Shared by `add_set` and `deploy`.
    fn activate(&mut self, id: &str, weight: u32) {
        for s in &mut self.sets {
            if s.spec.id == id {
                s.pending = false;
                s.spec.weight = weight;
            }
        }
    }

    /// The take-out step: the live sets `leaving` picks leave the rotation and their targets
    /// join `draining`, in set order. Shared by `remove_set` and `deploy`; the caller
    /// publishes, then marks the targets draining (see [`Control::switch`]), then drains them.
    fn take_out(&mut self, leaving: impl Fn(&SetSpec) -> bool) -> Vec<Arc<Target>> {
        let mut old = Vec::new();
        let mut kept = Vec::new();
        for s in std::mem::take(&mut self.sets) {
            if !s.pending && leaving(&s.spec) {
                old.extend(s.targets);
            } else {
                kept.push(s);
            }
        }
        self.sets = kept;
        self.draining.extend(old.iter().cloned());
        old
    }
}

pub struct Control {
    forwarder: Arc<Forwarder>,
    routes: Mutex<BTreeMap<String, RouteState>>,
    state_file: PathBuf,
    health: HealthIntervals,
}

/// Health known from the previous process during an upgrade, by route and address; a
/// plain restart has none, so restored targets are checked before they get traffic.
pub type HealthHints = HashMap<(String, String), Health>;

impl Control {
    pub fn new(forwarder: Arc<Forwarder>, state_file: PathBuf, health: HealthIntervals) -> Control {
        Control {
            forwarder,
            routes: Mutex::new(BTreeMap::new()),
            state_file,
            health,
        }
    }

    /// Loads routes (from the state file, or from the previous process during an upgrade)
    /// and starts checking their targets.
    pub async fn restore(&self, saved: PersistedState, hints: &HealthHints) {
        let mut routes = self.routes.lock().await;
        for spec in saved.routes {
            let spec = spec.normalized();
            let sets = spec
                .sets
                .iter()
                .map(|set| SetState {
                    spec: set.clone(),
                    targets: set
                        .targets
                        .iter()
                        .filter_map(|t| parse_target(t).ok())
                        .map(|addr| {
                            let hint = hints
                                .get(&(spec.name.clone(), addr.to_string()))
                                .copied()
                                .unwrap_or(Health::Unknown);
                            let target = Target::with_health(addr, hint);
                            self.check(&target, &spec);
                            target
                        })
                        .collect(),
                    pending: false,
                })
                .collect();
            routes.insert(
                spec.name.clone(),
                RouteState {
                    spec,
                    sets,
                    draining: vec![],
                    control: Arc::new(RouteControl::default()),
                    busy: false,
                },
            );
        }
        self.publish(&routes);
    }

    fn check(&self, target: &Arc<Target>, spec: &RouteSpec) {
        target.attach_counters(
            self.forwarder
                .metrics
                .target_counters(&spec.name, &target.authority),
        );
        // The first exact host (not a wildcard) names the site to the target's framework.
        let host = spec.hosts.iter().find(|h| !h.starts_with('*')).cloned();
        health_check::spawn(
            target,
            spec.health_path.clone(),
            host,
            self.health.clone(),
            self.forwarder.metrics.clone(),
        );
    }

    /// Adds a route or replaces its hosts, path, health path and sets. Targets already in
    /// the route keep their health; new ones get traffic once they pass a check.
    pub async fn put_route(&self, spec: RouteSpec) -> Result<(), ControlError> {
        spec.validate().map_err(ControlError::Invalid)?;
        let spec = spec.normalized();
        let mut routes = self.routes.lock().await;
        if routes.get(&spec.name).is_some_and(|r| r.busy) {
            return Err(ControlError::Busy(spec.name));
        }
        let previous = routes.remove(&spec.name);
        let mut existing: HashMap<String, Arc<Target>> = HashMap::new();
        let control = match &previous {
            Some(p) => {
                for set in &p.sets {
                    for t in &set.targets {
                        existing.insert(t.authority.clone(), t.clone());
                    }
                }
                p.control.clone()
            }
            None => Arc::new(RouteControl::default()),
        };
        let health_changed = previous
            .as_ref()
            .is_some_and(|p| p.spec.health_path != spec.health_path);
        let sets = spec
            .sets
            .iter()
            .map(|set| SetState {
                spec: set.clone(),
                targets: set
                    .targets
                    .iter()
                    .filter_map(|t| parse_target(t).ok())
                    .map(|addr| match existing.get(&addr.to_string()) {
                        Some(t) if !health_changed => t.clone(),
                        _ => {
                            let target = Target::new(addr);
                            self.check(&target, &spec);
                            target
                        }
                    })
                    .collect(),
                pending: false,
            })
            .collect();
        let draining = previous.map(|p| p.draining).unwrap_or_default();
        routes.insert(
            spec.name.clone(),
            RouteState {
                spec,
                sets,
                draining,
                control,
                busy: false,
            },
        );
        self.publish(&routes);
        self.persist(&routes)
    }

    pub async fn remove_route(&self, name: &str) -> Result<(), ControlError> {
        let mut routes = self.routes.lock().await;
        match routes.get(name) {
            None => return Err(ControlError::NoRoute(name.to_string())),
            Some(r) if r.busy => return Err(ControlError::Busy(name.to_string())),
            Some(_) => {}
        }
        routes.remove(name);
        self.publish(&routes);
        self.persist(&routes)
    }

    /// The zero-downtime sequence, top to bottom, composed of the same steps as the admin
    /// API's `add_set`, `remove_set` and their drain: validate and add the new set pending,
    /// wait until every target is healthy (with a deadline), switch all traffic at once
    /// (the new set goes live and every other set is taken out in one router swap), drain
    /// the old targets (in-flight requests and tunnels finish, up to `drain_timeout`), then
    /// forget them. The route stays busy from the add to the end of the drain, so no other
    /// change interleaves. Answers only after the drain.
    pub async fn deploy(
        &self,
        name: &str,
        set: SetSpec,
        health_timeout: Duration,
        drain_timeout: Duration,
    ) -> Result<DeployReport, ControlError> {
        let started = Instant::now();
        // Add the new set with no weight (checked but given nothing) and wait until it is
        // healthy, with a deadline; this is `add_set`'s first half.
        self.add_healthy(name, &set, health_timeout).await?;
        let healthy_at = Instant::now();

        // Switch: one router swap moves every new request to the new set and takes every
        // other set out, so there is no moment with both or neither serving.
        let (old, switched_at) = {
            let mut routes = self.routes.lock().await;
            let route = routes
                .get_mut(name)
                .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
            route.activate(&set.id, set.weight.max(1));
            let old = route.take_out(|s| s.id != set.id);
            let switched_at = self.switch(&routes, &old);
            // Traffic has moved already; a state file that cannot be written must not stop the
            // drain, or the old targets would stay half-removed.
            if let Err(e) = self.persist(&routes) {
                tracing::error!("{e}");
            }
            (old, switched_at)
        };
        let switch_ms = switched_at.duration_since(healthy_at).as_secs_f64() * 1000.0;

        // Drain and forget the old targets, as `remove_set` does, and end the deploy.
        let drain_started = Instant::now();
        let closed_at_deadline = self.drain_out(name, &old, drain_timeout, true).await;
        let drained_ms = drain_started.elapsed().as_millis() as u64;
        Ok(DeployReport {
            route: name.to_string(),
            set: set.id,
            healthy_after_ms: healthy_at.duration_since(started).as_millis() as u64,
            switch_ms,
            drained_ms,
            closed_at_deadline,
        })
    }

    /// Adds a set beside the current ones (a canary, or a blue-green standby) once it is
    /// healthy, at the set's weight.
    pub async fn add_set(
        &self,
        name: &str,
        set: SetSpec,
        health_timeout: Duration,
    ) -> Result<(), ControlError> {
        self.add_healthy(name, &set, health_timeout).await?;
        let mut routes = self.routes.lock().await;
        let route = routes
            .get_mut(name)
            .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
        route.activate(&set.id, set.weight);
        route.busy = false;
        self.publish(&routes);
        self.persist(&routes)
    }

    /// Sets relative weights; sets not named keep theirs. All change in one swap.
    pub async fn set_weights(
        &self,
        name: &str,
        weights: &BTreeMap<String, u32>,
    ) -> Result<(), ControlError> {
        let mut routes = self.routes.lock().await;
        let route = routes
            .get_mut(name)
            .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
        for (id, weight) in weights {
            if *weight > berth_proxy_api::route::MAX_WEIGHT {
                return Err(ControlError::Invalid(format!(
                    "weight {weight} is above {}",
                    berth_proxy_api::route::MAX_WEIGHT
                )));
            }
            if !route.sets.iter().any(|s| &s.spec.id == id && !s.pending) {
                return Err(ControlError::NoSet {
                    route: name.to_string(),
                    set: id.clone(),
                });
            }
        }
        for s in &mut route.sets {
            if let Some(w) = weights.get(&s.spec.id) {
                s.spec.weight = *w;
            }
        }
        self.publish(&routes);
        self.persist(&routes)
    }

    /// Takes a set out of rotation and drains it; answers after the drain.
    pub async fn remove_set(
        &self,
        name: &str,
        id: &str,
        drain_timeout: Duration,
    ) -> Result<usize, ControlError> {
        let old = {
            let mut routes = self.routes.lock().await;
            let route = routes
                .get_mut(name)
                .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
            if !route.sets.iter().any(|s| s.spec.id == id && !s.pending) {
                return Err(ControlError::NoSet {
                    route: name.to_string(),
                    set: id.to_string(),
                });
            }
            let old = route.take_out(|s| s.id == id);
            self.switch(&routes, &old);
            self.persist(&routes)?;
            old
        };
        Ok(self.drain_out(name, &old, drain_timeout, false).await)
    }

    pub async fn pause(&self, name: &str, limit: Duration) -> Result<(), ControlError> {
        let routes = self.routes.lock().await;
        let route = routes
            .get(name)
            .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
        route.control.pause(limit);
        Ok(())
    }

    pub async fn resume(&self, name: &str) -> Result<(), ControlError> {
        let routes = self.routes.lock().await;
        let route = routes
            .get(name)
            .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
        route.control.resume();
        Ok(())
    }

    pub async fn maintenance(
        &self,
        name: &str,
        message: Option<String>,
    ) -> Result<(), ControlError> {
        let mut routes = self.routes.lock().await;
        let route = routes
            .get_mut(name)
            .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
        route.spec.maintenance = message;
        self.publish(&routes);
        self.persist(&routes)
    }

    pub async fn routes(&self) -> Vec<RouteStatus> {
        let routes = self.routes.lock().await;
        routes
            .values()
            .map(|r| RouteStatus {
                name: r.spec.name.clone(),
                hosts: r.spec.hosts.clone(),
                path_prefix: r.spec.path_prefix.clone(),
                health_path: r.spec.health_path.clone(),
                maintenance: r.spec.maintenance.clone(),
                paused: r.control.is_paused(),
                deploying: r.busy,
                sets: r
                    .sets
                    .iter()
                    .map(|s| SetStatus {
                        id: s.spec.id.clone(),
                        weight: if s.pending { 0 } else { s.spec.weight },
                        pending: s.pending,
                        targets: s.targets.iter().map(|t| target_status(t)).collect(),
                    })
                    .collect(),
                draining: r.draining.iter().map(|t| target_status(t)).collect(),
            })
            .collect()
    }

    /// Whether any deploy is running; an upgrade waits for none.
    pub async fn busy(&self) -> bool {
        self.routes.lock().await.values().any(|r| r.busy)
    }

    /// The persisted routes and the live health of every target, for the next process.
    pub async fn snapshot(&self) -> (PersistedState, Vec<(String, String, Health)>) {
        let routes = self.routes.lock().await;
        let health = routes
            .values()
            .flat_map(|r| {
                r.sets
                    .iter()
                    .flat_map(|s| s.targets.iter())
                    .map(|t| (r.spec.name.clone(), t.authority.clone(), t.health()))
            })
            .collect();
        (persisted(&routes), health)
    }

    /// Adds `set` with no weight and waits until every target passed a check; a set that
    /// does not get there in time is given up and the route left as it was.
    async fn add_healthy(
        &self,
        name: &str,
        set: &SetSpec,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        let new_targets = self.add_pending(name, set).await?;
        if let Err(detail) = wait_healthy(&new_targets, timeout).await {
            self.abandon_pending(name, &set.id).await;
            return Err(ControlError::NotHealthy {
                route: name.to_string(),
                set: set.id.clone(),
                timeout_ms: timeout.as_millis() as u64,
                detail,
            });
        }
        Ok(())
    }

    /// The switch step after sets were taken out: publishes the route without them, then
    /// marks their targets draining, and returns when the new snapshot went live.
    fn switch(&self, routes: &BTreeMap<String, RouteState>, leaving: &[Arc<Target>]) -> Instant {
        // Publish before marking the old targets draining: a request still holding the
        // previous snapshot must find them usable, or it would see no target at all.
        self.publish(routes);
        let switched_at = Instant::now();
        for t in leaving {
            t.start_draining();
        }
        switched_at
    }

    /// The drain step: waits until no request or tunnel is open on `leaving`, up to
    /// `timeout`, closes what is left, forgets the targets and returns how many were open.
    async fn drain_out(
        &self,
        name: &str,
        leaving: &[Arc<Target>],
        timeout: Duration,
        end_deploy: bool,
    ) -> usize {
        let closed = drain(leaving, timeout).await;
        self.forget_drained(name, leaving, end_deploy).await;
        closed
    }

    /// Drained targets leave the route; `end_deploy` also ends the deploy that drained them.
    async fn forget_drained(&self, name: &str, old: &[Arc<Target>], end_deploy: bool) {
        let mut routes = self.routes.lock().await;
        if let Some(route) = routes.get_mut(name) {
            route
                .draining
                .retain(|t| !old.iter().any(|o| Arc::ptr_eq(o, t)));
            if end_deploy {
                route.busy = false;
            }
        }
        self.publish(&routes);
    }

    async fn add_pending(
        &self,
        name: &str,
        set: &SetSpec,
    ) -> Result<Vec<Arc<Target>>, ControlError> {
        set.validate().map_err(ControlError::Invalid)?;
        let mut routes = self.routes.lock().await;
        let route = routes
            .get_mut(name)
            .ok_or_else(|| ControlError::NoRoute(name.to_string()))?;
        if route.busy {
            return Err(ControlError::Busy(name.to_string()));
        }
        if route.sets.iter().any(|s| s.spec.id == set.id) {
            return Err(ControlError::Invalid(format!(
                "route `{name}` already has a set `{}`; deploy under a new id",
                set.id
            )));
        }
        for addr in &set.targets {
            let addr = parse_target(addr).map_err(ControlError::Invalid)?;
            // A draining target may come back as a new set: a deploy reverting one that was
            // killed while it drained the old replicas puts those same replicas back. The
            // draining copy finishes its in-flight requests; new ones go to the new set.
            let taken = route
                .sets
                .iter()
                .flat_map(|s| s.targets.iter())
                .any(|t| t.addr == addr);
            if taken {
                return Err(ControlError::Invalid(format!(
                    "target {addr} already serves route `{name}`; a new set needs new targets"
                )));
            }
        }
        let targets: Vec<Arc<Target>> = set
            .targets
            .iter()
            .filter_map(|t| parse_target(t).ok())
            .map(Target::new)
            .collect();
        for t in &targets {
            self.check(t, &route.spec);
        }
        route.busy = true;
        route.sets.push(SetState {
            spec: set.clone(),
            targets: targets.clone(),
            pending: true,
        });
        self.publish(&routes);
        Ok(targets)
    }

    async fn abandon_pending(&self, name: &str, id: &str) {
        let mut routes = self.routes.lock().await;
        if let Some(route) = routes.get_mut(name) {
            route.sets.retain(|s| !(s.pending && s.spec.id == id));
            route.busy = false;
        }
        self.publish(&routes);
    }

    /// Builds a new routing snapshot and swaps it in.
    fn publish(&self, routes: &BTreeMap<String, RouteState>) {
        let services = routes.values().map(|r| {
            Arc::new(Service {
                spec: Arc::new(r.visible_spec()),
                sets: r
                    .sets
                    .iter()
                    .map(|s| {
                        TargetSet::new(
                            s.spec.id.clone(),
                            if s.pending { 0 } else { s.spec.weight },
                            s.targets.clone(),
                        )
                    })
                    .collect(),
                draining: r.draining.clone(),
                control: r.control.clone(),
                metrics: self.forwarder.metrics.route(&r.spec.name),
            })
        });
        self.forwarder.router.store(Arc::new(Router::new(services)));
    }

    fn persist(&self, routes: &BTreeMap<String, RouteState>) -> Result<(), ControlError> {
        state::save(&self.state_file, &persisted(routes)).map_err(|source| ControlError::Persist {
            path: self.state_file.clone(),
            source,
        })
    }
}

fn persisted(routes: &BTreeMap<String, RouteState>) -> PersistedState {
    PersistedState {
        version: STATE_VERSION,
        routes: routes.values().map(RouteState::visible_spec).collect(),
    }
}

fn target_status(t: &Target) -> TargetStatus {
    TargetStatus {
        addr: t.authority.clone(),
        health: t.health(),
        draining: t.is_draining(),
        inflight: t.inflight(),
        requests: t.requests(),
        failures: t.failures(),
        server_errors: t.server_errors(),
        latency_buckets: t.latency_counts(),
    }
}

/// Waits until every target passed a check, or says which did not by the deadline.
async fn wait_healthy(targets: &[Arc<Target>], timeout: Duration) -> Result<(), String> {
    let all = async {
        for t in targets {
            let mut rx = t.watch_health();
            let _ = rx.wait_for(|h| *h == Health::Healthy).await;
        }
    };
    match tokio::time::timeout(timeout, all).await {
        Ok(()) => Ok(()),
        Err(_) => Err(targets
            .iter()
            .filter(|t| t.health() != Health::Healthy)
            .map(|t| format!("{} is {:?}", t.authority, t.health()).to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")),
    }
}

/// Waits until no request or tunnel is open on `targets`, up to `timeout`; then closes
/// what is left and returns how many were open.
async fn drain(targets: &[Arc<Target>], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let open: usize = targets.iter().map(|t| t.inflight()).sum();
        if open == 0 {
            return 0;
        }
        if Instant::now() >= deadline {
            for t in targets {
                t.close_tunnels();
            }
            return open;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Control {
    /// Requests and tunnels open on any target, draining ones included.
    pub async fn open_connections(&self) -> usize {
        let routes = self.routes.lock().await;
        routes
            .values()
            .flat_map(|r| {
                r.sets
                    .iter()
                    .flat_map(|s| s.targets.iter())
                    .chain(r.draining.iter())
            })
            .map(|t| t.inflight())
            .sum()
    }
}
