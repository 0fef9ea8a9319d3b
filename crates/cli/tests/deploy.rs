//! `berth deploy` on the real engine behind a real `berth proxy run`, under continuous load
//! from a client that records every response (issue #5).

mod harness;
use berth_test_support::{docker, ensure_test_images, unique_name, Load};
use harness::stage::Stage;
use std::time::{Duration, Instant};

/// testapp x2 behind the proxy. `VERSION` and `EXTRA` come from the project's .env, so a
/// deploy can change the version or add a fault (CRASH=1, HEALTH=fail, FAIL_ROOT=1).
const WEB: &str = r#"
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: ${VERSION}
      CRASH: ${CRASH:-0}
      HEALTH: ${HEALTH:-ok}
      FAIL_ROOT: ${FAIL_ROOT:-0}
    deploy:
      replicas: 2
      update_config:
        monitor: 2s
    stop_grace_period: 30s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 3
    x-berth:
      proxy: { host: app.test, port: 8080, health_path: /up }
      drain_timeout: 30s
"#;

/// The deploy tests share 2 cores with the load they generate; one at a time keeps health
/// checks and timings representative.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn stage(compose: &str) -> Stage {
    ensure_test_images();
    let project = unique_name("berth-dep").to_lowercase();
    Stage::new(&project, compose)
}

/// 4 keep-alive clients at 150 requests/s each: 600 requests/s through the proxy.
fn load(s: &Stage) -> Load {
    Load::start(s.proxy_addr, "app.test", "/", 4, 150)
}

#[test]
fn twenty_rolling_deploys_under_load_fail_no_request() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v0\n", &[]).success();
    let load = load(&s);
    std::thread::sleep(std::time::Duration::from_millis(500));
    for i in 1..=20 {
        let out = s.deploy_env(&format!("VERSION=v{i}\n"), &[]);
        out.success();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let report = load.stop();
    eprintln!("{}", report.summary());
    assert!(report.failed().is_empty(), "{}", report.summary());
    assert!(report.rate() >= 500.0, "{}", report.summary());
    let bodies = report.by_body();
    for i in 0..=20 {
        assert!(
            bodies.contains_key(&format!("v{i}")),
            "v{i} never answered: {}",
            report.summary()
        );
    }
    // Exactly the two new replicas are left, and the releases are recorded.
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
    let releases = s.run(&["releases", "--format", "json"]);
    releases.success();
    assert_eq!(releases.stdout.lines().count(), 21, "{}", releases.stdout);
}

/// About `ms` milliseconds of requests from one client; how many answers had each body.
fn sample(s: &Stage, ms: u64) -> std::collections::BTreeMap<String, usize> {
    let l = Load::start(s.proxy_addr, "app.test", "/", 1, 1000);
    std::thread::sleep(Duration::from_millis(ms));
    let mut seen = std::collections::BTreeMap::new();
    for x in l.stop().samples {
        let key = if x.status == 200 {
            x.body
        } else {
            format!("{} {}", x.status, x.body)
        };
        *seen.entry(key).or_insert(0) += 1;
    }
    seen
}

/// Starts `berth deploy --format json ARGS` and reads its events until one contains
/// `needle`; returns the running child and the rest of its output.
// The caller waits for the child: it is returned still running on purpose.
#[allow(clippy::zombie_processes)]
fn deploy_until(
    s: &Stage,
    args: &[&str],
    needle: &str,
    ended: &str,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    let mut all = vec!["deploy", "--format", "json"];
    all.extend_from_slice(args);
    let mut child = s
        .berth
        .command(&all)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    loop {
        let line = lines.next().expect(ended).unwrap();
        if line.contains(needle) {
            return (child, lines);
        }
    }
}

