//! Images that are already on the engine. berth never pulls: without a registry, an image
//! is either built here or loaded by the user.

use bollard::query_parameters::RemoveImageOptions;

use crate::error::is_not_found;
use crate::{Engine, EngineError};

impl Engine {
    /// The id (`sha256:…`) of a local image, or None when the engine does not have it.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(self.api_error("inspect an image", err)),
        }
    }

    /// Removes an image reference (untagging it, and deleting the layers no other tag
    /// uses); an absent one is fine.
    pub async fn remove_image(&self, reference: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_image(reference, None::<RemoveImageOptions>, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(self.api_error("remove an image", err)),
        }
    }
}
