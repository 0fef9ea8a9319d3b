//! A stack started by Debian's `docker-compose up` is adopted by `berth up` without
//! recreating anything when nothing differs, and recreated when something does (issue #3).

mod harness;
use berth_test_support::{docker, ensure_test_images};
use harness::{Berth, ProjectGuard};
use std::process::Command;

const STACK: &str = r#"
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: adopted
    ports: ["127.0.0.1:PORT:8080"]
    volumes: [data:/data]
    restart: unless-stopped
volumes:
  data: {}
"#;

fn web_ids(project: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--filter",
        "label=com.docker.compose.service=web",
    ])
    .split_whitespace()
    .map(String::from)
    .collect()
}

#[test]
fn a_docker_compose_stack_is_adopted_without_recreation() {
    ensure_test_images();
    let project = format!("berthadopt{}", std::process::id());
    // A free port, so the test does not depend on what else runs on this machine.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stack = STACK.replace("PORT", &port.to_string());
    let stack = stack.as_str();
    let _cleanup = ProjectGuard(project.clone());
    let b = Berth::project(&[("compose.yaml", stack)]);
    let status = Command::new("docker-compose")
        .args(["-p", &project, "up", "-d"])
        .current_dir(b.dir())
        .status()
        .expect("docker-compose is installed (Debian's docker-compose package)");
    assert!(status.success());
    let before = web_ids(&project);
    assert_eq!(before.len(), 1);

    let dry = Berth::project(&[("compose.yaml", stack)])
        .args(&["-p", &project, "up", "-d", "--dry-run"])
        .run();
    dry.success().stdout_has("adopted");
    let out = Berth::project(&[("compose.yaml", stack)])
        .args(&["-p", &project, "up", "-d"])
        .run();
    out.success();
    assert_eq!(
        web_ids(&project),
        before,
        "adopting must not recreate\n{}",
        out.stdout
    );

    let changed = stack.replace("APP_VERSION: adopted", "APP_VERSION: changed");
    Berth::project(&[("compose.yaml", &changed)])
        .args(&["-p", &project, "up", "-d"])
        .run()
        .success();
    let after = web_ids(&project);
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
}