#[test]
fn bad_versions_are_rolled_back_automatically() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v1\n", &[]).success();
    let before = harness::container_names(&s.project);
    let load = Load::start(s.proxy_addr, "app.test", "/", 2, 100);

    // Exits at start, and never healthy: rolled back before any traffic moved.
    let crash = s.deploy_env("VERSION=v2\nCRASH=1\n", &[]);
    crash
        .code(1)
        .stderr_has("rolled back")
        .stderr_has("CRASH=1 is set");
    let unhealthy = s.deploy_env("VERSION=v3\nHEALTH=fail\n", &[]);
    unhealthy
        .code(1)
        .stderr_has("rolled back")
        .stderr_has("healthcheck");
    let report = load.stop();
    assert!(report.failed().is_empty(), "{}", report.summary());
    assert_eq!(
        report.by_body().keys().collect::<Vec<_>>(),
        ["v1"],
        "{}",
        report.summary()
    );
    assert_eq!(
        harness::container_names(&s.project),
        before,
        "the old replicas are back under their names"
    );

    // Healthy but serving 500s: caught by the monitor window's error rate.
    let load = Load::start(s.proxy_addr, "app.test", "/", 2, 100);
    let bad_root = s.deploy_env("VERSION=v4\nFAIL_ROOT=1\n", &[]);
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    bad_root
        .code(1)
        .stderr_has("rolled back")
        .stderr_has("requests to the new version failed");
    // The only failures are the new version's own 500s while it had a share of traffic.
    for f in report.failed() {
        assert_eq!(f.status, 500, "{}", report.summary());
        assert!(f.body.contains("FAIL_ROOT"), "{}", report.summary());
    }
    let tail: Vec<_> = report.samples.iter().rev().take(50).collect();
    assert!(
        tail.iter().all(|x| x.status == 200 && x.body == "v1"),
        "{}",
        report.summary()
    );
    eprintln!("FAIL_ROOT under rolling: {}", report.summary());
    // Caught by the look after the first replica, which had a third of the traffic, and taken
    // out of rotation at once: a small share of the load.
    let share = report.failed().len() as f64 / report.total() as f64;
    assert!(share < 0.15, "{}", report.summary());
    assert_eq!(harness::container_names(&s.project), before);

    // The same fault as a canary at 10%: failures are limited to the canary's share.
    let load = Load::start(s.proxy_addr, "app.test", "/", 2, 100);
    let canary = s.deploy_env("VERSION=v5\nFAIL_ROOT=1\n", &["--strategy", "canary"]);
    let report = load.stop();
    canary.code(1).stderr_has("canary at 10%");
    let failed = report.failed().len() as f64;
    assert!(
        failed / (report.total() as f64) < 0.10,
        "{}",
        report.summary()
    );
    eprintln!("FAIL_ROOT as a canary: {}", report.summary());
    assert_eq!(
        sample(&s, 500).keys().collect::<Vec<_>>(),
        ["v1"],
        "abort returned all traffic to stable"
    );

    let releases = s.run(&["releases", "--format", "json"]);
    let statuses: Vec<String> = releases
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|x| *x == "rolled_back").count(),
        4,
        "{}",
        releases.stdout
    );
}

/// A minimal WebSocket client (RFC 6455): the handshake, masked text frames out, unmasked
/// frames in. Enough to hold a connection open through a deploy.
struct Ws(std::net::TcpStream);

impl Ws {
    fn open(addr: std::net::SocketAddr, host: &str) -> Ws {
        use std::io::{BufRead, BufReader, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("101"), "no upgrade: {line}");
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Ws(c)
    }

    /// Sends `text` and returns the echoed text, or the error.
    fn echo(&mut self, text: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).map_err(|e| e.to_string())?;
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).map_err(|e| e.to_string())?;
        if head[0] & 0x0f == 0x8 {
            return Err("closed".into());
        }
        let mut body = vec![0; (head[1] & 0x7f) as usize];
        self.0.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[test]
