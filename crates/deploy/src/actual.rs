//! The actual state: what the engine reports, reduced to what planning needs.
//!
//! Everything is recognised by labels. A container belongs to replica `n` of service `s` of
//! project `p` when it carries `com.docker.compose.project=p`, `com.docker.compose.service=s`
//! and `com.docker.compose.container-number=n`: the Compose labels, not berth's own, so that
//! containers started by `docker compose up` are recognised too.
//!
//! **Adoption.** A container from `docker compose up` has those labels but no
//! `berth.config-hash`. Its `com.docker.compose.config-hash` is Compose's own hash of the
//! service, computed differently from ours, so it cannot show that the container matches. From a
//! [`ContainerSummary`] (labels, image, state) we cannot prove that the running configuration
//! equals the desired one either: environment, mounts and limits are not in it. So the caller
//! reads such containers' configuration back from the engine into [`Actual::observed`], and
//! [`crate::adopt`] compares it with the desired spec: a match is kept as it is, anything else
//! is recreated once.

use crate::labels;
use berth_engine::{ContainerSummary, ObservedConfig};
use std::collections::BTreeMap;

/// The engine's view of everything relevant to one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actual {
    /// Containers with the project's label (all states, one-offs included).
    pub containers: Vec<ContainerSummary>,
    /// All networks on the engine, not only the project's: external networks must be found.
    pub networks: Vec<ResourceSummary>,
    /// All volumes on the engine, for the same reason.
    pub volumes: Vec<ResourceSummary>,
    /// Read-back configurations of containers without berth's config hash, by container id,
    /// so they can be adopted when they match (see [`crate::adopt`]).
    pub observed: BTreeMap<String, ObservedConfig>,
}

/// A network or volume as the engine lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSummary {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl ResourceSummary {
    pub fn new(name: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        ResourceSummary {
            name: name.into(),
            labels,
        }
    }

    /// The project whose label the resource carries, if any.
    pub fn project(&self) -> Option<&str> {
        self.labels.get(labels::COMPOSE_PROJECT).map(String::as_str)
    }
}

/// A container of the project, with its labels read.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub summary: &'a ContainerSummary,
    pub service: &'a str,
    /// None when the label is missing or not a number; such a container is never kept.
    pub number: Option<u64>,
    pub oneoff: bool,
    /// `berth.config-hash`; None for containers berth did not create.
    pub hash: Option<&'a str>,
    /// The read-back configuration of a container berth did not create, when known.
    pub observed: Option<&'a ObservedConfig>,
}

impl Observed<'_> {
    /// Whether the container is up: running, or restarting under its restart policy (starting
    /// it again would not help). `paused` counts as up; unpausing is not the planner's call.
    pub fn is_up(&self) -> bool {
        matches!(
            self.summary.state.as_str(),
            "running" | "restarting" | "paused"
        )
    }
}

impl Actual {
    /// The project's containers, in the engine's listing order.
    pub fn project_containers<'a>(&'a self, project: &str) -> Vec<Observed<'a>> {
        self.containers
            .iter()
            .filter(|c| c.labels.get(labels::COMPOSE_PROJECT).map(String::as_str) == Some(project))
            .map(|c| {
                let l = &c.labels;
                Observed {
                    summary: c,
                    service: l
                        .get(labels::COMPOSE_SERVICE)
                        .map(String::as_str)
                        .unwrap_or(""),
                    number: l
                        .get(labels::COMPOSE_CONTAINER_NUMBER)
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 0),
                    oneoff: l.get(labels::COMPOSE_ONEOFF).map(String::as_str) == Some("True")
                        || l.get(labels::ROLE).map(String::as_str) == Some("oneoff"),
                    hash: l.get(labels::CONFIG_HASH).map(String::as_str),
                    observed: self.observed.get(&c.id),
                }
            })
            .collect()
    }

    pub fn network(&self, name: &str) -> Option<&ResourceSummary> {
        self.networks.iter().find(|n| n.name == name)
    }

    pub fn volume(&self, name: &str) -> Option<&ResourceSummary> {
        self.volumes.iter().find(|n| n.name == name)
    }
}

/// What is on the engine: the project's containers, and every network and volume (the planner
/// checks external ones and name clashes).
pub async fn read(
    engine: &berth_engine::Engine,
    project: &str,
) -> Result<Actual, berth_engine::EngineError> {
    let containers = engine
        .list_containers(&[(labels::COMPOSE_PROJECT, Some(project))], true)
        .await?;
    let networks = engine
        .list_networks(&[])
        .await?
        .into_iter()
        .map(|n| ResourceSummary::new(n.name, n.labels))
        .collect();
    let volumes = engine
        .list_volumes(&[])
        .await?
        .into_iter()
        .map(|v| ResourceSummary::new(v.name, v.labels))
        .collect();
    // Containers berth did not create (e.g. from `docker-compose up`) are read back, so the
    // planner can adopt the ones that already run what the project asks for.
    let mut observed = BTreeMap::new();
    for c in containers
        .iter()
        .filter(|c| !c.labels.contains_key(labels::CONFIG_HASH))
    {
        if let Some(o) = engine.observe_container(&c.id).await? {
            observed.insert(c.id.clone(), o);
        }
    }
    Ok(Actual {
        containers,
        networks,
        volumes,
        observed,
    })
}
