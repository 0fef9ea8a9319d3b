//! The host proxy's life as a user meets it (issue #14 item 11): `berth up` and `berth deploy`
//! start it when a routed service needs it, `berth proxy stop` and `berth proxy logs`, and an
//! admin socket left behind by a removed proxy container.
//!
//! The tests run the static berth binary, the one a user installs, on the real engine. Each
//! names its own proxy container (`BERTH_PROXY_CONTAINER`), admin socket and state directory,
//! so that a real `berth-proxy` is never touched; the proxy listens on a free 127.0.0.1 port
//! that the project's `x-berth.proxy.listen` names.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_test_support::{
    docker_output, ensure_test_images, inspect, static_berth_binary, unique_name, Container,
};
use harness::{free_port, ProjectGuard};

/// One user's machine: a proxy container name, an admin socket, a state directory and a
/// project whose routed service the proxy serves on `port`.
struct Host {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    container: String,
    socket: PathBuf,
    state: PathBuf,
    project: String,
    port: u16,
    binary: PathBuf,
    // Dropped in reverse order: the project first, then the proxy container.
    _proxy: Container,
    _project: ProjectGuard,
}

impl Host {
    fn new(prefix: &str) -> Host {
        ensure_test_images();
        let binary = static_berth_binary();
        assert!(
            binary.is_file(),
            "{} is missing; `cargo xtask test-images` builds it",
            binary.display()
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        let container = unique_name(&format!("{prefix}-proxy"));
        let project = unique_name(prefix);
        let port = free_port();
        std::fs::write(
            dir.join("compose.yaml"),
            format!(
                r#"x-berth:
  proxy:
    listen: "127.0.0.1:{port}"
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: ${{VERSION:-v1}}
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 500ms
      retries: 10
    x-berth:
      proxy: {{ host: web.test, port: 8080, health_path: /up }}
"#
            ),
        )
        .unwrap();
        Host {
            socket: tmp.path().join("run/proxy.sock"),
            state: tmp.path().join("state"),
            dir,
            _tmp: tmp,
            _proxy: Container::adopt(container.clone()),
            _project: ProjectGuard(project.clone()),
            container,
            project,
            port,
            binary,
        }
    }

    /// The berth command a user types in the project directory, with this host's names.
    fn command(&self, binary: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary);
        cmd.current_dir(&self.dir)
            .env("BERTH_PROXY_CONTAINER", &self.container)
            .env("BERTH_PROXY_SOCKET", &self.socket)
            .env("BERTH_STATE_DIR", &self.state)
            .env("COMPOSE_PROJECT_NAME", &self.project)
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES")
            .args(args)
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(&self.binary, args).output().unwrap()
    }

    /// `GET /` for host web.test through the proxy: the testapp's version, or what went wrong.
    fn get(&self) -> Result<String, String> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "-H", "Host: web.test"])
            .arg(format!("http://127.0.0.1:{}/", self.port))
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Waits (up to 30 s, a failure guard) until the proxy answers `version`.
    fn expect_answer(&self, version: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.get();
            if answer.as_deref() == Ok(version) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not answer {version} within 30s, last answer {answer:?}\n{}",
                docker_logs(&self.container)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn state(&self) -> String {
        inspect(&self.container, "{{.State.Status}}")
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker_logs(container: &str) -> String {
    let out = docker_output(&["logs", container]);
    format!(
        "proxy container logs:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", text(out));
}

/// issue #14 item 11: `berth up` starts the host proxy when a routed service needs it and
/// none runs, `berth proxy logs` shows its output, `berth proxy stop` stops it (and says so
/// when it is already stopped), and `berth deploy` starts it again.
#[test]
fn up_and_deploy_start_the_proxy_which_stop_and_logs_manage() {
    let host = Host::new("berth-autostart");

    let out = host.berth(&["up", "-d", "--wait"]);
    assert_ok(&out, "berth up");
    assert_eq!(host.state(), "running", "{}", text(&out));
    assert_eq!(
        inspect(&host.container, "{{index .Config.Labels \"berth.role\"}}"),
        "proxy"
    );
    host.expect_answer("v1");

    let out = host.berth(&["proxy", "logs"]);
    assert_ok(&out, "berth proxy logs");
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("proxy serving"), "{}", text(&out));
    let out = host.berth(&["proxy", "logs", "--tail", "1"]);
    assert_ok(&out, "berth proxy logs --tail 1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out)
    );

    let out = host.berth(&["proxy", "stop"]);
    assert_ok(&out, "berth proxy stop");
    assert_eq!(host.state(), "exited", "{}", text(&out));
    assert!(host.get().is_err(), "the stopped proxy still answers");
    let out = host.berth(&["proxy", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is stopped") && stderr.contains("berth proxy boot"),
        "{}",
        text(&out)
    );
    let out = host.berth(&["proxy", "stop"]);
    assert_ok(&out, "a second berth proxy stop");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already stopped"),
        "{}",
        text(&out)
    );

    let out = host
        .command(&host.binary, &["deploy"])
        .env("VERSION", "v2")
        .output()
        .unwrap();
    assert_ok(&out, "berth deploy");
    assert_eq!(host.state(), "running", "{}", text(&out));
    host.expect_answer("v2");

    let out = host.berth(&["down"]);
    assert_ok(&out, "berth down");
    let out = host.berth(&["proxy", "stop"]);
    assert_ok(&out, "berth proxy stop after down");
    docker_output(&["rm", "-f", &host.container]);
    let out = host.berth(&["proxy", "logs"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no proxy container `{}`", host.container)),
        "{}",
        text(&out)
    );
}

/// issue #14 item 11: when the proxy's container is removed, its admin socket stays behind;
/// `berth proxy status` names that (stale socket, container gone, what to run) instead of a
/// bare "connection refused", and the next `berth up` replaces the proxy.
#[test]
fn a_stale_admin_socket_is_named_and_the_proxy_replaced() {
    let host = Host::new("berth-stale");
    let out = host.berth(&["up", "-d", "--wait"]);
    assert_ok(&out, "berth up");
    host.expect_answer("v1");

    let removed = docker_output(&["rm", "-f", &host.container]);
    assert!(removed.status.success(), "docker rm -f failed");
    assert!(
        host.socket.exists(),
        "the killed proxy's socket should be left behind"
    );
    let out = host.berth(&["proxy", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stale")
            && stderr.contains(&format!("`{}` is gone", host.container))
            && stderr.contains("berth proxy boot"),
        "{}",
        text(&out)
    );

    let out = host.berth(&["up", "-d", "--wait"]);
    assert_ok(&out, "berth up after the container was removed");
    assert_eq!(host.state(), "running", "{}", text(&out));
    let out = host.berth(&["proxy", "status"]);
    assert_ok(&out, "berth proxy status after the replacement");
    host.expect_answer("v1");
}

/// issue #14 item 11: a dynamically linked berth cannot be the proxy container's binary;
/// when `berth deploy` needs a proxy and none runs, it says so and how to install the static
/// build, instead of only "cannot reach the proxy".
#[test]
fn deploy_with_a_dynamic_binary_and_no_proxy_says_how_to_get_one() {
    let host = Host::new("berth-dynamic");
    let dynamic = assert_cmd::cargo::cargo_bin("berth");
    let out = host.command(&dynamic, &["deploy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dynamically linked") && stderr.contains("cargo install"),
        "{}",
        text(&out)
    );
    assert!(
        docker_output(&["inspect", &host.container])
            .status
            .code()
            .unwrap_or(0)
            != 0,
        "no proxy container should have been created"
    );
}