fn a_long_request_completes_and_a_websocket_stays_open_through_the_switch() {
    let _serial = serial();
    let s = stage(&WEB.replace("drain_timeout: 30s", "drain_timeout: 25s"));
    s.deploy_env("VERSION=v1\n", &[]).success();

    // A 20 s request and a WebSocket, both on v1, opened before the deploy.
    let addr = s.proxy_addr;
    let slow = std::thread::spawn(move || {
        let l = Load::start(addr, "app.test", "/slow?ms=20000", 1, 1);
        std::thread::sleep(Duration::from_millis(500));
        l.stop()
    });
    let mut ws = Ws::open(s.proxy_addr, "app.test");
    assert_eq!(ws.echo("before").unwrap(), "before");
    let echoes = std::thread::spawn(move || {
        let mut ok = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            match ws.echo("ping") {
                Ok(t) if t == "ping" => ok += 1,
                other => panic!("the WebSocket broke after {ok} echoes: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    });
    std::thread::sleep(Duration::from_secs(1));
    let deploy = s.deploy_env("VERSION=v2\n", &[]);
    deploy.success();
    // The deploy moved traffic long before the slow request ended.
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);
    let report = slow.join().unwrap();
    assert_eq!(report.total(), 1, "{}", report.summary());
    assert!(
        report.failed().is_empty(),
        "the 20 s request failed: {}",
        report.summary()
    );
    assert!(
        report.samples[0].body.contains("slept 20000 ms"),
        "{}",
        report.summary()
    );
    let n = echoes.join().unwrap();
    assert!(n >= 25, "{n} echoes");
}

#[test]
fn kill_9_at_random_moments_converges_without_a_failed_request() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v0\n", &[]).success();
    let load = Load::start(s.proxy_addr, "app.test", "/", 2, 100);
    // A fixed-seed generator: moments spread over a deploy's length (about 4 s), reported so a
    // failure can be replayed.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut moments = Vec::new();
    for i in 1..=10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let ms = 200 + seed % 4500;
        moments.push(ms);
        s.berth.write(".env", &format!("VERSION=k{i}\n"));
        let mut child = s
            .berth
            .command(&["deploy"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The next command converges whatever was left, then deploys.
        let next = s.deploy_env(&format!("VERSION=n{i}\n"), &[]);
        next.success();
        let names = harness::container_names(&s.project);
        assert_eq!(names.len(), 2, "after a kill at {ms} ms: {names:?}");
        assert!(
            names
                .iter()
                .all(|n| !n.contains("-berth-old-") && !n.contains("-release-")),
            "{names:?}"
        );
    }
    let report = load.stop();
    eprintln!("kill -9 at {moments:?} ms: {}", report.summary());
    assert!(
        report.failed().is_empty(),
        "kills at {moments:?}: {}",
        report.summary()
    );
    let releases = s.run(&["releases", "--format", "json"]);
    assert!(
        releases.stdout.lines().all(|l| !l.contains("\"running\"")),
        "{}",
        releases.stdout
    );
}

#[test]
fn blue_green_switches_at_once_and_canary_weights_hold() {
    let _serial = serial();
    let compose = WEB.replace(
        "      drain_timeout: 30s\n",
        "      drain_timeout: 30s\n      canary: { steps: [25], interval: 6s, max_error_rate: 0.05 }\n",
    );
    let s = stage(&compose);
    s.deploy_env("VERSION=v1\n", &[]).success();

    // Blue-green: v2 takes all traffic in one swap; the previous set stays running.
    let bg = s.deploy_env(
        "VERSION=v2\n",
        &["--strategy", "blue-green", "--keep-old", "5m"],
    );
    bg.success();
    assert_eq!(sample(&s, 500).keys().collect::<Vec<_>>(), ["v2"]);
    let names = harness::container_names(&s.project);
    assert_eq!(
        names.iter().filter(|n| n.contains("-berth-old-")).count(),
        2,
        "{names:?}"
    );

    // Canary at 25%: observed within ±5 points while the step lasts.
    s.berth.write(".env", "VERSION=v3\n");
    let (mut child, _lines) = deploy_until(
        &s,
        &["--strategy", "canary"],
        "\"canary_percent\":25",
        "the deploy ended before the canary step",
    );
    let seen = sample(&s, 4000);
    let v3 = *seen.get("v3").unwrap_or(&0) as f64;
    let total: usize = seen.values().sum();
    let share = v3 / total as f64;
    eprintln!("canary share {share:.3} of {total}: {seen:?}");
    assert!((0.20..=0.30).contains(&share), "{seen:?}");
    assert!(child.wait().unwrap().success());
    assert_eq!(sample(&s, 500).keys().collect::<Vec<_>>(), ["v3"]);
    // The blue-green standby was retired by the next deploy.
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn rollback_to_an_earlier_release_under_load() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v1\n", &[]).success();
    s.deploy_env("VERSION=v2\n", &[]).success();
    let load = Load::start(s.proxy_addr, "app.test", "/", 2, 100);
    s.run(&["rollback"]).success();
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    assert!(report.failed().is_empty(), "{}", report.summary());
    assert_eq!(sample(&s, 500).keys().collect::<Vec<_>>(), ["v1"]);
    let releases = s.run(&["releases", "--format", "json"]);
    let last: serde_json::Value =
        serde_json::from_str(releases.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(last["rollback_of"], 1, "{}", releases.stdout);
    assert_eq!(last["status"], "succeeded");
    // --to a release that does not exist is bad input.
    s.run(&["rollback", "--to", "99"])
        .code(2)
        .stderr_has("no release 99");
}

#[test]
fn a_postgres_update_is_stop_first_and_never_two_containers_share_its_volume() {
    let _serial = serial();
    let compose = r#"
services:
  db:
    image: berth/postgres:15
    environment:
      POSTGRES_PASSWORD: secret
      REVISION: ${VERSION}
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 500ms
      retries: 60
    deploy:
      update_config: { order: start-first }
volumes:
  pgdata: {}
"#;
    let s = stage(compose);
    s.deploy_env("VERSION=1\n", &[]).success();
    let volume = format!("{}_pgdata", s.project);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let volume = volume.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            let mut polls = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let n = docker(&["ps", "-q", "--filter", &format!("volume={volume}")])
                    .split_whitespace()
                    .count();
                most = most.max(n);
                polls += 1;
            }
            (most, polls)
        })
    };
    let out = s.deploy_env("VERSION=2\n", &[]);
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (most, polls) = watcher.join().unwrap();
    out.success().stderr_has("stop-first");
    assert!(polls > 10, "{polls} polls");
    assert_eq!(most, 1, "two containers ran on {volume} at once");
    let env = docker(&[
        "inspect",
        "-f",
        "{{.Config.Env}}",
        &format!("{}-db-1", s.project),
    ]);
    assert!(env.contains("REVISION=2"), "{env}");
}

