//! `berth deploy` on the real engine behind a real `berth proxy run`, under continuous load
//! from a client that records every response (issue #5).

mod harness;
use berth_test_support::{docker, ensure_test_images, unique_name, Load};
use harness::stage::Stage;

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
        assert!(bodies.contains_key(&format!("v{i}")), "v{i} never answered: {}", report.summary());
    }
    // Exactly the two new replicas are left, and the releases are recorded.
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
    let releases = s.run(&["releases", "--format", "json"]);
    releases.success();
    assert_eq!(releases.stdout.lines().count(), 21, "{}", releases.stdout);
    let _ = docker(&["ps"]);
}
