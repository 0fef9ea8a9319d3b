//! A deploy test's stage: a `berth proxy run` process on a free 127.0.0.1 port with its own
//! admin socket, a state directory for releases and locks, and a project that runs the real
//! binary with both.

use super::proxy::ProxyProcess;
use super::{free_port, Berth, Outcome, ProjectGuard};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Stage {
    pub project: String,
    pub berth: Berth,
    pub proxy_addr: SocketAddr,
    pub socket: PathBuf,
    pub state: PathBuf,
    _proxy: ProxyProcess,
    _guard: ProjectGuard,
    _dir: tempfile::TempDir,
}

impl Stage {
    /// Starts a proxy and writes `compose` as the project's compose.yaml.
    pub fn new(project: &str, compose: &str) -> Stage {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let state = dir.path().join("state");
        let port = free_port();
        let proxy_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let proxy = ProxyProcess::spawn(
            &socket,
            proxy_addr,
            &dir.path().join("proxy-state.json"),
            &[],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the proxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let berth = Berth::project(&[("compose.yaml", compose)])
            .args(&["-p", project])
            .env("BERTH_PROXY_SOCKET", socket.to_str().unwrap())
            .env("BERTH_STATE_DIR", state.to_str().unwrap())
            // A deploy with a release command backs up first; its password stays in the test.
            .env(
                "BERTH_BACKUP_PASSWORD_FILE",
                dir.path().join("backup-password").to_str().unwrap(),
            );
        Stage {
            project: project.to_string(),
            berth,
            proxy_addr,
            socket,
            state,
            _proxy: proxy,
            _guard: ProjectGuard(project.to_string()),
            _dir: dir,
        }
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        self.berth.with(args)
    }

    /// `berth deploy` with `VERSION` (and any other variables) in the project's .env.
    pub fn deploy_env(&self, env: &str, args: &[&str]) -> Outcome {
        self.berth.write(".env", env);
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        self.berth.with(&all)
    }
}