#[test]
fn a_second_deploy_of_the_same_project_is_refused_and_names_the_holder() {
    let _serial = serial();
    let s = stage(&WEB.replace("monitor: 2s", "monitor: 8s"));
    s.deploy_env("VERSION=v1\n", &[]).success();
    s.berth.write(".env", "VERSION=v2\n");
    let mut first = s
        .berth
        .command(&["deploy"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let second = s.run(&["deploy"]);
    second
        .code(1)
        .stderr_has("berth deploy")
        .stderr_has(&first.id().to_string());
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_release_command_runs_before_traffic_moves_and_a_failing_one_changes_nothing() {
    let _serial = serial();
    // The image's entrypoint is /testapp, so the command is its argument, as with `command:`.
    let compose = WEB
        .replace(
            "      FAIL_ROOT: ${FAIL_ROOT:-0}\n",
            "      FAIL_ROOT: ${FAIL_ROOT:-0}\n      MIGRATE: ${MIGRATE:-ok}\n",
        )
        .replace(
            "      drain_timeout: 30s\n",
            "      drain_timeout: 30s\n      release_command: migrate\n",
        );
    let s = stage(&compose);
    s.deploy_env("VERSION=v1\n", &[]).success();
    let ok = s.deploy_env("VERSION=v2\n", &["--format", "json"]);
    ok.success();
    // The release command's event comes before the first new replica starts.
    let lines: Vec<&str> = ok.stdout.lines().collect();
    let cmd = lines
        .iter()
        .position(|l| l.contains("release command: migrate"))
        .expect(&ok.stdout);
    let start = lines
        .iter()
        .position(|l| l.contains("starting"))
        .expect(&ok.stdout);
    assert!(cmd < start, "{}", ok.stdout);
    let before = harness::service_ids(&s.project, "web", true);

    let bad = s.deploy_env("VERSION=v3\nMIGRATE=fail\n", &[]);
    bad.code(1)
        .stderr_has("release command `migrate` exited with code 1")
        .stderr_has("MIGRATE=fail is set");
    assert_eq!(
        harness::service_ids(&s.project, "web", true),
        before,
        "nothing changed"
    );
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);
    let names = harness::container_names(&s.project);
    assert!(names.iter().all(|n| !n.contains("-release-")), "{names:?}");
}

/// Issue #16 item 5: before a release command runs, the services with `x-berth.backup` are
/// backed up and the release record names the snapshot; `--no-backup` skips it; `berth
/// rollback` past that release prints the command that restores it.
#[test]
fn a_release_command_is_preceded_by_a_backup_that_rollback_offers_to_restore() {
    let _serial = serial();
    let compose = WEB.replace(
        "      drain_timeout: 30s\n",
        "      drain_timeout: 30s\n      release_command: migrate\n",
    ) + r#"
  store:
    image: berth/testapp:latest
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 20
    volumes: [data:/data]
    x-berth: { backup: volume }
volumes:
  data: {}
"#;
    let s = stage(&compose);
    s.deploy_env("VERSION=v1\n", &[]).success();
    let v2 = s.deploy_env("VERSION=v2\n", &[]);
    v2.success();
    let (backup_line, command_line) = {
        let text = format!("{}{}", v2.stdout, v2.stderr);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
        (
            at("backed up before the release command").expect(&text),
            at("release command: migrate").expect(&text),
        )
    };
    assert!(backup_line < command_line, "{}", v2.stdout);

    let releases = s.run(&["releases", "--format", "json"]);
    releases.success();
    let all: Vec<serde_json::Value> = releases
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let release = |n: u64| {
        all.iter()
            .find(|r| r["number"] == n)
            .unwrap_or_else(|| panic!("no release {n}: {}", releases.stdout))
            .clone()
    };
    let snapshot = release(2)["backup"][0]
        .as_str()
        .expect(&releases.stdout)
        .to_string();
    let listed = s.run(&["backup", "list", "--format", "json"]);
    listed
        .success()
        .stdout_has(&snapshot)
        .stdout_has("release=2");

    let v3 = s.deploy_env("VERSION=v3\n", &["--no-backup"]);
    v3.success();
    assert!(!v3.stderr.contains("backed up"), "{}", v3.stderr);

    s.run(&["rollback", "--to", "1"])
        .success()
        .stderr_has("release 2 backed up the data before its release command")
        .stderr_has(&format!("berth backup restore {} --force", &snapshot[..8]));
}

#[test]
fn berth_promote_and_abort_steer_a_paused_canary() {
    let _serial = serial();
    let compose = WEB.replace(
        "      drain_timeout: 30s\n",
        "      drain_timeout: 30s\n      strategy: canary\n      canary: { steps: [{ percent: 20, pause: true }], interval: 1s }\n",
    );
    let s = stage(&compose);
    s.deploy_env("VERSION=v1\n", &[]).success();
    let paused = |version: &str| {
        s.berth.write(".env", &format!("VERSION={version}\n"));
        let (child, lines) = deploy_until(
            &s,
            &[],
            "canary paused at 20%",
            "the deploy ended before pausing",
        );
        // Paused means it stays: still 20% well past the interval.
        std::thread::sleep(Duration::from_secs(2));
        let seen = sample(&s, 2000);
        let share = *seen.get(version).unwrap_or(&0) as f64 / seen.values().sum::<usize>() as f64;
        assert!((0.15..=0.25).contains(&share), "{seen:?}");
        (child, lines)
    };

    let (mut child, _lines) = paused("v2");
    s.run(&["promote"])
        .success()
        .stdout_has("promotion requested");
    assert!(child.wait().unwrap().success());
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);

    let (mut child, _lines) = paused("v3");
    s.run(&["abort"]).success();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert_eq!(
        sample(&s, 500).keys().collect::<Vec<_>>(),
        ["v2"],
        "abort returned all traffic to stable"
    );
    // Nothing to steer when no deploy runs.
    s.run(&["promote"]).code(1).stderr_has("no deploy");
}

#[test]
fn workers_are_start_first_with_a_healthcheck_and_stop_first_without() {
    let _serial = serial();
    let compose = r#"
services:
  checked:
    image: berth/testapp:latest
    environment: { APP_VERSION: "${VERSION}" }
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 3
  plain:
    image: berth/testapp:latest
    environment: { APP_VERSION: "${VERSION}" }
    stop_grace_period: 5s
    healthcheck: { disable: true }
"#;
    let s = stage(compose);
    s.deploy_env("VERSION=1\n", &[]).success();
    let out = s.deploy_env("VERSION=2\n", &["--format", "json"]);
    out.success();
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let index = |service: &str, needle: &str| {
        events
            .iter()
            .position(|e| {
                e["service"] == service
                    && e["message"].as_str().is_some_and(|m| m.starts_with(needle))
            })
            .unwrap_or_else(|| panic!("no `{needle}` for {service}: {}", out.stdout))
    };
    assert!(
        index("checked", "starting") < index("checked", "stopping old"),
        "{}",
        out.stdout
    );
    assert!(
        index("plain", "stopping") < index("plain", "starting"),
        "{}",
        out.stdout
    );
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn up_after_a_killed_deploy_converges_it_and_routes_what_it_starts() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v1\n", &[]).success();
    s.berth.write(".env", "VERSION=v2\n");
    let mut child = s
        .berth
        .command(&["deploy"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    // `up` reverts the interrupted release, converges to the files (v2, by recreating), and
    // points the proxy at the containers it started.
    s.run(&["up", "--wait"]).success();
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().all(|n| !n.contains("-berth-old-")),
        "{names:?}"
    );
    let releases = s.run(&["releases", "--format", "json"]);
    assert!(
        releases.stdout.contains("\"interrupted\""),
        "{}",
        releases.stdout
    );
    assert!(
        !releases.stdout.contains("\"running\""),
        "{}",
        releases.stdout
    );
    assert_eq!(sample(&s, 500).keys().collect::<Vec<_>>(), ["v2"]);
}

/// `WEB` with a 1 s healthcheck timeout, so a replica the proxy never sees healthy is given
/// up after about 9 s (the health deadline) instead of 96 s.
fn web_fast() -> String {
    WEB.replace(
        "      retries: 3\n",
        "      timeout: 1s\n      retries: 3\n",
    )
}

/// What a route is, from `berth proxy status --format json`: every route's name, hosts, path,
/// health path, maintenance and pause, and its sets' ids, weights and target addresses
/// (health and counters left out: they move with the load).
fn routes(s: &Stage) -> serde_json::Value {
    let out = s.run(&["proxy", "status", "--format", "json"]);
    out.success();
    let status: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect(&out.stdout);
    let routes: Vec<serde_json::Value> = status["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let sets: Vec<serde_json::Value> = r["sets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|set| {
                    let targets: Vec<&serde_json::Value> = set["targets"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| &t["addr"])
                        .collect();
                    serde_json::json!({
                        "id": set["id"], "weight": set["weight"], "pending": set["pending"],
                        "targets": targets,
                    })
                })
                .collect();
            serde_json::json!({
                "name": r["name"], "hosts": r["hosts"], "path_prefix": r["path_prefix"],
                "health_path": r["health_path"], "maintenance": r["maintenance"],
                "paused": r["paused"], "sets": sets,
            })
        })
        .collect();
    serde_json::Value::Array(routes)
}

