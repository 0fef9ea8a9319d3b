//! The only crate that talks to the Docker Engine.
//!
//! Everything else in berth goes through [`Engine`], so that the Docker API version, error
//! wording and retries live in one place.

mod connect;
mod error;
mod spec;
mod version;

pub use connect::DEFAULT_HOST;
pub use error::EngineError;
pub use spec::*;
pub use version::EngineVersion;

/// A connection to one Docker Engine, with the API version already negotiated.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: bollard::Docker,
    /// Where the engine was reached, for error messages.
    host: String,
}
