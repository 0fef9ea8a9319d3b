//! What the engine says about itself.

use crate::error::{root_cause, EngineError};
use crate::Engine;

/// The engine's own version and the API version berth speaks with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// The engine release, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The newest API version the engine supports, e.g. `1.41`.
    pub api_version: String,
    /// The API version used for requests: the lower of the engine's and bollard's.
    pub negotiated_api_version: String,
    /// The engine's operating system, e.g. `linux`.
    pub os: String,
    /// The engine's CPU architecture, e.g. `amd64`.
    pub arch: String,
}

impl Engine {
    pub async fn version(&self) -> Result<EngineVersion, EngineError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|err| EngineError::Api {
                host: self.host.clone(),
                operation: "report its version",
                reason: root_cause(&err),
            })?;
        let client = self.docker.client_version();
        Ok(EngineVersion {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            negotiated_api_version: format!("{}.{}", client.major_version, client.minor_version),
            os: version.os.unwrap_or_default(),
            arch: version.arch.unwrap_or_default(),
        })
    }
}
