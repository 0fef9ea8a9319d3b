//! The README's walkthrough, run literally (issue #14 items 11 and 12): the commands of its
//! ```` ```sh walkthrough ```` block are taken from README.md and run by bash, in an empty
//! directory, with the static berth binary (what the README's install command builds) first
//! on PATH, on the real engine. A command that fails fails the test.
//!
//! The environment keeps the walkthrough clear of a real proxy and state: its own proxy
//! container name, admin socket, state directory and project name. The commands themselves
//! are the README's, unchanged.

mod harness;

use std::path::Path;
use std::process::Command;

use berth_test_support::{
    docker_output, ensure_test_images, static_berth_binary, unique_name, workspace_root, Container,
};
use harness::ProjectGuard;

/// The address the walkthrough's compose file gives the proxy.
const WALKTHROUGH_LISTEN: &str = "127.0.0.1:8080";

/// The text of the first fenced block whose info string is `sh walkthrough`.
fn walkthrough(readme: &str) -> Option<String> {
    let mut lines = readme.lines();
    lines.find(|l| l.trim() == "```sh walkthrough")?;
    let mut block = String::new();
    for line in lines {
        if line.trim() == "```" {
            return Some(block);
        }
        block.push_str(line);
        block.push('\n');
    }
    None
}

/// issue #14 item 11: the fresh-machine walkthrough in the README works as written: from a
/// compose project to a service deployed behind the proxy, a second version deployed, the
/// proxy's logs, and everything stopped again.
#[test]
fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let script = walkthrough(&readme).expect("README.md has no ```sh walkthrough block");
    assert!(
        script.contains("berth up") && script.contains("berth deploy"),
        "the walkthrough should go from `berth up` to `berth deploy`:\n{script}"
    );
    assert!(
        std::net::TcpListener::bind(WALKTHROUGH_LISTEN).is_ok(),
        "{WALKTHROUGH_LISTEN}, where the walkthrough's proxy listens, is taken on this machine"
    );

    ensure_test_images();
    let binary = static_berth_binary();
    assert!(
        binary.is_file(),
        "{} is missing; `cargo xtask test-images` builds it",
        binary.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let container = unique_name("berth-readme-proxy");
    let project = unique_name("berth-readme");
    let _proxy = Container::adopt(container.clone());
    let _project = ProjectGuard(project.clone());
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail -x\n{script}"))
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("BERTH_PROXY_CONTAINER", &container)
        .env("BERTH_PROXY_SOCKET", tmp.path().join("run/proxy.sock"))
        .env("BERTH_STATE_DIR", tmp.path().join("state"))
        .env("COMPOSE_PROJECT_NAME", &project)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("VERSION")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs = docker_output(&["logs", &container]);
    assert!(
        out.status.success(),
        "the README walkthrough failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nproxy logs:\n{}",
        out.status,
        String::from_utf8_lossy(&logs.stderr)
    );
    // The two curls of the walkthrough answer the two versions, in order.
    let v1 = stdout.find("v1").unwrap_or(usize::MAX);
    let v2 = stdout.find("v2").unwrap_or(0);
    assert!(
        v1 < v2,
        "the walkthrough's curls should answer v1, then v2:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        Path::new(&tmp.path().join("hello/compose.yaml")).is_file(),
        "the walkthrough should create its project in ./hello"
    );
}

#[test]
fn the_walkthrough_block_is_found() {
    let text = "intro\n```sh walkthrough\nberth up\nberth deploy\n```\nafter\n";
    assert_eq!(
        walkthrough(text).as_deref(),
        Some("berth up\nberth deploy\n")
    );
    assert_eq!(walkthrough("```sh\nberth up\n```\n"), None);
}
