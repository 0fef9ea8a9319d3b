//! A small fluent harness that runs the real `berth` binary in a scratch project directory.
#![allow(dead_code)]

pub mod proxy;
pub mod stage;

use std::path::{Path, PathBuf};

pub struct Berth {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Berth {
    /// A project directory named `app` holding `files`.
    pub fn project(files: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Berth {
            _tmp: tmp,
            dir,
            args: vec![],
            env: vec![],
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Writes (or replaces) a file of the project directory.
    pub fn write(&self, name: &str, text: &str) -> &Self {
        let p = self.dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    /// Runs the binary with the arguments given so far followed by `more`; the project
    /// directory stays, so a test can change files between runs.
    pub fn with(&self, more: &[&str]) -> Outcome {
        self.command(more).output().map(Outcome::from).unwrap()
    }

    /// The command `with` runs, for tests that need the child process itself (signals).
    pub fn command(&self, more: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("berth"));
        cmd.current_dir(&self.dir).args(&self.args).args(more);
        for k in [
            "COMPOSE_FILE",
            "COMPOSE_PROFILES",
            "COMPOSE_PROJECT_NAME",
            "COMPOSE_PATH_SEPARATOR",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(std::process::Stdio::null());
        cmd
    }

    pub fn run(&self) -> Outcome {
        let mut cmd = assert_cmd::Command::cargo_bin("berth").unwrap();
        cmd.current_dir(&self.dir).args(&self.args);
        // The user's own Compose variables must not leak into tests.
        for k in [
            "COMPOSE_FILE",
            "COMPOSE_PROFILES",
            "COMPOSE_PROJECT_NAME",
            "COMPOSE_PATH_SEPARATOR",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl From<std::process::Output> for Outcome {
    fn from(out: std::process::Output) -> Self {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Outcome {
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn success(&self) -> &Self {
        self.code(0)
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            self.stderr
        );
        self
    }
}

/// Removes every container, network and volume labelled with the project when the test ends,
/// pass or fail, so a failing test does not leave a stack running.
pub struct ProjectGuard(pub String);

impl Drop for ProjectGuard {
    fn drop(&mut self) {
        use berth_test_support::docker_output;
        let label = format!("label=com.docker.compose.project={}", self.0);
        let ids = docker_output(&["ps", "-aq", "--filter", &label]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker_output(&["rm", "-f", "-v", id]);
        }
        for kind in ["network", "volume"] {
            let out = docker_output(&[kind, "ls", "-q", "--filter", &label]);
            for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = docker_output(&[kind, "rm", name]);
            }
        }
    }
}

/// Ids of the project's containers of `service` (running ones, or all with `all`), sorted.
pub fn service_ids(project: &str, service: &str, all: bool) -> Vec<String> {
    let project = format!("label=com.docker.compose.project={project}");
    let service = format!("label=com.docker.compose.service={service}");
    let mut args = vec!["ps", "-q", "--no-trunc", "--filter", &project];
    args.extend(["--filter", &service]);
    if all {
        args.push("-a");
    }
    let mut v: Vec<String> = berth_test_support::docker(&args)
        .split_whitespace()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Names of all the project's containers, running or not, sorted.
pub fn container_names(project: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={project}");
    let mut v: Vec<String> =
        berth_test_support::docker(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
            .split_whitespace()
            .map(String::from)
            .collect();
    v.sort();
    v
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
