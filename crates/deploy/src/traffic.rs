//! Moving traffic: what a deploy asks of the proxy, through its admin client. The proxy knows
//! nothing of Compose; this is where a service's route and replicas become its route spec,
//! target sets and weights.

use crate::policy::Route;
use crate::rollout::RolloutError;
use berth_proxy_api::status::RouteStatus;
use berth_proxy_api::{AdminClient, AdminError, RouteSpec, SetSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// The proxy of this host, as a deploy uses it.
pub struct Traffic {
    client: AdminClient,
}

/// Requests and errors (5xx answers and failed connections) counted by the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCounts {
    pub requests: u64,
    pub errors: u64,
    /// Responses per latency bucket (`berth_proxy_api::status::latency_bound_seconds`).
    pub latency: Vec<u64>,
}

impl SetCounts {
    /// The counts since `base` (targets forgotten since then count as zero).
    pub fn since(&self, base: &SetCounts) -> SetCounts {
        let requests = self.requests.saturating_sub(base.requests);
        SetCounts {
            requests,
            // A request is counted when it starts and an error when it ends, so a snapshot
            // can hold an error whose request was counted before the base; never more errors
            // than requests.
            errors: self.errors.saturating_sub(base.errors).min(requests),
            latency: self
                .latency
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(base.latency.get(i).copied().unwrap_or(0)))
                .collect(),
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            (self.errors.min(self.requests)) as f64 / self.requests as f64
        }
    }

    /// The 99th percentile response time in milliseconds, as the upper bound of its bucket;
    /// None with fewer than [`crate::policy::MIN_REQUESTS_FOR_RATE`] responses.
    pub fn p99_ms(&self) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total < crate::policy::MIN_REQUESTS_FOR_RATE {
            return None;
        }
        let want = (total as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(berth_proxy_api::status::latency_bound_seconds(i) * 1000.0);
            }
        }
        None
    }
}

/// How long a change waits while the route is busy with another change (409), e.g. a
/// health wait a killed deploy had started, which the proxy finishes on its own.
const BUSY_WAIT: Duration = Duration::from_secs(120);

async fn retry_busy<T, F, Fut>(f: F) -> Result<T, AdminError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, AdminError>>,
{
    let until = std::time::Instant::now() + BUSY_WAIT;
    loop {
        match f().await {
            Err(AdminError::Refused { status: 409, .. }) if std::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            r => return r,
        }
    }
}

fn proxy_err(service: &str, e: AdminError) -> RolloutError {
    RolloutError::Proxy {
        service: service.to_string(),
        message: e.to_string(),
    }
}

impl Traffic {
    pub fn new(client: AdminClient) -> Traffic {
        Traffic { client }
    }

    /// Checks that the proxy answers, before anything changes.
    pub async fn check(&self) -> Result<(), AdminError> {
        self.client.status().await.map(|_| ())
    }

    async fn route(&self, name: &str) -> Result<Option<RouteStatus>, AdminError> {
        Ok(self
            .client
            .status()
            .await?
            .routes
            .into_iter()
            .find(|r| r.name == name))
    }

    /// Creates the route, or updates its hosts, prefix and health path while keeping its
    /// target sets, so a changed `x-berth.proxy` applies without moving traffic.
    pub async fn ensure_route(&self, route: &Route, service: &str) -> Result<(), RolloutError> {
        let current = self
            .route(&route.name)
            .await
            .map_err(|e| proxy_err(service, e))?;
        let sets = match &current {
            Some(r)
                if r.hosts == route.hosts
                    && r.path_prefix == route.path_prefix
                    && r.health_path.as_deref() == Some(route.health_path.as_str()) =>
            {
                return Ok(())
            }
            Some(r) => r
                .sets
                .iter()
                .filter(|s| !s.pending)
                .map(|s| SetSpec {
                    id: s.id.clone(),
                    weight: s.weight,
                    targets: s.targets.iter().map(|t| t.addr.clone()).collect(),
                })
                .collect(),
            None => Vec::new(),
        };
        let spec = RouteSpec {
            name: route.name.clone(),
            hosts: route.hosts.clone(),
            path_prefix: route.path_prefix.clone(),
            health_path: Some(route.health_path.clone()),
            sets,
            maintenance: current.and_then(|r| r.maintenance),
        };
        retry_busy(|| self.client.put_route(&spec))
            .await
            .map_err(|e| proxy_err(service, e))
    }

    pub async fn remove_set(
        &self,
        route: &str,
        set: &str,
        drain: Duration,
        service: &str,
    ) -> Result<(), RolloutError> {
        retry_busy(|| self.client.remove_set(route, set, drain))
            .await
            .map_err(|e| proxy_err(service, e))
    }

