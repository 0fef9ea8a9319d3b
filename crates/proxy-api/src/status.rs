//! What `GET /status` answers: routes, sets, targets, health and in-flight counts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    pub listen: Vec<String>,
    pub tls_listen: Vec<String>,
    pub routes: Vec<RouteStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteStatus {
    pub name: String,
    pub hosts: Vec<String>,
    pub path_prefix: String,
    pub health_path: Option<String>,
    pub maintenance: Option<String>,
    pub paused: bool,
    pub deploying: bool,
    pub sets: Vec<SetStatus>,
    pub draining: Vec<TargetStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetStatus {
    pub id: String,
    pub weight: u32,
    /// A set being deployed: health-checked, not yet given traffic.
    pub pending: bool,
    pub targets: Vec<TargetStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetStatus {
    pub addr: String,
    pub health: HealthName,
    pub draining: bool,
    pub inflight: usize,
    pub requests: u64,
    pub failures: u64,
    /// 5xx responses the target sent (a deploy compares them with `requests`).
    #[serde(default)]
    pub server_errors: u64,
    /// Responses per latency bucket (bounds: [`latency_bound_seconds`]), for a
    /// canary's p99 against stable's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_buckets: Vec<u64>,
}

/// Health as the load balancer sees it. A target starts `Unknown` and gets no traffic until
/// a check passes, so a container that is still booting (or a target restored from the
/// state file) never receives a request. The discriminants are the proxy's atomic encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Unknown = 0,
    Healthy = 1,
    Unhealthy = 2,
}

/// The name `TargetStatus::health` has always had in the admin API's clients.
pub use Health as HealthName;

/// The upper bound of latency bucket `i` in seconds: 0.5 ms doubling, the last one
/// unbounded. It is part of the wire contract: `TargetStatus::latency_buckets` counts per
/// bucket, and a client reading them needs the same bounds as the proxy that counted.
pub fn latency_bound_seconds(i: usize) -> f64 {
    if i >= 17 {
        f64::INFINITY
    } else {
        0.0005 * 2f64.powi(i as i32)
    }
}

/// The answer to a deploy, after the drain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployReport {
    pub route: String,
    pub set: String,
    /// From the request to every new target passing its health check.
    pub healthy_after_ms: u64,
    /// From the last target passing to traffic moving to the new set.
    pub switch_ms: f64,
    pub drained_ms: u64,
    /// Requests or tunnels still open on the old set when `drain_timeout` passed, closed then.
    pub closed_at_deadline: usize,
}
