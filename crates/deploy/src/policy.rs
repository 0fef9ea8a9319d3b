//! How one service is rolled out: what kind of service it is (routed through the proxy, a
//! worker, or the single writer of a volume), the strategy, and `deploy.update_config` with
//! berth's safe defaults filled in. Pure: read from the typed project, no I/O.

use berth_compose::berth_ext::Strategy;
use berth_compose::model::{Service, UpdateConfig};
use berth_compose::Project;
use berth_engine::{ContainerSpec, MountSpec};
use std::time::Duration;

/// How long the new version is watched after its last replica took traffic, when
/// `update_config.monitor` is not set. Swarm's default is 5 s as well.
pub const DEFAULT_MONITOR: Duration = Duration::from_secs(5);
/// The share of 5xx answers (and failed connections) above which a new version is rolled
/// back, when `x-berth.canary.max_error_rate` does not say otherwise.
pub const DEFAULT_MAX_ERROR_RATE: f64 = berth_compose::berth_ext::Canary::DEFAULT_MAX_ERROR_RATE;
/// Fewer requests than this in the monitor window say nothing about an error rate.
pub const MIN_REQUESTS_FOR_RATE: u64 = 20;
/// How long a blue-green deploy keeps the previous set running for an instant rollback.
pub const DEFAULT_KEEP_OLD: Duration = Duration::from_secs(300);

/// What kind of service this is, which decides how its replicas may overlap.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Behind the proxy: traffic moves by the proxy, never by starting or stopping.
    Routed(Route),
    /// Not behind the proxy: start-first only when a healthcheck can say the new one works.
    Worker { has_healthcheck: bool },
    /// Mounts a named volume read-write: stop-first only, never two containers on it.
    Stateful { volume: String },
}

/// The proxy route of a routed service, in the proxy's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// `PROJECT-SERVICE`: the route's identity in the proxy, unique per host.
    pub name: String,
    pub hosts: Vec<String>,
    pub path_prefix: String,
    pub health_path: String,
    /// The container port the proxy forwards to.
    pub port: u16,
}

/// The update order and failure action are the compose model's own enums: the loader
/// validates them once, with the location of a bad value, so the policy only decides.
pub use berth_compose::model::{FailureAction, Order};

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: Kind,
    pub strategy: Strategy,
    pub order: Order,
    /// Replicas replaced at a time (at least 1).
    pub parallelism: usize,
    /// Pause between batches.
    pub delay: Duration,
    /// How long the new version is watched after it took all traffic.
    pub monitor: Duration,
    pub max_error_rate: f64,
    pub failure_action: FailureAction,
    pub drain_timeout: Duration,
    /// How long a new replica may take to become healthy.
    pub health_deadline: Duration,
    /// The container's stop grace period (`stop_grace_period`).
    pub stop_grace: Option<Duration>,
    /// Canary steps (percentages) and the interval between them.
    pub canary_steps: Vec<u8>,
    /// Steps where the deploy holds until `berth promote` or `berth abort`.
    pub canary_pauses: Vec<u8>,
    pub canary_interval: Duration,
    /// `x-berth.release_command`, split into words; run once per deploy in the new image.
    pub release_command: Option<Vec<String>>,
    /// Why the policy differs from what the file asked for, for the CLI to warn about.
    pub notes: Vec<String>,
}

