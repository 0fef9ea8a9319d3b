//! `ps`, `logs`, `exec`, `run`, `stop`/`start`/`restart`, `systemd`, `--dev` and `up --build`
//! on the real engine with the test images (issue #3).

mod harness;
use berth_test_support::{
    docker, docker_output, ensure_test_images, http_get, published_addr, unique_name,
};
use harness::{container_names, free_port, service_ids, Berth, ProjectGuard};

const STACK: &str = r#"
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: v1
    ports: ["127.0.0.1::8080"]
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 1s
      timeout: 1s
      retries: 10
  worker:
    image: berth/testapp:latest
    environment:
      APP_VERSION: w1
"#;

fn new_project(prefix: &str) -> (String, ProjectGuard) {
    ensure_test_images();
    let project = unique_name(prefix).to_lowercase();
    (project.clone(), ProjectGuard(project))
}

fn state(id: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Status}}", id])
}

#[test]
fn ps_logs_exec_run_stop_start_restart() {
    let (project, _guard) = new_project("berth-cmd");
    let b = Berth::project(&[("compose.yaml", STACK)]).args(&["-p", &project]);
    b.with(&["up", "-d", "--wait"]).success();
    let web = service_ids(&project, "web", false);
    let worker = service_ids(&project, "worker", false);
    assert_eq!((web.len(), worker.len()), (1, 1));

    // ps: a table with a header and one row per container...
    let ps = b.with(&["ps"]);
    ps.success();
    let lines: Vec<&str> = ps.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", ps.stdout);
    assert!(lines[0].starts_with("NAME") && lines[0].contains("SERVICE"));
    assert!(
        ps.stdout.contains(&format!("{project}-web-1")),
        "{}",
        ps.stdout
    );
    assert!(ps.stdout.contains("->8080/tcp"), "{}", ps.stdout);
    // ...or one JSON object per line.
    let json = b.with(&["ps", "--format", "json"]);
    json.success();
    let rows: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut services: Vec<&str> = rows
        .iter()
        .map(|r| r["Service"].as_str().unwrap())
        .collect();
    services.sort();
    assert_eq!(services, ["web", "worker"]);
    assert!(
        rows.iter().all(|r| r["State"] == "running"),
        "{}",
        json.stdout
    );
    let web_row = rows.iter().find(|r| r["Service"] == "web").unwrap();
    assert_eq!(web_row["Health"], "healthy");
    assert_eq!(web_row["Project"], project.as_str());

    // logs: each line prefixed with its container; the request the test sent is there.
    let addr = published_addr(&web[0], 8080);
    assert_eq!(http_get(addr, "/").unwrap().body.trim(), "v1");
    let logs = b.with(&["logs", "--tail", "100"]);
    logs.success();
    assert!(
        logs.stdout.contains("web-1    | GET / 200"),
        "{}",
        logs.stdout
    );
    assert!(
        logs.stdout.contains("worker-1 | testapp w1 listening"),
        "{}",
        logs.stdout
    );
    let one = b.with(&["logs", "--tail", "1", "web"]);
    one.success();
    assert_eq!(one.stdout.lines().count(), 1, "{}", one.stdout);
    assert!(one.stdout.starts_with("web-1 | "), "{}", one.stdout);

    // exec: the command's exit code.
    b.with(&["exec", "-T", "web", "/testapp", "health"])
        .success();
    let missing = b.with(&["exec", "-T", "web", "/no/such/binary"]);
    assert_ne!(missing.code, 0, "{missing:?}");

    // run: a one-off container labelled as such, with the command's exit code. Its
    // entrypoint is /testapp; `health` fails there because no server runs in a one-off.
    let kept = b.with(&["run", "-T", "web", "health"]);
    kept.code(1).stderr_has("testapp health:");
    let oneoff = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--filter",
        "label=com.docker.compose.oneoff=True",
    ]);
    assert_eq!(oneoff.lines().count(), 1, "{oneoff}");
    docker(&["rm", "-f", oneoff.trim()]);
    let removed = b.with(&["run", "--rm", "-T", "web", "nope"]);
    removed.code(2).stderr_has("unknown subcommand");
    assert_eq!(container_names(&project).len(), 2);
    // The service containers were not touched by either.
    assert_eq!(service_ids(&project, "web", false), web);

    // stop, start, restart change the state of the same containers.
    b.with(&["stop", "-t", "1", "worker"]).success();
    assert_eq!(state(&worker[0]), "exited");
    assert_eq!(state(&web[0]), "running");
    b.with(&["start", "worker"]).success();
    assert_eq!(state(&worker[0]), "running");
    let before = docker(&["inspect", "-f", "{{.State.StartedAt}}", &web[0]]);
    b.with(&["restart", "-t", "1", "web"]).success();
    assert_eq!(state(&web[0]), "running");
    assert_ne!(
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &web[0]]),
        before
    );
    assert_eq!(service_ids(&project, "web", false), web);
    assert_eq!(service_ids(&project, "worker", false), worker);
}

#[test]
fn systemd_prints_a_unit_for_this_project() {
    let project = unique_name("berth-unit").to_lowercase();
    let b = Berth::project(&[("compose.yaml", STACK)]).args(&["-p", &project]);
    let out = b.with(&["systemd"]);
    out.success();
    let dir = b.dir().canonicalize().unwrap();
    let exec = out
        .stdout
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in\n{}", out.stdout));
    assert!(exec.contains(&format!("-p {project}")), "{exec}");
    assert!(exec.contains("up -d --wait"), "{exec}");
    assert!(
        out.stdout.contains(&*dir.to_string_lossy()),
        "{}",
        out.stdout
    );
    // Printing installs nothing.
    assert!(
        out.stderr.is_empty() || !out.stderr.contains("error"),
        "{}",
        out.stderr
    );
}

