//! Prometheus metrics: requests, durations, in-flight, upstream errors, health transitions,
//! and client connections per worker thread.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub target: String,
    pub class: StatusClass,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum StatusClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl EncodeLabelValue for StatusClass {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        })
    }
}

impl StatusClass {
    pub fn of(status: u16) -> StatusClass {
        match status {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub route: String,
    pub target: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub target: String,
    pub to: &'static str,
}

/// One route's metric handles, made when the route is published so that the request path
/// only increments (each handle shares its value with the registry).
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    pub duration: LatencyHistogram,
    pub inflight: Gauge,
    /// Responses the proxy made itself (503 without a target, 404…), by status class.
    pub untargeted: [Counter; 5],
}

impl RouteMetrics {
    /// Handles registered nowhere, for snapshots built in unit tests.
    pub fn detached() -> RouteMetrics {
        RouteMetrics {
            duration: duration_histogram(),
            inflight: Gauge::default(),
            untargeted: Default::default(),
        }
    }
}

fn duration_histogram() -> LatencyHistogram {
    LatencyHistogram::new()
}

/// A histogram observed with atomics only. prometheus-client's own takes a write lock per
/// observation, which every request of every data-plane thread would contend for.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    inner: std::sync::Arc<HistogramInner>,
}

#[derive(Debug)]
struct HistogramInner {
    bounds: Vec<f64>,
    counts: Vec<std::sync::atomic::AtomicU64>,
    sum_nanos: std::sync::atomic::AtomicU64,
    count: std::sync::atomic::AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> LatencyHistogram {
        // From 0.5 ms to about 32 s: loopback targets answer in well under a millisecond,
        // and the slow end covers long polls. The last bound catches everything above.
        let bounds: Vec<f64> =
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 17)
                .chain(std::iter::once(f64::MAX))
                .collect();
        let counts = bounds.iter().map(|_| Default::default()).collect();
        LatencyHistogram {
            inner: std::sync::Arc::new(HistogramInner {
                bounds,
                counts,
                sum_nanos: Default::default(),
                count: Default::default(),
            }),
        }
    }

    /// The count of each bucket (not cumulative), in bound order; the bounds are
    /// [`berth_proxy_api::status::latency_bound_seconds`].
    pub fn counts(&self) -> Vec<u64> {
        self.inner
            .counts
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .collect()
    }

    pub fn observe(&self, seconds: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &self.inner;
        let index = inner
            .bounds
            .iter()
            .position(|bound| *bound >= seconds)
            .unwrap_or(inner.bounds.len() - 1);
        inner.counts[index].fetch_add(1, Relaxed);
        inner.sum_nanos.fetch_add((seconds * 1e9) as u64, Relaxed);
        inner.count.fetch_add(1, Relaxed);
    }
}

impl prometheus_client::metrics::TypedMetric for LatencyHistogram {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for LatencyHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &self.inner;
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .zip(&inner.counts)
            .map(|(bound, count)| (*bound, count.load(Relaxed)))
            .collect();
        let sum = inner.sum_nanos.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum,
            inner.count.load(Relaxed),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        <Self as prometheus_client::metrics::TypedMetric>::TYPE
    }
}

const CLASSES: [StatusClass; 5] = [
    StatusClass::Informational,
    StatusClass::Success,
    StatusClass::Redirection,
    StatusClass::ClientError,
    StatusClass::ServerError,
];

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, LatencyHistogram, fn() -> LatencyHistogram>,
    pub inflight: Family<RouteLabels, Gauge>,
    pub upstream_errors: Family<ErrorLabels, Counter>,
    pub health_transitions: Family<TransitionLabels, Counter>,
    /// Client connections a worker passed to a less loaded one at accept (`balance`).
    pub connections_moved: Counter,
    /// Open client connections by worker thread.
    pub worker_connections: Family<WorkerLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("berth_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route, target and status class",
            requests.clone(),
        );
        let duration =
            Family::<RouteLabels, LatencyHistogram, fn() -> LatencyHistogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "request_duration_seconds",
            "Time from request to response head, by route",
            duration.clone(),
        );
        let inflight = Family::<RouteLabels, Gauge>::default();
        registry.register("inflight", "Requests in flight, by route", inflight.clone());
        let upstream_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Failed requests to targets, by kind (connect, timeout, other)",
            upstream_errors.clone(),
        );
        let health_transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "health_transitions",
            "Target health changes, by the state entered",
            health_transitions.clone(),
        );
        let connections_moved = Counter::default();
        registry.register(
            "connections_moved",
            "Client connections passed at accept to a less loaded worker thread",
            connections_moved.clone(),
        );
        let worker_connections = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "worker_connections",
            "Open client connections, by data-plane worker thread",
            worker_connections.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            inflight,
            upstream_errors,
            health_transitions,
            connections_moved,
            worker_connections,
        }
    }

    pub fn route(&self, route: &str) -> RouteMetrics {
        let labels = RouteLabels {
            route: route.to_string(),
        };
        RouteMetrics {
            duration: self.duration.get_or_create(&labels).clone(),
            inflight: self.inflight.get_or_create(&labels).clone(),
            untargeted: self.target_counters(route, ""),
        }
    }

    /// Response counters of one target of one route, by status class.
    pub fn target_counters(&self, route: &str, target: &str) -> [Counter; 5] {
        CLASSES.map(|class| {
            self.requests
                .get_or_create(&RequestLabels {
                    route: route.to_string(),
                    target: target.to_string(),
                    class,
                })
                .clone()
        })
    }

    /// The text exposition format Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
