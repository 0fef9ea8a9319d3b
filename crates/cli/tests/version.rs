//! `berth version` against the real engine, and without one (issue #2, item 4).

mod harness;
use harness::Berth;

#[test]
fn reports_client_and_engine_versions() {
    let out = Berth::project(&[])
        .args(&["version", "--format", "json"])
        .run();
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["client"]["version"], env!("CARGO_PKG_VERSION"));
    let engine = v["engine"]["version"].as_str().unwrap();
    assert!(!engine.is_empty(), "{v}");
    // The negotiated API version is the one both sides speak: never above the engine's.
    let parse = |s: &str| -> (u32, u32) {
        let (a, b) = s.split_once('.').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let api = parse(v["engine"]["api_version"].as_str().unwrap());
    let negotiated = parse(v["engine"]["negotiated_api_version"].as_str().unwrap());
    assert!(negotiated <= api, "{v}");
    Berth::project(&[])
        .args(&["version"])
        .run()
        .success()
        .stdout_has("engine: ");
}

#[test]
fn without_an_engine_one_clear_line_and_exit_1() {
    let out = Berth::project(&[])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(&["version"])
        .run();
    out.code(1)
        .stderr_has("DOCKER_HOST")
        .stderr_has("/nonexistent/docker.sock")
        .no_panic();
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stdout.is_empty());
}
