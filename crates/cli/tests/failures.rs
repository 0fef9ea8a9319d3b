//! Faults during `berth up` (issue #3): each one fails with exit code 1 and a message that
//! names the service and the cause, leaves the services that were healthy before running as
//! they were, and a rerun with a good configuration converges.

mod harness;
use berth_test_support::{docker, ensure_test_images, run_container, unique_name};
use harness::{container_names, free_port, service_ids, Berth, ProjectGuard};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Two testapp services with fast healthchecks; `web` needs `db` healthy.
const BASE: &str = r#"
services:
  db:
    image: berth/testapp:latest
    environment:
      APP_VERSION: db1
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 1s
      timeout: 1s
      retries: 3
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: v1
    depends_on:
      db: { condition: service_healthy }
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 1s
      timeout: 1s
      retries: 3
"#;

/// A healthy stack brought up from BASE, with the ids its containers had.
struct Stack {
    b: Berth,
    project: String,
    web: Vec<String>,
    db: Vec<String>,
    // Declared last so that it drops after the project directory is no longer in use.
    _guard: ProjectGuard,
}

impl Stack {
    fn up(compose: &str) -> Stack {
        ensure_test_images();
        let project = unique_name("berth-fault").to_lowercase();
        let guard = ProjectGuard(project.clone());
        let b = Berth::project(&[("compose.yaml", compose)]).args(&["-p", &project]);
        b.with(&["up", "-d", "--wait"]).success();
        let web = service_ids(&project, "web", false);
        let db = service_ids(&project, "db", false);
        assert_eq!((web.len(), db.len()), (1, 1));
        Stack {
            b,
            project,
            web,
            db,
            _guard: guard,
        }
    }

    /// Writes `compose` and runs `up` with `args`.
    fn up_with(&self, compose: &str, args: &[&str]) -> harness::Outcome {
        self.b.write("compose.yaml", compose);
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        self.b.with(&all)
    }

    /// The containers that were healthy before are running with the same ids, and nothing
    /// was left renamed aside.
    fn assert_untouched(&self) {
        assert_eq!(service_ids(&self.project, "web", false), self.web);
        assert_eq!(service_ids(&self.project, "db", false), self.db);
        let names = container_names(&self.project);
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(!names.iter().any(|n| n.contains("-replaced-")), "{names:?}");
    }

    /// With BASE again, `up -d --wait` succeeds and leaves exactly one container per service.
    fn assert_rerun_converges(&self) {
        self.up_with(BASE, &["-d", "--wait"]).success();
        assert_eq!(service_ids(&self.project, "web", false).len(), 1);
        assert_eq!(service_ids(&self.project, "db", false).len(), 1);
        assert_eq!(container_names(&self.project).len(), 2);
    }
}

fn stderr_has_all(out: &harness::Outcome, needles: &[&str]) {
    for n in needles {
        out.stderr_has(n);
    }
}

#[test]
fn port_already_allocated_fails_and_restores_the_old_container() {
    let s = Stack::up(BASE);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let _foreign = run_container("foreign-port", &["-p", &publish, "berth/testapp:latest"]);
    let bad = BASE.replace(
        "      APP_VERSION: v1\n",
        &format!("      APP_VERSION: v1\n    ports: [\"{publish}\"]\n"),
    );
    let out = s.up_with(&bad, &["-d", "--wait"]);
    out.code(1).no_panic();
    stderr_has_all(&out, &["error: service `web`", &port.to_string(), "in use"]);
    s.assert_untouched();
    s.assert_rerun_converges();
}

#[test]
fn missing_image_lists_every_service_and_changes_nothing() {
    let s = Stack::up(BASE);
    let bad = BASE.replace("image: berth/testapp:latest", "image: berth/nope:1");
    let out = s.up_with(&bad, &["-d", "--wait"]);
    out.code(1).no_panic();
    stderr_has_all(
        &out,
        &[
            "error: service `db`",
            "service `web`",
            "berth/nope:1",
            "build:",
        ],
    );
    s.assert_untouched();
    s.assert_rerun_converges();
}

