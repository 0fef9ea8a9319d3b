//! One upstream address and what the proxy knows about it right now.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Health is part of the admin vocabulary (`GET /status` reports it); the data plane keeps
/// it in an atomic as the enum's discriminant.
pub use berth_proxy_api::status::Health;

fn health_from_u8(value: u8) -> Health {
    match value {
        1 => Health::Healthy,
        2 => Health::Unhealthy,
        _ => Health::Unknown,
    }
}

#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// `IP:PORT` as text, kept for URIs and metric labels so that the hot path formats nothing.
    pub authority: String,
    /// The same, parsed once for upstream request URIs.
    pub uri_authority: hyper::http::uri::Authority,
    health: AtomicU8,
    draining: AtomicBool,
    inflight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
    /// 5xx answers from this target (its own, not the proxy's), for a deploy's error-rate check.
    server_errors: AtomicU64,
    /// Response times of this target, for a canary's latency comparison.
    latency: crate::metrics::LatencyHistogram,
    /// Health changes, for waiters (deploys waiting for a new set); readers on the hot path
    /// use the atomic instead.
    health_tx: watch::Sender<Health>,
    /// Set to true when the drain deadline passes: open tunnels (WebSockets) close then.
    close_tx: watch::Sender<bool>,
    /// Response counters by status class, attached by the control plane.
    responses: std::sync::OnceLock<[prometheus_client::metrics::counter::Counter; 5]>,
}

impl Target {
    pub fn new(addr: SocketAddr) -> Arc<Target> {
        Target::with_health(addr, Health::Unknown)
    }

    pub fn with_health(addr: SocketAddr, health: Health) -> Arc<Target> {
        Arc::new(Target {
            addr,
            authority: addr.to_string(),
            uri_authority: hyper::http::uri::Authority::try_from(addr.to_string().as_str())
                .expect("a socket address is a valid URI authority"),
            health: AtomicU8::new(health as u8),
            draining: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            latency: crate::metrics::LatencyHistogram::new(),
            health_tx: watch::channel(health).0,
            close_tx: watch::channel(false).0,
            responses: std::sync::OnceLock::new(),
        })
    }

    pub fn health(&self) -> Health {
        health_from_u8(self.health.load(Ordering::Acquire))
    }

    /// Records a new health state; returns the previous one so callers can count transitions.
    pub fn set_health(&self, health: Health) -> Health {
        let previous = health_from_u8(self.health.swap(health as u8, Ordering::AcqRel));
        if previous != health {
            self.health_tx.send_replace(health);
        }
        previous
    }

    /// Whether the load balancer may send a new request here.
    pub fn is_available(&self) -> bool {
        self.health.load(Ordering::Acquire) == Health::Healthy as u8
            && !self.draining.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Takes a target back into service (a rollback to a set that is still draining).
    pub fn stop_draining(&self) {
        self.draining.store(false, Ordering::Release);
        self.close_tx.send_replace(false);
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn observe_latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    pub fn latency_counts(&self) -> Vec<u64> {
        self.latency.counts()
    }

    pub fn server_errors(&self) -> u64 {
        self.server_errors.load(Ordering::Relaxed)
    }

    pub fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request (or an open tunnel) against this target until the guard drops.
    pub fn begin(self: &Arc<Target>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InflightGuard(self.clone())
    }

    pub fn attach_counters(&self, counters: [prometheus_client::metrics::counter::Counter; 5]) {
        let _ = self.responses.set(counters);
    }

    /// Counts a response of status class `class` (0 for 1xx … 4 for 5xx).
    pub fn count_response(&self, class: usize) {
        if class == 4 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(counters) = self.responses.get() {
            counters[class].inc();
        }
    }

    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.health_tx.subscribe()
    }

    /// Tells open tunnels to this target to close.
    pub fn close_tunnels(&self) {
        self.close_tx.send_replace(true);
    }

    pub fn watch_close(&self) -> watch::Receiver<bool> {
        self.close_tx.subscribe()
    }
}

/// Held for as long as a request to a target is in flight (including while its response
/// body streams), so that a drain knows when the target is idle.
#[derive(Debug)]
pub struct InflightGuard(Arc<Target>);

impl InflightGuard {
    pub fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_targets_get_no_traffic_until_healthy() {
        let target = Target::new("127.0.0.1:1".parse().unwrap());
        assert!(!target.is_available());
        target.set_health(Health::Healthy);
        assert!(target.is_available());
        target.start_draining();
        assert!(!target.is_available());
    }

    #[test]
    fn inflight_counts_until_the_guard_drops() {
        let target = Target::new("127.0.0.1:1".parse().unwrap());
        let a = target.begin();
        let b = target.begin();
        assert_eq!(target.inflight(), 2);
        drop(a);
        drop(b);
        assert_eq!(target.inflight(), 0);
        assert_eq!(target.requests(), 2);
    }
}
