//! A route at run time: its spec, its target sets, and the controls shared by every snapshot.

use crate::target::Target;
use berth_proxy_api::route::RouteSpec;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// An immutable snapshot of one route, rebuilt on every change and swapped in atomically
/// with the router. Targets are shared between snapshots (`Arc`), so health, in-flight
/// counts and drain flags survive a reconfiguration.
#[derive(Debug)]
pub struct Service {
    pub spec: Arc<RouteSpec>,
    pub sets: Vec<TargetSet>,
    /// Targets that left the route and are finishing their in-flight requests.
    pub draining: Vec<Arc<Target>>,
    pub control: Arc<RouteControl>,
    pub metrics: crate::metrics::RouteMetrics,
}

#[derive(Debug)]
pub struct TargetSet {
    pub id: String,
    pub weight: u32,
    pub targets: Vec<Arc<Target>>,
    pub(crate) next: AtomicUsize,
}

impl TargetSet {
    pub fn new(id: String, weight: u32, targets: Vec<Arc<Target>>) -> TargetSet {
        TargetSet {
            id,
            weight,
            targets,
            next: AtomicUsize::new(0),
        }
    }

    pub fn has_available(&self) -> bool {
        self.targets.iter().any(|t| t.is_available())
    }
}

/// State of a route that outlives snapshots: the request counter the weighted choice
/// walks, and pause.
#[derive(Debug)]
pub struct RouteControl {
    pub(crate) counter: AtomicU64,
    paused: watch::Sender<bool>,
    pause_limit_ms: AtomicU64,
}

impl Default for RouteControl {
    fn default() -> Self {
        RouteControl {
            counter: AtomicU64::new(0),
            paused: watch::channel(false).0,
            pause_limit_ms: AtomicU64::new(0),
        }
    }
}

impl RouteControl {
    /// Holds new requests for at most `limit` each, until `resume`.
    pub fn pause(&self, limit: Duration) {
        self.pause_limit_ms
            .store(limit.as_millis() as u64, Ordering::Release);
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits while the route is paused; false when the hold limit passed first.
    pub async fn wait_unpaused(&self) -> bool {
        if !self.is_paused() {
            return true;
        }
        let limit = Duration::from_millis(self.pause_limit_ms.load(Ordering::Acquire));
        let mut rx = self.paused.subscribe();
        let resumed = async move { rx.wait_for(|paused| !paused).await.is_ok() };
        tokio::time::timeout(limit, resumed).await.unwrap_or(false)
    }
}

impl Service {
    /// Every target of the route, active sets first, then draining ones.
    pub fn all_targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.sets
            .iter()
            .flat_map(|s| s.targets.iter())
            .chain(self.draining.iter())
    }
}
