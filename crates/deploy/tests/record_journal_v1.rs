//! Records a journal with every step kind through the Store API as berth wrote it before the
//! journal was typed (the `json!` shapes copied from rollout.rs, release.rs and the CLI), so
//! that the typed reader can be tested against what is on disk today. Run with
//! `cargo test -p berth-deploy --test record_journal_v1 -- --ignored`.

use berth_deploy::{NewRelease, Store};
use berth_engine::ContainerSpec;
use berth_proxy::{RouteSpec, SetSpec};
use serde_json::json;
use std::collections::BTreeMap;

#[test]
#[ignore]
fn record() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("state.db")).unwrap();
    let rel = store
        .begin_release(
            "shop",
            &NewRelease {
                git_commit: None,
                config_hash: "h".into(),
                strategy: "rolling".into(),
                services: vec![],
                rollback_of: None,
            },
        )
        .unwrap();
    let mut spec = ContainerSpec {
        name: "shop-web-1".into(),
        image: "berth/testapp:latest".into(),
        env: vec!["MODE=v2".into()],
        ..Default::default()
    };
    spec.labels
        .insert("com.docker.compose.service".into(), "web".into());
    let containers = vec![spec];
    let specs: BTreeMap<&str, &Vec<ContainerSpec>> = [("web", &containers)].into_iter().collect();
    let changed = vec!["web".to_string(), "worker".to_string()];
    let before = RouteSpec {
        name: "shop-web".into(),
        hosts: vec!["shop.localhost".into()],
        path_prefix: "/".into(),
        health_path: Some("/health".into()),
        sets: vec![SetSpec {
            id: "r1".into(),
            weight: 100,
            targets: vec!["172.18.0.5:8080".into()],
        }],
        maintenance: None,
    };
    let before_json = serde_json::to_value(&before).unwrap();
    let i: usize = 1;
    let steps = vec![
        json!({"step": "begin", "services": changed, "specs": specs}),
        json!({"step": "route", "service": "web", "before": before_json}),
        json!({"step": "route", "service": "api", "before": serde_json::Value::Null}),
        json!({"step": "aside", "service": "web", "container": "0123abcd", "name": "shop-web-1"}),
        json!({"step": "create", "service": "web", "name": "shop-web-1"}),
        json!({"step": "switched", "service": "web", "batch": i}),
        json!({"step": "route-switch", "service": "web"}),
        json!({"step": "canary", "service": "web"}),
        json!({"step": "promote"}),
        json!({"step": "abort"}),
        json!({"step": "standby", "services": ["web"], "until": 1764950000000u64}),
        json!({"step": "committed"}),
        json!({"step": "reverted"}),
    ];
    for s in &steps {
        store.journal_append("shop", rel.number, s).unwrap();
    }
    drop(store);
    // The text exactly as the store wrote it.
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT step FROM journal ORDER BY seq")
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut text = String::from("[\n");
    for (n, r) in rows.iter().enumerate() {
        text.push_str("  ");
        text.push_str(r);
        text.push_str(if n + 1 < rows.len() { ",\n" } else { "\n" });
    }
    text.push_str("]\n");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal-v1.json");
    std::fs::write(out, text).unwrap();
}
