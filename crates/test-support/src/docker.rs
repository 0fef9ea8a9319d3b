//! Thin wrappers over the `docker` CLI, and guards that clean up what a test created.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs `docker ARGS` and returns its output whatever the exit status.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run the docker CLI ({err}); the Docker tests need Docker installed")
        })
}

/// Runs `docker ARGS`, panics when it fails, and returns stdout trimmed.
pub fn docker(args: &[&str]) -> String {
    let output = docker_output(args);
    if !output.status.success() {
        panic!(
            "`docker {}` failed with {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `docker inspect --format FORMAT NAME`.
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, name])
}

/// A name no other test (or earlier run) uses: prefix, process id, a counter and the clock.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// A container that is force-removed (with its anonymous volumes) when dropped, so a failing
/// test does not leave it running.
#[derive(Debug)]
pub struct Container {
    pub name: String,
}

impl Container {
    /// Takes ownership of an existing container by name.
    pub fn adopt(name: impl Into<String>) -> Container {
        Container { name: name.into() }
    }

    /// The 127.0.0.1 address that `container_port` (e.g. `8080`) is published on.
    pub fn addr(&self, container_port: u16) -> SocketAddr {
        published_addr(&self.name, container_port)
    }

    /// `docker inspect --format FORMAT` on this container.
    pub fn inspect(&self, format: &str) -> String {
        inspect(&self.name, format)
    }

    /// The container's logs, stdout and stderr together.
    pub fn logs(&self) -> String {
        let output = docker_output(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Errors are ignored: the container may already be gone, and panicking in drop
        // during a failing test would abort and hide the real failure.
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A named volume that is removed when dropped. Drop it after the containers using it.
#[derive(Debug)]
pub struct Volume {
    pub name: String,
}

impl Volume {
    /// Creates a volume with a unique name starting with `prefix`.
    pub fn create(prefix: &str) -> Volume {
        let name = unique_name(prefix);
        docker(&["volume", "create", &name]);
        Volume { name }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker run -d --name NAME ARGS...` (ARGS holds options, the image and its arguments).
/// The guard is created before the run, so even a container that failed to start is removed.
pub fn run_container(prefix: &str, args: &[&str]) -> Container {
    let container = Container::adopt(unique_name(prefix));
    let mut full = vec!["run", "-d", "--name", container.name.as_str()];
    full.extend_from_slice(args);
    docker(&full);
    container
}

/// Reads back the host address of a port published with `-p 127.0.0.1::PORT`.
pub fn published_addr(container: &str, container_port: u16) -> SocketAddr {
    let port = format!("{container_port}/tcp");
    let text = docker(&["port", container, &port]);
    text.lines()
        .filter_map(|line| line.trim().parse::<SocketAddr>().ok())
        .find(|addr| addr.ip().is_loopback())
        .unwrap_or_else(|| {
            panic!(
                "{container} does not publish {port} on 127.0.0.1 (docker port said {text:?}); \
                 run it with -p 127.0.0.1::{container_port}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(a.starts_with("t-"));
    }
}
