//! `berth down` removes the proxy routes the project owns (issue #14 item 4), with a real
//! `berth proxy run` and the real engine.

mod harness;
use berth_test_support::{ensure_test_images, unique_name};
use harness::stage::Stage;
use harness::{Berth, ProjectGuard};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Two routed services, each with its own host.
const ROUTED: &str = r#"
services:
  web:
    image: berth/testapp:latest
    environment: { APP_VERSION: web }
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 20
    x-berth:
      proxy: { host: web.test, port: 8080, health_path: /up }
  api:
    image: berth/testapp:latest
    environment: { APP_VERSION: api }
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 20
    x-berth:
      proxy: { host: api.test, port: 8080, health_path: /up }
"#;

/// One test at a time: both create the host's `berth` network when it is missing, and two
/// creations at once make two networks of that name, which the engine then refuses to use.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The names of the proxy's routes, from `berth proxy status --format json`.
fn routes(s: &Stage) -> Vec<String> {
    let out = s.run(&["proxy", "status", "--format", "json"]);
    out.success();
    let status: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let mut names: Vec<String> = status["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The status code the proxy answers for `GET /` with `Host: host`.
fn status_for(proxy: SocketAddr, host: &str) -> u16 {
    let mut c = std::net::TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        c,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"))
}

/// Issue #14 item 4: `down web` removes web's route and only it; `down` removes the rest, and
/// says so. Before, every route stayed and a stopped project answered 502, then 503, forever.
#[test]
fn down_removes_the_routes_the_project_owns_and_down_web_only_webs() {
    let _serial = serial();
    ensure_test_images();
    let s = Stage::new(&unique_name("berth-dwn").to_lowercase(), ROUTED);
    let (web, api) = (format!("{}-web", s.project), format!("{}-api", s.project));
    s.run(&["up", "-d", "--wait"]).success();
    assert_eq!(routes(&s), [api.clone(), web.clone()]);

    let one = s.run(&["down", "web"]);
    one.success().stdout_has("removed route web (web.test)");
    assert!(!one.stdout.contains("route api"), "{}", one.stdout);
    assert_eq!(routes(&s), [api], "only web's route goes");
    assert!(harness::service_ids(&s.project, "web", true).is_empty());
    assert_eq!(harness::service_ids(&s.project, "api", false).len(), 1);
    // No route for the host any more: 404, not a 502/503 page that never ends.
    assert_eq!(status_for(s.proxy_addr, "web.test"), 404);
    assert_eq!(status_for(s.proxy_addr, "api.test"), 200);

    let all = s.run(&["down"]);
    all.success().stdout_has("removed route api (api.test)");
    assert!(routes(&s).is_empty(), "{:?}", routes(&s));
    assert!(harness::container_names(&s.project).is_empty());
    assert_eq!(status_for(s.proxy_addr, "api.test"), 404);
}

/// Issue #14 item 4: with no proxy running, `down` of a routed project still works.
#[test]
fn down_of_a_routed_project_without_a_proxy_still_works() {
    let _serial = serial();
    ensure_test_images();
    let project = unique_name("berth-dwn").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let b = Berth::project(&[("compose.yaml", ROUTED)])
        .args(&["-p", &project])
        .env("BERTH_PROXY_SOCKET", socket.to_str().unwrap())
        .env(
            "BERTH_STATE_DIR",
            dir.path().join("state").to_str().unwrap(),
        );
    b.with(&["up", "-d", "--wait"]).success();
    let out = b.with(&["down"]);
    out.success().no_panic();
    assert!(!out.stdout.contains("removed route"), "{}", out.stdout);
    assert!(harness::container_names(&project).is_empty());
}
