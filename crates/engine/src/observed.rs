//! A running container's configuration read back from the engine, in the terms of
//! [`crate::ContainerSpec`], so that a container berth did not create (one from
//! `docker-compose up`) can be compared with what the project wants.

use std::collections::{BTreeMap, BTreeSet};

use bollard::query_parameters::InspectContainerOptions;

use crate::error::{is_not_found, EngineError};
use crate::Engine;

/// What an existing container runs with. Environment and labels include what the image adds,
/// so comparisons treat the desired values as a subset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedConfig {
    pub image: String,
    pub env: BTreeSet<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    /// `(container_port, protocol, host_ip or "", host_port or "")`.
    pub ports: BTreeSet<(u16, String, String, String)>,
    /// `(source or "", target, read_only)`: binds and named volumes alike.
    pub mounts: BTreeSet<(String, String, bool)>,
    pub networks: BTreeSet<String>,
    /// Docker's restart policy name (`no`, `always`, `unless-stopped`, `on-failure`).
    pub restart: String,
    pub healthcheck_test: Option<Vec<String>>,
    pub user: String,
    pub working_dir: String,
}

impl Engine {
    /// The configuration of container `id`, or None when it does not exist.
    pub async fn observe_container(&self, id: &str) -> Result<Option<ObservedConfig>, EngineError> {
        let inspect = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(i) => i,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(self.api_error("inspect a container", err)),
        };
        let config = inspect.config.unwrap_or_default();
        let host = inspect.host_config.unwrap_or_default();
        let mut ports = BTreeSet::new();
        for (key, bindings) in host.port_bindings.unwrap_or_default() {
            let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for b in bindings.unwrap_or_default() {
                ports.insert((
                    port,
                    protocol.to_string(),
                    normalize_ip(b.host_ip.as_deref()),
                    b.host_port.unwrap_or_default(),
                ));
            }
        }
        let mounts = inspect
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let source = match m.typ.map(|t| t.to_string()).as_deref() {
                    Some("volume") => m.name.unwrap_or_default(),
                    _ => m.source.unwrap_or_default(),
                };
                (
                    source,
                    m.destination.unwrap_or_default(),
                    !m.rw.unwrap_or(true),
                )
            })
            .collect();
        let networks = inspect
            .network_settings
            .and_then(|n| n.networks)
            .map(|n| n.into_keys().collect())
            .unwrap_or_default();
        Ok(Some(ObservedConfig {
            image: config.image.unwrap_or_default(),
            env: config.env.unwrap_or_default().into_iter().collect(),
            command: config.cmd,
            entrypoint: config.entrypoint,
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            ports,
            mounts,
            networks,
            restart: host
                .restart_policy
                .and_then(|r| r.name)
                .map(|n| n.to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "no".into()),
            healthcheck_test: config.healthcheck.and_then(|h| h.test),
            user: config.user.unwrap_or_default(),
            working_dir: config.working_dir.unwrap_or_default(),
        }))
    }
}

/// The engine reports "" and "0.0.0.0" for the same thing: every address.
pub fn normalize_ip(ip: Option<&str>) -> String {
    match ip {
        None | Some("") | Some("0.0.0.0") => String::new(),
        Some(ip) => ip.to_string(),
    }
}