/// The policy of `service`, whose first replica is `spec` (for mounts and health).
pub fn policy(
    project: &Project,
    name: &str,
    svc: &Service,
    spec: &ContainerSpec,
    health_deadline: Duration,
) -> Result<Policy, String> {
    let ext = svc.berth.clone().unwrap_or_default();
    let update: UpdateConfig = svc
        .deploy
        .as_ref()
        .and_then(|d| d.update_config.clone())
        .unwrap_or_default();
    let mut notes = Vec::new();
    let writable_volume = spec.mounts.iter().find_map(|m| match m {
        MountSpec::Volume {
            source: Some(source),
            read_only: false,
            ..
        } => Some(source.clone()),
        _ => None,
    });
    let kind = match (&ext.proxy, writable_volume) {
        (Some(p), None) => Kind::Routed(Route {
            name: format!("{}-{}", project.name, name),
            hosts: vec![p.host.clone()],
            path_prefix: p.path_prefix.clone().unwrap_or_else(|| "/".to_string()),
            health_path: p.health_path.clone(),
            port: p.port,
        }),
        (Some(_), Some(volume)) => {
            return Err(format!(
                "service `{name}` is routed through the proxy but mounts volume `{volume}` read-write; two replicas would write to one volume during a deploy. Mount it read-only, or move the state to a database service"
            ))
        }
        (None, Some(volume)) => Kind::Stateful { volume },
        (None, None) => Kind::Worker {
            has_healthcheck: spec
                .healthcheck
                .as_ref()
                .is_some_and(|h| h.test.first().map(String::as_str) != Some("NONE")),
        },
    };
    let asked = update.order;
    let fixed_host_port = spec.ports.iter().any(|p| p.host_port.is_some());
    let order = match (&kind, asked) {
        (Kind::Stateful { volume }, Some(Order::StartFirst)) => {
            notes.push(format!(
                "service `{name}` mounts volume `{volume}` read-write, so it is updated stop-first although update_config asks for start-first: two containers never share a writable volume"
            ));
            Order::StopFirst
        }
        (Kind::Stateful { .. }, _) => Order::StopFirst,
        (_, Some(order)) => order,
        (_, None) if fixed_host_port => {
            notes.push(format!(
                "service `{name}` publishes a fixed host port, which old and new replicas cannot share; it is updated stop-first"
            ));
            Order::StopFirst
        }
        (
            Kind::Worker {
                has_healthcheck: false,
            },
            None,
        ) => Order::StopFirst,
        (_, None) => Order::StartFirst,
    };
    let failure_action = update.failure_action.unwrap_or(FailureAction::Rollback);
    let strategy = match (&kind, ext.strategy) {
        (Kind::Routed(_), s) => s,
        (_, Strategy::Rolling) => Strategy::Rolling,
        (_, s) => {
            notes.push(format!(
                "service `{name}` is not behind the proxy, so its `{}` strategy cannot split traffic; it is rolled instead",
                strategy_name(s)
            ));
            Strategy::Rolling
        }
    };
    let release_command = match &ext.release_command {
        None => None,
        Some(cmd) => Some(berth_compose::shell::split(cmd).map_err(|e| {
            format!("service `{name}`: x-berth.release_command cannot be split into words: {e}")
        })?),
    };
    Ok(Policy {
        kind,
        strategy,
        order,
        parallelism: update.parallelism.unwrap_or(1).max(1) as usize,
        delay: update.delay.map(|d| d.0).unwrap_or_default(),
        monitor: update.monitor.map(|d| d.0).unwrap_or(DEFAULT_MONITOR),
        max_error_rate: ext
            .canary
            .as_ref()
            .map(|c| c.max_error_rate)
            .unwrap_or(DEFAULT_MAX_ERROR_RATE),
        failure_action,
        drain_timeout: ext
            .drain_timeout
            .map(|d| d.0)
            .unwrap_or(berth_proxy_api::DEFAULT_DRAIN_TIMEOUT),
        health_deadline,
        stop_grace: svc.stop_grace_period.map(|d| d.0),
        canary_steps: ext
            .canary
            .as_ref()
            .map(|c| c.steps.clone())
            .unwrap_or_else(|| berth_compose::berth_ext::Canary::DEFAULT_STEPS.to_vec()),
        canary_pauses: ext
            .canary
            .as_ref()
            .map(|c| c.pause_at.clone())
            .unwrap_or_default(),
        canary_interval: ext
            .canary
            .as_ref()
            .map(|c| c.interval.0)
            .unwrap_or(berth_compose::berth_ext::Canary::DEFAULT_INTERVAL),
        release_command,
        notes,
    })
}

/// The spelling of `s`; kept for callers of the policy module, the spellings live in
/// `Strategy` itself.
pub fn strategy_name(s: Strategy) -> &'static str {
    s.as_str()
}

/// The strategy spelled `s` (`berth deploy --strategy`), or `None` for an unknown name.
pub fn parse_strategy(s: &str) -> Option<Strategy> {
    Strategy::from_name(s)
}