#[test]
fn dev_mode_adds_the_bind_mount_and_the_dev_port() {
    let (project, _guard) = new_project("berth-dev");
    let port = free_port();
    let dev = format!(
        "services:\n  web:\n    volumes: [\"./src:/src:ro\"]\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
    );
    let base = "services:\n  web:\n    image: berth/testapp:latest\n";
    let b = Berth::project(&[
        ("compose.yaml", base),
        ("compose.dev.yaml", &dev),
        ("src/hello.txt", "hi"),
    ])
    .args(&["-p", &project]);
    let mounts = |id: &str| docker(&["inspect", "-f", "{{json .Mounts}}", id]);
    let ports = |id: &str| docker(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", id]);

    b.with(&["up", "-d"]).success();
    let plain = service_ids(&project, "web", false);
    assert_eq!(plain.len(), 1);
    assert!(!mounts(&plain[0]).contains("/src"), "{}", mounts(&plain[0]));
    assert!(!ports(&plain[0]).contains(&port.to_string()));

    b.with(&["--dev", "up", "-d"]).success();
    let dev_ids = service_ids(&project, "web", false);
    assert_eq!(dev_ids.len(), 1);
    let m = mounts(&dev_ids[0]);
    let src = b.dir().join("src").canonicalize().unwrap();
    assert!(m.contains(&*src.to_string_lossy()), "{m}");
    assert!(m.contains("\"Destination\":\"/src\""), "{m}");
    assert!(m.contains("\"RW\":false"), "{m}");
    let p = ports(&dev_ids[0]);
    assert!(p.contains(&format!("\"HostPort\":\"{port}\"")), "{p}");
    assert!(p.contains("127.0.0.1"), "{p}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    berth_test_support::wait_for("the dev port", std::time::Duration::from_secs(10), || {
        http_get(addr, "/").is_ok()
    });

    // Back without --dev: the dev additions are gone again.
    b.with(&["up", "-d"]).success();
    let again = service_ids(&project, "web", false);
    assert!(!mounts(&again[0]).contains("/src"));
    assert!(!ports(&again[0]).contains(&port.to_string()));
}

/// Removes the image a test built.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = docker_output(&["rmi", "-f", &self.0]);
    }
}

#[test]
fn up_build_honours_dockerignore_and_rebuilds_only_on_change() {
    let (project, _guard) = new_project("berth-build");
    let image = format!("berth/ctx-test:{project}");
    let compose = format!(
        "services:\n  web:\n    image: {image}\n    build: ./ctx\n    environment:\n      APP_VERSION: built\n"
    );
    let b = Berth::project(&[
        ("compose.yaml", &compose),
        (
            "ctx/Dockerfile",
            "FROM berth/testapp:latest\nCOPY . /ctx/\n",
        ),
        ("ctx/.dockerignore", "secret.txt\n"),
        ("ctx/hello.txt", "hello\n"),
        ("ctx/secret.txt", "do not ship\n"),
    ])
    .args(&["-p", &project]);
    // Dropped explicitly after `down` on success: the image can only go once no container
    // uses it. On a failure it drops before the project guard and `rmi -f` still untags it.
    let image_guard = ImageGuard(image.clone());

    let first = b.with(&["up", "-d"]);
    first.success().stdout_has("built");
    let ids = service_ids(&project, "web", false);
    assert_eq!(ids.len(), 1);
    let image_id = docker(&["image", "inspect", "-f", "{{.Id}}", &image]);
    let cp = |path: &str| docker_output(&["cp", &format!("{}:{path}", ids[0]), "-"]);
    assert!(cp("/ctx/hello.txt").status.success());
    assert!(cp("/ctx/Dockerfile").status.success());
    let secret = cp("/ctx/secret.txt");
    assert!(
        !secret.status.success(),
        "secret.txt was sent to the builder"
    );

    // No change: no build, no recreate.
    let second = b.with(&["up", "-d"]);
    second.success();
    assert!(!second.stdout.contains("building"), "{}", second.stdout);
    assert_eq!(service_ids(&project, "web", false), ids);
    // --build without a change: the builder's cache gives the same image, so nothing moves.
    b.with(&["up", "-d", "--build"]).success();
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Id}}", &image]),
        image_id
    );
    assert_eq!(service_ids(&project, "web", false), ids);
    // A changed ignored file changes nothing either.
    b.write("ctx/secret.txt", "still not shipped\n");
    b.with(&["up", "-d", "--build"]).success();
    assert_eq!(service_ids(&project, "web", false), ids);

    // A changed context file: a new image, and the container is recreated on it.
    b.write("ctx/hello.txt", "hello again\n");
    b.with(&["up", "-d", "--build"]).success();
    let new_ids = service_ids(&project, "web", false);
    assert_eq!(new_ids.len(), 1);
    assert_ne!(new_ids, ids);
    assert_ne!(
        docker(&["image", "inspect", "-f", "{{.Id}}", &image]),
        image_id
    );
    let out = docker_output(&["cp", &format!("{}:/ctx/hello.txt", new_ids[0]), "-"]);
    assert!(out.status.success());

    b.with(&["down"]).success();
    drop(image_guard);
}