#[test]
fn build_failure_names_the_service_and_the_step() {
    let s = Stack::up(BASE);
    let tag = format!("berth/build-fails:{}", s.project);
    s.b.write(
        "bad/Dockerfile",
        "FROM berth/testapp:latest\nCOPY missing /x\n",
    );
    let bad = BASE.replace(
        "      APP_VERSION: v1\n",
        "      APP_VERSION: v1\n    build: ./bad\n",
    );
    let bad = bad.replacen(
        "  web:\n    image: berth/testapp:latest",
        &format!("  web:\n    image: {tag}"),
        1,
    );
    let out = s.up_with(&bad, &["-d", "--wait"]);
    out.code(1).no_panic();
    stderr_has_all(&out, &["error: service `web`", "building", "missing"]);
    s.assert_untouched();
    s.assert_rerun_converges();
}

#[test]
fn container_that_exits_at_once_shows_its_last_log_lines() {
    let s = Stack::up(BASE);
    let bad = BASE.replace(
        "      APP_VERSION: v1\n",
        "      APP_VERSION: v1\n      CRASH: \"1\"\n",
    );
    // Without --wait: the settle check catches the crash.
    let out = s.up_with(&bad, &["-d"]);
    out.code(1).no_panic();
    stderr_has_all(
        &out,
        &[
            "error: service `web`",
            "exited with code 1",
            "last log lines",
            "CRASH=1 is set",
        ],
    );
    s.assert_untouched();
    // With --wait the health wait sees the exit.
    let out = s.up_with(&bad, &["-d", "--wait"]);
    out.code(1).no_panic();
    stderr_has_all(
        &out,
        &[
            "error: service `web`",
            "exited with code 1",
            "CRASH=1 is set",
        ],
    );
    s.assert_untouched();
    s.assert_rerun_converges();
}

#[test]
fn dependency_that_never_becomes_healthy_fails_within_its_deadline() {
    let s = Stack::up(BASE);
    // db turns unhealthy, and web changes too, so web has to wait for db.
    let bad = BASE
        .replace(
            "      APP_VERSION: db1\n",
            "      APP_VERSION: db2\n      HEALTH: fail\n",
        )
        .replace("APP_VERSION: v1", "APP_VERSION: v2");
    let started = Instant::now();
    let out = s.up_with(&bad, &["-d", "--wait"]);
    out.code(1).no_panic();
    // The deadline is (interval + timeout) x retries = 6 s; stopping and restoring adds a
    // few seconds, not the 30 s default timeout.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    stderr_has_all(&out, &["error: service `db`"]);
    assert!(
        out.stderr.contains("unhealthy") || out.stderr.contains("did not become healthy"),
        "{}",
        out.stderr
    );
    s.assert_untouched();
    s.assert_rerun_converges();
}

/// web's healthcheck only runs every 5 s, so `--wait` spends seconds waiting for it.
const SLOW: &str = r#"
services:
  db:
    image: berth/testapp:latest
    environment:
      APP_VERSION: db1
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 1s
      timeout: 1s
      retries: 3
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: v2
    depends_on:
      db: { condition: service_healthy }
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 5s
      timeout: 1s
      retries: 3
"#;

#[test]
fn ctrl_c_during_up_stops_cleanly_and_a_rerun_converges() {
    let s = Stack::up(BASE);
    s.b.write("compose.yaml", SLOW);
    let mut child =
        s.b.command(&["up", "-d", "--wait"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    // Interrupt once berth is waiting for the recreated web container, about a second in.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("waiting for web") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("waiting for web"), "{seen}");
    std::thread::sleep(Duration::from_millis(800));
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{seen}{rest}\n{stderr}");
    assert!(stderr.contains("run the command again"), "{stderr}");
    // The half-done recreate was put back: the old web runs again, nothing is left aside.
    s.assert_untouched();

    let again = s.b.with(&["up", "-d", "--wait"]);
    again.success();
    let web = service_ids(&s.project, "web", false);
    assert_eq!(web.len(), 1);
    assert_ne!(web, s.web);
    assert_eq!(service_ids(&s.project, "db", false), s.db);
    let names = container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Health.Status}}", &web[0]]),
        "healthy"
    );
}
