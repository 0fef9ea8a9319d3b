//! The only crate that talks to the Docker Engine.
//!
//! Everything else in berth goes through [`Engine`], so that the Docker API version, error
//! wording and retries live in one place.

// Only the CLI prints (ARCHITECTURE.md, invariants): a library reports through return values,
// events and the writers it is given, so that output stays the CLI's to shape and to pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod build;
mod buildkit;
mod connect;
mod container;
mod context;
mod copy;
mod dockerignore;
mod error;
mod exec;
mod health;
mod image;
mod labels;
mod logs;
mod network;
mod observed;
mod spec;
mod version;
mod volume;

pub use connect::DEFAULT_HOST;
pub use context::{ContextSummary, INLINE_DOCKERFILE_NAME};
pub use dockerignore::DockerIgnore;
pub use error::EngineError;
pub use exec::ExecOptions;
pub use health::HealthOutcome;
pub use network::NetworkSummary;
pub use observed::{normalize_ip, ObservedConfig};
pub use spec::*;
pub use version::EngineVersion;
pub use volume::VolumeSummary;

/// A connection to one Docker Engine, with the API version already negotiated.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: bollard::Docker,
    /// Where the engine was reached, for error messages.
    host: String,
}

impl Engine {
    /// Wraps an error the engine (or the connection to it) returned for `operation`. The
    /// engine's own message is kept as it is, because it names the object at fault.
    pub(crate) fn api_error(
        &self,
        operation: &'static str,
        err: bollard::errors::Error,
    ) -> EngineError {
        let reason = match error::server_error(&err) {
            Some((_, message)) => message.to_string(),
            None => error::root_cause(&err),
        };
        EngineError::Api {
            host: self.host.clone(),
            operation,
            reason,
        }
    }
}