    /// The route once no change runs in it.
    ///
    /// A change still running in the proxy (one a killed deploy started, which the proxy
    /// finishes on its own) is waited for, up to `BUSY_WAIT`: its pending set may still
    /// become live, and a decision taken before it settles (which sets to remove on a revert,
    /// which are stale) would leave that set behind, serving a removed container's address.
    async fn settled(&self, route: &str) -> Result<Option<RouteStatus>, RolloutError> {
        let until = std::time::Instant::now() + BUSY_WAIT;
        loop {
            let r = self.route(route).await.map_err(|e| proxy_err(route, e))?;
            match &r {
                Some(status) if status.deploying && std::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => return Ok(r),
            }
        }
    }

    /// The route as the proxy serves it once no change runs in it: its settings and the sets
    /// that take part in routing (not pending), with their weights and addresses. None when
    /// the proxy has no such route.
    pub async fn route_spec(&self, route: &str) -> Result<Option<RouteSpec>, RolloutError> {
        Ok(self.settled(route).await?.map(|r| RouteSpec {
            name: r.name,
            hosts: r.hosts,
            path_prefix: r.path_prefix,
            health_path: r.health_path,
            sets: r
                .sets
                .into_iter()
                .filter(|s| !s.pending)
                .map(|s| SetSpec {
                    id: s.id,
                    weight: s.weight,
                    targets: s.targets.into_iter().map(|t| t.addr).collect(),
                })
                .collect(),
            maintenance: r.maintenance,
        }))
    }

    /// Replaces a route's settings and sets in one change. Targets it already had keep their
    /// health only while the health path stays the same.
    pub async fn put_route(&self, spec: &RouteSpec, service: &str) -> Result<(), RolloutError> {
        retry_busy(|| self.client.put_route(spec))
            .await
            .map_err(|e| proxy_err(service, e))
    }