/// Every release's status, newest first.
fn statuses(s: &Stage) -> Vec<String> {
    let releases = s.run(&["releases", "--format", "json"]);
    releases.success();
    releases
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A deploy whose changed route setting the new replicas fail, under continuous load: it
/// exits 1 naming the setting, no request fails, the route is exactly as it was, and the
/// release is recorded rolled back. `compose` is the changed file, `env` the new .env.
fn a_bad_route_setting_changes_nothing(compose: &str, env: &str, setting: &str) {
    let s = stage(&web_fast());
    s.deploy_env("VERSION=v1\n", &[]).success();
    let before = routes(&s);
    let load = load(&s);
    std::thread::sleep(Duration::from_millis(300));
    s.berth.write("compose.yaml", compose);
    let out = s.deploy_env(env, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    eprintln!("{setting}: {}", report.summary());
    out.code(1).stderr_has(setting).stderr_has("rolled back");
    assert!(
        !out.stderr.contains("traffic stays"),
        "a claim about the traffic: {}",
        out.stderr
    );
    assert!(report.failed().is_empty(), "{}", report.summary());
    assert_eq!(routes(&s), before, "the route changed");
    assert_eq!(
        sample(&s, 300).keys().collect::<Vec<_>>(),
        ["v1"],
        "the old version serves"
    );
    assert_eq!(statuses(&s), ["rolled_back", "succeeded"]);
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
}

/// issue #14 item 1: `x-berth.proxy.port` changed to a port the app does not listen on. The
/// rollback used to re-register the old, healthy replicas on the new port, where the proxy's
/// health check failed them: 399 of 500 requests were 503s.
#[test]
fn a_wrong_route_port_is_rolled_back_without_a_failed_request_or_a_changed_route() {
    let _serial = serial();
    a_bad_route_setting_changes_nothing(
        &web_fast().replace("port: 8080", "port: 9090"),
        "VERSION=v2\n",
        "x-berth.proxy.port",
    );
}

/// issue #14 item 1: a `health_path` the new version does not answer. Changing it used to
/// re-check the running replicas on the new path at once, and fail them.
#[test]
fn a_wrong_health_path_is_rolled_back_without_a_failed_request_or_a_changed_route() {
    let _serial = serial();
    a_bad_route_setting_changes_nothing(
        &web_fast().replace("health_path: /up", "health_path: /nope"),
        "VERSION=v2\n",
        "x-berth.proxy.health_path",
    );
}

/// issue #14 item 1: a change of `x-berth.proxy.port` alone (same image, same container
/// spec) is a release like any other: new replicas proven on the new port, or nothing
/// changes. It used to be "nothing to deploy" while the proxy was repointed, dropping a
/// replica.
#[test]
fn a_port_only_change_goes_through_a_release() {
    let _serial = serial();
    a_bad_route_setting_changes_nothing(
        &web_fast().replace("port: 8080", "port: 9090"),
        "VERSION=v1\n",
        "x-berth.proxy.port",
    );
}

/// issue #14 item 1: the app and its route move to another port together. The old replicas
/// keep being reached on the old port until the new ones passed the proxy's check on the
/// new one; it used to repoint the old replicas first, and fail them.
#[test]
fn an_app_moving_to_another_port_is_deployed_without_a_failed_request() {
    let _serial = serial();
    let s = stage(&web_fast());
    s.deploy_env("VERSION=v1\n", &[]).success();
    let load = load(&s);
    std::thread::sleep(Duration::from_millis(300));
    s.berth.write(
        "compose.yaml",
        &web_fast()
            .replace("port: 8080", "port: 9090")
            .replace("      CRASH:", "      PORT: \"9090\"\n      CRASH:"),
    );
    let out = s.deploy_env("VERSION=v2\n", &[]);
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    out.success();
    assert!(report.failed().is_empty(), "{}", report.summary());
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);
    let after = routes(&s);
    let targets: Vec<&str> = after[0]["sets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|set| set["targets"].as_array().unwrap())
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 2, "{after}");
    assert!(targets.iter().all(|t| t.ends_with(":9090")), "{after}");
    assert_eq!(statuses(&s), ["succeeded", "succeeded"]);
}

/// issue #14 item 1: a health path the new version answers (and the old one does too) is
/// switched to without a failed request: the route's settings change once, after the new
/// replicas passed the check on the new path.
#[test]
fn a_new_health_path_is_switched_to_without_a_failed_request() {
    let _serial = serial();
    let s = stage(&web_fast());
    s.deploy_env("VERSION=v1\n", &[]).success();
    let load = load(&s);
    std::thread::sleep(Duration::from_millis(300));
    s.berth.write(
        "compose.yaml",
        &web_fast().replace("health_path: /up", "health_path: /"),
    );
    let out = s.deploy_env("VERSION=v2\n", &[]);
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    out.success();
    eprintln!("health path switch: {}", report.summary());
    assert!(report.failed().is_empty(), "{}", report.summary());
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);
    let after = routes(&s);
    assert_eq!(after.as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after[0]["health_path"], "/", "{after}");
    assert_eq!(statuses(&s), ["succeeded", "succeeded"]);
}

