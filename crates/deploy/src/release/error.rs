//! Why a deploy, rollback or the convergence of an interrupted release stopped.

use crate::images::ImageError;
use crate::lock::LockError;
use crate::release::ReleaseError;
use crate::rollout::RolloutError;
use crate::store_error::StoreError;
use crate::{ExecuteError, PlanError};
use berth_engine::EngineError;
use berth_proxy_api::AdminError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReleaseRunError {
    /// A service's `x-berth` policy is invalid: bad input, nothing was touched.
    #[error("{0}")]
    Policy(String),
    /// The state directory could not be created.
    #[error("cannot create {}: {cause}", path.display())]
    StateDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A routed service needs the proxy, and its admin socket does not answer.
    #[error("the services with x-berth.proxy need the proxy: {0}")]
    ProxyDown(AdminError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Boxed, as planning errors carry the whole conflict they found.
    #[error(transparent)]
    Plan(Box<PlanError>),
    #[error(transparent)]
    Execute(Box<ExecuteError>),
    #[error(transparent)]
    Images(#[from] ImageError),
    /// A rollback's image was removed from the engine since its release.
    #[error("service `{service}`: the image of release {number} ({}) is no longer on this engine; it cannot be rolled back to", short_id(.id))]
    RollbackImageGone {
        service: String,
        number: u64,
        id: String,
    },
    /// The release failed (its release command, or a rollout that was then reverted).
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    /// The backup before the release command failed; no release command ran and no traffic
    /// moved.
    #[error("the backup before the release command failed: {0}; nothing was migrated; fix it, or deploy with --no-backup")]
    Backup(String),
    /// Converging a release a killed process left running failed.
    #[error("converging interrupted release {number}: {source}")]
    Recover {
        number: u64,
        #[source]
        source: RolloutError,
    },
}

impl From<PlanError> for ReleaseRunError {
    fn from(e: PlanError) -> ReleaseRunError {
        ReleaseRunError::Plan(Box::new(e))
    }
}

impl From<ExecuteError> for ReleaseRunError {
    fn from(e: ExecuteError) -> ReleaseRunError {
        ReleaseRunError::Execute(Box::new(e))
    }
}

/// An image id as people read it: without `sha256:`, 12 characters.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
