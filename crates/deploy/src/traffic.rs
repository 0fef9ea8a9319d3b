//! Moving traffic: what a deploy asks of the proxy, through its admin client. The proxy knows
//! nothing of Compose; this is where a service's route and replicas become its route spec,
//! target sets and weights.

use crate::policy::Route;
use crate::rollout::RolloutError;
use berth_proxy::status::{DeployReport, RouteStatus};
use berth_proxy::{AdminClient, AdminError, RouteSpec, SetSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// The proxy of this host, as a deploy uses it.
pub struct Traffic {
    client: AdminClient,
}

/// Requests and errors (5xx answers and failed connections) counted by the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetCounts {
    pub requests: u64,
    pub errors: u64,
}

impl SetCounts {
    /// The counts since `base` (targets forgotten since then count as zero).
    pub fn since(&self, base: &SetCounts) -> SetCounts {
        SetCounts {
            requests: self.requests.saturating_sub(base.requests),
            errors: self.errors.saturating_sub(base.errors),
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
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

    pub fn client(&self) -> &AdminClient {
        &self.client
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

    /// The zero-downtime switch: the proxy checks `targets`, swaps and drains the rest, and
    /// answers after the drain.
    pub async fn deploy(
        &self,
        route: &str,
        set: &str,
        targets: Vec<String>,
        health: Duration,
        drain: Duration,
        service: &str,
    ) -> Result<DeployReport, RolloutError> {
        retry_busy(|| {
            self.client.deploy(
                route,
                SetSpec {
                    id: set.to_string(),
                    weight: 100,
                    targets: targets.clone(),
                },
                health,
                drain,
            )
        })
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

    /// The route's sets that take part in routing (not pending): id, weight, targets.
    pub async fn sets(&self, route: &str) -> Result<Vec<(String, u32, Vec<String>)>, RolloutError> {
        let r = self.route(route).await.map_err(|e| proxy_err(route, e))?;
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
        let id = replica_set(container);
        let sets = self.sets(route).await?;
        match sets.iter().find(|(s, _, _)| *s == id) {
            Some((_, w, targets)) if targets.len() == 1 && targets[0] == addr => {
                if *w != weight {
                    retry_busy(|| {
                        self.client
                            .set_weights(route, BTreeMap::from([(id.clone(), weight)]))
                    })
                    .await
                    .map_err(|e| proxy_err(service, e))?;
                }
                Ok(())
            }
            Some(_) => {
                // The container came back with another address: replace its set.
                self.remove_set(route, &id, Duration::ZERO, service).await?;
                self.add_replica(route, container, addr, weight, health, service)
                    .await
            }
            None => {
                self.add_replica(route, container, addr, weight, health, service)
                    .await
            }
        }
    }

    async fn add_replica(
        &self,
        route: &str,
        container: &str,
        addr: &str,
        weight: u32,
        health: Duration,
        service: &str,
    ) -> Result<(), RolloutError> {
        retry_busy(|| {
            self.client.add_set(
                route,
                SetSpec {
                    id: replica_set(container),
                    weight,
                    targets: vec![addr.to_string()],
                },
                health,
            )
        })
        .await
        .map_err(|e| proxy_err(service, e))
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
