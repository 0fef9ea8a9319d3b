//! Errors from talking to the Docker Engine. Each message says what went wrong and what the
//! user can do about it, because the CLI prints them as they are.

use std::error::Error as StdError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// DOCKER_HOST (or the given host) is not an address berth can connect to.
    #[error("{host} is not a Docker Engine address berth can use: {reason}; set DOCKER_HOST to unix:///path/to/docker.sock or tcp://HOST:PORT")]
    InvalidHost { host: String, reason: String },

    /// Nothing answered at the address, or it did not answer like a Docker Engine.
    #[error("cannot reach the Docker Engine at {host}: {reason}; start Docker or set DOCKER_HOST")]
    Unreachable { host: String, reason: String },

    /// The engine answered a request with an error.
    #[error("the Docker Engine at {host} failed to {operation}: {reason}")]
    Api {
        host: String,
        operation: &'static str,
        reason: String,
    },

    /// A container, network, volume or image that an operation needs does not exist.
    #[error("{what} {name} does not exist on this engine; check the name, or create it first")]
    NotFound { what: &'static str, name: String },

    /// Starting a container failed because a host port it publishes is taken.
    #[error("cannot start {container}: host port {port} is already in use; stop whatever listens on it or publish a different port")]
    PortInUse { port: String, container: String },

    /// The image a container needs is not local, and berth never pulls.
    #[error("image {image} is not present on this engine and no registry is available; build it or add `build:`")]
    ImageMissing { image: String },

    /// The builder rejected the Dockerfile or a build step failed.
    #[error("building {image} failed: {message}; fix the Dockerfile or the build context and build again")]
    BuildFailed { image: String, message: String },

    /// The engine cannot run a BuildKit build for berth; the build falls back on the
    /// classic builder with a notice.
    #[error("the Docker Engine at {host} has no BuildKit session berth can use: {reason}; build with `--builder classic`")]
    BuildKitUnavailable { host: String, reason: String },

    /// A BuildKit step failed: the step, BuildKit's error and the last lines it printed.
    #[error("building {image} failed at {step}: {error}; fix the step and build again{}", output_tail(.output))]
    StepFailed {
        image: String,
        step: String,
        error: String,
        output: Vec<String>,
    },

    /// A build secret could not be read.
    #[error("build secret {id} cannot be read: {reason}; check the secret's `file` or `environment` in the compose file")]
    BuildSecret { id: String, reason: String },

    /// The build context could not be read from disk.
    #[error("cannot read the build context {path}: {reason}; check that the directory exists and is readable")]
    BuildContext { path: String, reason: String },

    /// A host file to be copied into a container could not be read.
    #[error("cannot copy {path} into the container: {reason}; check that the file exists and is readable")]
    CopySource { path: String, reason: String },

    /// Paths could not be deleted inside a container (no `rm` in the image, or `rm` failed).
    #[error("cannot delete files in container {container}: {reason}; restart or rebuild the service to drop them")]
    CannotDelete { container: String, reason: String },

    /// Copying bytes between the caller and a container (exec, attach) failed.
    #[error("the connection to container {container} broke: {reason}; try again")]
    Stream { container: String, reason: String },

    /// The caller's output (`berth exec … | head -1`) closed while the container still wrote
    /// to it; the copying stopped. Not a failure of the container or the engine.
    #[error("the reader of container {container}'s output went away")]
    OutputClosed { container: String },
}

/// The last lines a failed step printed, indented under the error.
fn output_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n  its last output:");
    for line in lines {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

/// The status code and message of an error the engine answered with, if it answered.
pub(crate) fn server_error(err: &bollard::errors::Error) -> Option<(u16, &str)> {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => Some((*status_code, message.as_str())),
        _ => None,
    }
}

/// Whether the engine said "no such object".
pub(crate) fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(server_error(err), Some((404, _)))
}

/// The innermost cause of an error, which is where the useful words are: bollard wraps
/// "connection refused" several layers deep behind generic client errors.
pub(crate) fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    let text = current.to_string();
    // io::Error renders as "Connection refused (os error 111)"; the errno helps nobody.
    match text.find(" (os error ") {
        Some(at) => text[..at].to_lowercase(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn root_cause_drops_the_wrappers_and_the_errno() {
        let inner = io::Error::from_raw_os_error(111);
        let outer = io::Error::other(inner);
        assert_eq!(root_cause(&outer), "connection refused");
    }

    #[test]
    fn unreachable_says_what_to_do() {
        let err = EngineError::Unreachable {
            host: "unix:///var/run/docker.sock".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker Engine at unix:///var/run/docker.sock: connection refused; start Docker or set DOCKER_HOST"
        );
    }
}
