//! Waiting for a container to become healthy, or to exit.

use std::time::Duration;

use tokio::time::Instant;

use crate::{Engine, EngineError};

/// How often the container is inspected while waiting. Health checks run every second at
/// best, so polling faster only loads the engine.
const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// How a wait for health ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthOutcome {
    /// The healthcheck passed.
    Healthy,
    /// The container is running and has no healthcheck, so running is all there is to know.
    Running,
    /// The healthcheck failed its retries.
    Unhealthy,
    /// The container stopped (or is being restarted after a crash) with this exit code.
    Exited(i64),
    /// The deadline passed while the healthcheck was still starting.
    TimedOut,
}

impl Engine {
    /// Polls the container until it is healthy, unhealthy, exited, or `deadline` passes.
    pub async fn wait_healthy(
        &self,
        id: &str,
        deadline: Duration,
    ) -> Result<HealthOutcome, EngineError> {
        let until = Instant::now() + deadline;
        loop {
            let container =
                self.inspect_container(id)
                    .await?
                    .ok_or_else(|| EngineError::NotFound {
                        what: "container",
                        name: id.to_string(),
                    })?;
            match (container.state.as_str(), container.health.as_deref()) {
                ("running", Some("healthy")) => return Ok(HealthOutcome::Healthy),
                ("running", Some("unhealthy")) => return Ok(HealthOutcome::Unhealthy),
                ("running", None) => return Ok(HealthOutcome::Running),
                // A restart policy puts a crashed container into `restarting`; it crashed
                // all the same, and waiting for the next crash tells nothing new.
                ("exited" | "dead" | "restarting", _) => {
                    let code = match container.exit_code {
                        Some(code) => code,
                        None => self.exit_code(id).await?,
                    };
                    return Ok(HealthOutcome::Exited(code));
                }
                _ => {}
            }
            if Instant::now() >= until {
                return Ok(HealthOutcome::TimedOut);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the container has stopped and returns its exit code; None when
    /// `deadline` passes first.
    pub async fn wait_exit(
        &self,
        id: &str,
        deadline: Option<Duration>,
    ) -> Result<Option<i64>, EngineError> {
        let until = deadline.map(|deadline| Instant::now() + deadline);
        loop {
            let container =
                self.inspect_container(id)
                    .await?
                    .ok_or_else(|| EngineError::NotFound {
                        what: "container",
                        name: id.to_string(),
                    })?;
            if let Some(code) = container.exit_code {
                return Ok(Some(code));
            }
            if until.is_some_and(|until| Instant::now() >= until) {
                return Ok(None);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The last exit code the engine recorded, whatever the current state.
    async fn exit_code(&self, id: &str) -> Result<i64, EngineError> {
        let inspect = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|err| self.api_error("inspect a container", err))?;
        Ok(inspect
            .state
            .and_then(|state| state.exit_code)
            .unwrap_or(-1))
    }
}
