//! Connecting to the engine. bollard's constructors are lazy, so `connect` pings the engine
//! and negotiates the API version before handing out an [`Engine`]: a missing engine is
//! reported once, up front, instead of as a confusing failure in the middle of a deploy.

use std::time::Duration;

use bollard::Docker;

use crate::error::{root_cause, EngineError};
use crate::Engine;

/// Where the engine is looked for when DOCKER_HOST is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long the first contact may take. A healthy local engine answers in milliseconds; a
/// wrong TCP address would otherwise hang for bollard's two-minute request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Engine {
    /// Connects to DOCKER_HOST, or the default unix socket, and negotiates the API version.
    pub async fn connect() -> Result<Engine, EngineError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        Engine::connect_to(&host).await
    }

    /// Connects to the engine at `host` (`unix://…`, `tcp://…` or `http://…`).
    pub async fn connect_to(host: &str) -> Result<Engine, EngineError> {
        let unreachable = |reason: String| EngineError::Unreachable {
            host: host.to_string(),
            reason,
        };
        let docker = Docker::connect_with_host(host).map_err(|err| match err {
            // bollard checks that a unix socket exists before the first request.
            bollard::errors::Error::SocketNotFoundError(path) => {
                unreachable(format!("there is no socket at {path}"))
            }
            other => EngineError::InvalidHost {
                host: host.to_string(),
                reason: root_cause(&other),
            },
        })?;
        let negotiated = tokio::time::timeout(CONNECT_TIMEOUT, async {
            docker.ping().await?;
            docker.negotiate_version().await
        })
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|err| unreachable(root_cause(&err)))?;
        Ok(Engine {
            docker: negotiated,
            host: host.to_string(),
        })
    }

    /// The address this engine was reached at.
    pub fn host(&self) -> &str {
        &self.host
    }
}