/// issue #14 item 8: a deploy's output tells the new container from the old one it
/// replaces, though both carry the name `web-1` in turn.
#[test]
fn deploy_output_tells_old_and_new_containers_apart() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v1\n", &[]).success();
    let out = s.deploy_env("VERSION=v2\n", &[]);
    out.success();
    let web1 = format!("{}-web-1", s.project);
    out.stdout_has(&format!("starting new {web1} (r2)"))
        .stdout_has(&format!("stopping old {web1} (r1)"));
    for line in out.stdout.lines() {
        assert!(
            !line.ends_with(&format!("starting {web1}"))
                && !line.ends_with(&format!("stopping old {web1}")),
            "a bare name: {line}\n{}",
            out.stdout
        );
    }
}

/// issue #14 item 7: a plain `berth up` that changes a routed service's version records a
/// release (strategy `up`) and says so, so that `releases` and `rollback` know what runs.
#[test]
fn up_that_changes_a_routed_version_records_a_release() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v1\n", &[]).success();
    s.berth.write(".env", "VERSION=v2\n");
    let up = s.run(&["up", "--wait"]);
    up.success().stdout_has("release 2");
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);
    let releases = s.run(&["releases", "--format", "json"]);
    let newest: serde_json::Value =
        serde_json::from_str(releases.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(newest["number"], 2, "{}", releases.stdout);
    assert_eq!(newest["status"], "succeeded", "{}", releases.stdout);
    assert_eq!(newest["strategy"], "up", "{}", releases.stdout);
    // An `up` that changes nothing records nothing.
    s.run(&["up", "--wait"]).success();
    assert_eq!(statuses(&s).len(), 2);
    // The release `up` recorded is one `rollback` returns to.
    s.deploy_env("VERSION=v3\n", &[]).success();
    s.run(&["rollback"]).success();
    assert_eq!(sample(&s, 300).keys().collect::<Vec<_>>(), ["v2"]);
}

