//! Named volumes: created when missing, listed by label, removed when present.

use std::collections::BTreeMap;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions, RemoveVolumeOptions};

use crate::container::summary_from_list;
use crate::error::is_not_found;
use crate::labels::{hash_map, label_filters};
use crate::{ContainerSummary, Engine, EngineError, VolumeSpec};

/// A volume as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSummary {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub labels: BTreeMap<String, String>,
}

impl Engine {
    /// Creates the volume unless one of that name exists; true when it was created. An
    /// existing volume is never touched: it holds the user's data.
    pub async fn ensure_volume(&self, spec: &VolumeSpec) -> Result<bool, EngineError> {
        match self.docker.inspect_volume(&spec.name).await {
            Ok(_) => return Ok(false),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(self.api_error("inspect a volume", err)),
        }
        // Creating a volume that exists succeeds on the engine, so a race with another
        // creator is harmless here.
        let request = VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            driver_opts: Some(hash_map(&spec.driver_opts)),
            labels: Some(hash_map(&spec.labels)),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(|err| self.api_error("create a volume", err))?;
        Ok(true)
    }

    /// Volumes carrying all the given labels.
    pub async fn list_volumes(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<VolumeSummary>, EngineError> {
        let options = ListVolumesOptions {
            filters: Some(label_filters(labels)),
        };
        let listed = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|err| self.api_error("list volumes", err))?;
        let mut summaries: Vec<VolumeSummary> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| VolumeSummary {
                name: volume.name,
                driver: volume.driver,
                mountpoint: volume.mountpoint,
                labels: volume.labels.into_iter().collect(),
            })
            .collect();
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summaries)
    }

    /// Removes the volume; an absent one is fine. A volume in use is an error: its data
    /// must not vanish under a container.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(self.api_error("remove a volume", err)),
        }
    }

    /// The volume, or None when there is no volume of that name.
    pub async fn inspect_volume(&self, name: &str) -> Result<Option<VolumeSummary>, EngineError> {
        match self.docker.inspect_volume(name).await {
            Ok(volume) => Ok(Some(VolumeSummary {
                name: volume.name,
                driver: volume.driver,
                mountpoint: volume.mountpoint,
                labels: volume.labels.into_iter().collect(),
            })),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(self.api_error("inspect a volume", err)),
        }
    }

    /// Every container, of any project and in any state, that mounts the volume `name`:
    /// the writers a backup stops and the users a restore must know of.
    pub async fn containers_using_volume(
        &self,
        name: &str,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(
                [("volume".to_string(), vec![name.to_string()])]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.api_error("list containers", err))?;
        Ok(listed.into_iter().map(summary_from_list).collect())
    }
}