    /// Removes a route; one that is not there is already what was asked.
    pub async fn remove_route(&self, route: &str, service: &str) -> Result<(), RolloutError> {
        match retry_busy(|| self.client.remove_route(route)).await {
            Ok(()) | Err(AdminError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(proxy_err(service, e)),
        }
    }

    /// Holds the route's new requests (each for up to `hold`) until [`Traffic::resume`].
    pub async fn pause(
        &self,
        route: &str,
        hold: Duration,
        service: &str,
    ) -> Result<(), RolloutError> {
        self.client
            .pause(route, hold)
            .await
            .map_err(|e| proxy_err(service, e))
    }

    pub async fn resume(&self, route: &str, service: &str) -> Result<(), RolloutError> {
        self.client
            .resume(route)
            .await
            .map_err(|e| proxy_err(service, e))
    }

    /// Waits until every target at `addrs` in the route's sets passed the proxy's health
    /// check; false when `deadline` passed first.
    pub async fn wait_healthy(
        &self,
        route: &str,
        addrs: &[String],
        deadline: Duration,
        service: &str,
    ) -> Result<bool, RolloutError> {
        let until = std::time::Instant::now() + deadline;
        loop {
            let r = self.route(route).await.map_err(|e| proxy_err(service, e))?;
            let healthy = r
                .iter()
                .flat_map(|r| &r.sets)
                .flat_map(|s| &s.targets)
                .filter(|t| {
                    addrs.contains(&t.addr)
                        && t.health == berth_proxy_api::status::HealthName::Healthy
                });
            if healthy.count() >= addrs.len() {
                return Ok(true);
            }
            if std::time::Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The route's sets that take part in routing (not pending): id, weight, targets, once
    /// no change runs in the route (see `settled`).
    pub async fn sets(&self, route: &str) -> Result<Vec<(String, u32, Vec<String>)>, RolloutError> {
        let r = self.settled(route).await?;
        Ok(r.map(|r| {
            r.sets
                .into_iter()
                .filter(|s| !s.pending)
                .map(|s| {
                    (
                        s.id,
                        s.weight,
                        s.targets.into_iter().map(|t| t.addr).collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
    }

    /// Makes sure the replica (`container` at `addr`) has its own set at `weight`: added once
    /// healthy when missing, re-weighted when present.
    pub async fn ensure_replica(
        &self,
        route: &str,
        container: &str,
        addr: &str,
        weight: u32,
        health: Duration,
        service: &str,
    ) -> Result<(), RolloutError> {
        let set = SetSpec {
            id: replica_set(container),
            weight,
            targets: vec![addr.to_string()],
        };
        self.ensure_set(route, &set, health, service).await
    }

    /// Makes sure the route has `set` as given: added once healthy when missing, re-weighted
    /// when present with the same targets, replaced when its targets moved.
    pub async fn ensure_set(
        &self,
        route: &str,
        set: &SetSpec,
        health: Duration,
        service: &str,
    ) -> Result<(), RolloutError> {
        let sets = self.sets(route).await?;
        match sets.iter().find(|(s, _, _)| *s == set.id) {
            Some((_, w, targets)) if *targets == set.targets => {
                if *w != set.weight {
                    retry_busy(|| {
                        self.client
                            .set_weights(route, BTreeMap::from([(set.id.clone(), set.weight)]))
                    })
                    .await
                    .map_err(|e| proxy_err(service, e))?;
                }
                Ok(())
            }
            Some(_) => {
                // The container came back with another address: replace its set.
                self.remove_set(route, &set.id, Duration::ZERO, service)
                    .await?;
                self.add_set(route, set, health, service).await
            }
            None => self.add_set(route, set, health, service).await,
        }
    }

    async fn add_set(
        &self,
        route: &str,
        set: &SetSpec,
        health: Duration,
        service: &str,
    ) -> Result<(), RolloutError> {
        match retry_busy(|| self.client.add_set(route, set.clone(), health)).await {
            Ok(()) => Ok(()),
            // The proxy gave the set up at its deadline and left the route as it was.
            Err(AdminError::Refused { status: 422, .. }) => Err(RolloutError::ProxyCheckFailed {
                service: service.to_string(),
                set: set.id.clone(),
            }),
            Err(e) => Err(proxy_err(service, e)),
        }
    }

    /// Sets several sets' weights in one swap.
    pub async fn set_weights(
        &self,
        route: &str,
        weights: BTreeMap<String, u32>,
        service: &str,
    ) -> Result<(), RolloutError> {
        retry_busy(|| self.client.set_weights(route, weights.clone()))
            .await
            .map_err(|e| proxy_err(service, e))
    }

    /// Requests and errors counted for the given sets.
    pub async fn counts(&self, route: &str, sets: &[String]) -> Result<SetCounts, RolloutError> {
        let r = self.route(route).await.map_err(|e| proxy_err(route, e))?;
        let mut c = SetCounts::default();
        for s in r
            .iter()
            .flat_map(|r| &r.sets)
            .filter(|s| sets.contains(&s.id))
        {
            for t in &s.targets {
                c.requests += t.requests;
                c.errors += t.server_errors + t.failures;
                if c.latency.len() < t.latency_buckets.len() {
                    c.latency.resize(t.latency_buckets.len(), 0);
                }
                for (i, n) in t.latency_buckets.iter().enumerate() {
                    c.latency[i] += n;
                }
            }
        }
        Ok(c)
    }
}

/// The id of a replica's own set: its container's short id. Every routed replica has one
/// set, so a replica is added and removed without touching the others (their WebSockets stay
/// open), and the set of any container is found from the engine alone.
pub fn replica_set(container_id: &str) -> String {
    format!("c{}", &container_id[..container_id.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, errors: u64, latency: &[u64]) -> SetCounts {
        SetCounts {
            requests,
            errors,
            latency: latency.to_vec(),
        }
    }

    #[test]
    fn an_error_counted_after_its_request_never_makes_the_rate_exceed_one() {
        // The demo once printed "63 of 62 requests failed": a request counted before the
        // base, its error after it.
        let d = counts(162, 163, &[]).since(&counts(100, 100, &[]));
        assert_eq!((d.requests, d.errors), (62, 62));
        assert_eq!(d.error_rate(), 1.0);
        assert_eq!(counts(0, 0, &[]).error_rate(), 0.0);
    }

    #[test]
    fn p99_is_the_bound_of_the_bucket_holding_the_99th_percentile() {
        // 99 responses under 0.5 ms and 1 in the 8 ms bucket: p99 is still 0.5 ms.
        let mut l = vec![0; 18];
        l[0] = 99;
        l[4] = 1;
        assert_eq!(counts(100, 0, &l).p99_ms(), Some(0.5));
        // 2% slow: p99 moves to the slow bucket.
        l[4] = 2;
        assert_eq!(counts(101, 0, &l).p99_ms(), Some(8.0));
        // Too few responses say nothing.
        assert_eq!(counts(5, 0, &[5]).p99_ms(), None);
        // Deltas are per bucket.
        let d = counts(0, 0, &[120, 0, 0, 0, 30]).since(&counts(0, 0, &[100, 0, 0, 0, 0]));
        assert_eq!(d.latency, vec![20, 0, 0, 0, 30]);
    }
}