/// issue #14 item 7: after a rollback `ps` shows the image as the compose file names it,
/// not the bare image id the rollback ran; and `up --dry-run` plans nothing after a deploy,
/// nor after a rollback once the files say what runs.
#[test]
fn after_a_rollback_ps_shows_the_image_by_name_and_up_plans_nothing() {
    let _serial = serial();
    let s = stage(WEB);
    s.deploy_env("VERSION=v1\n", &[]).success();
    s.deploy_env("VERSION=v2\n", &[]).success();
    let dry = s.run(&["up", "--dry-run"]);
    dry.success();
    assert_plans_nothing(&dry.stdout, "after a deploy");
    s.run(&["rollback"]).success();
    let ps = s.run(&["ps", "--format", "json"]);
    ps.success();
    let images: Vec<String> = ps
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["Image"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        images,
        ["berth/testapp:latest", "berth/testapp:latest"],
        "{}",
        ps.stdout
    );
    // The release rolled back to was made from VERSION=v1: with the files saying so again,
    // there is nothing for `up` to do.
    s.berth.write(".env", "VERSION=v1\n");
    let dry = s.run(&["up", "--dry-run"]);
    dry.success();
    assert_plans_nothing(&dry.stdout, "after a rollback");
}

/// Every step of an `up --dry-run` keeps what runs: no container is created, recreated,
/// started or stopped.
fn assert_plans_nothing(plan: &str, when: &str) {
    assert!(
        plan.lines()
            .all(|l| l.starts_with("keep ") || l.starts_with("use external ")),
        "{when}, up plans changes:\n{plan}"
    );
    assert!(plan.contains("keep container"), "{when}:\n{plan}");
}
