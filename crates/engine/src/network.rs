//! Networks: created when missing, listed by label, removed when present.

use std::collections::BTreeMap;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions};

use crate::error::{is_not_found, server_error};
use crate::labels::{hash_map, label_filters};
use crate::{Engine, EngineError, NetworkSpec};

/// A network as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

impl Engine {
    /// Creates the network unless one of that name exists; true when it was created. An
    /// existing network is left as it is, even when its options differ: changing them
    /// means recreating it, which disconnects containers, and that is the planner's call.
    pub async fn ensure_network(&self, spec: &NetworkSpec) -> Result<bool, EngineError> {
        match self
            .docker
            .inspect_network(&spec.name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(false),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(self.api_error("inspect a network", err)),
        }
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: spec.driver.clone(),
            internal: Some(spec.internal),
            attachable: Some(spec.attachable),
            enable_ipv6: Some(spec.enable_ipv6),
            options: Some(hash_map(&spec.driver_opts)),
            labels: Some(hash_map(&spec.labels)),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(true),
            // Another berth created it between the inspect and the create.
            Err(err) if matches!(server_error(&err), Some((409, _))) => Ok(false),
            Err(err) => Err(self.api_error("create a network", err)),
        }
    }

    /// Networks carrying all the given labels.
    pub async fn list_networks(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<NetworkSummary>, EngineError> {
        let options = ListNetworksOptions {
            filters: Some(label_filters(labels)),
        };
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|err| self.api_error("list networks", err))?;
        let mut summaries: Vec<NetworkSummary> = networks
            .into_iter()
            .map(|network| NetworkSummary {
                name: network.name.unwrap_or_default(),
                id: network.id.unwrap_or_default(),
                driver: network.driver.unwrap_or_default(),
                labels: network.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect();
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summaries)
    }

    /// Removes the network; an absent one is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(self.api_error("remove a network", err)),
        }
    }
}
