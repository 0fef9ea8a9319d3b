//! Prometheus metrics: requests, durations, in-flight, upstream errors, health transitions.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
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
    pub duration: Histogram,
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

fn duration_histogram() -> Histogram {
    // From 0.5 ms to about 32 s: loopback targets answer in well under a millisecond, and
    // the slow end covers long polls.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 17,
    ))
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
    pub duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub inflight: Family<RouteLabels, Gauge>,
    pub upstream_errors: Family<ErrorLabels, Counter>,
    pub health_transitions: Family<TransitionLabels, Counter>,
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
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
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
        Metrics {
            registry,
            requests,
            duration,
            inflight,
            upstream_errors,
            health_transitions,
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
