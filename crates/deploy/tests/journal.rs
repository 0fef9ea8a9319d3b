//! The typed journal reads what berth wrote before its steps were typed: the fixture holds a
//! journal with every step kind, recorded through the store as berth wrote it then.

use berth_deploy::release::read_journal;
use berth_deploy::route_change::RouteBefore;
use berth_deploy::{JournalStep, NewRelease, Store};
use std::path::Path;

const FIXTURE: &str = include_str!("fixtures/journal-v1.json");

fn fixture_lines() -> Vec<&'static str> {
    FIXTURE
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| l.starts_with('{'))
        .collect()
}

/// A store whose running release `shop` 1 holds the fixture's steps, written as raw text the
/// way the previous berth wrote them.
fn store_with_fixture(dir: &Path) -> Store {
    let path = dir.join("state.db");
    let mut store = Store::open(&path).unwrap();
    store
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
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (i, line) in fixture_lines().iter().enumerate() {
        conn.execute(
            "INSERT INTO journal (project, number, seq, at, step) VALUES ('shop', 1, ?1, ?2, ?3)",
            rusqlite::params![i as i64 + 1, 1000 + i as i64, line],
        )
        .unwrap();
    }
    store
}

#[test]
fn a_journal_of_the_previous_format_is_read_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let entries = store.journal("shop", 1).unwrap();
    let steps: Vec<&JournalStep> = entries.iter().map(|e| &e.step).collect();
    assert_eq!(steps.len(), 13);
    assert_eq!(entries[0].seq, 1);
    assert_eq!(entries[0].at, 1000);

    let JournalStep::Begin { services, specs } = steps[0] else {
        panic!("begin: {:?}", steps[0]);
    };
    assert_eq!(services, &["web", "worker"]);
    assert_eq!(specs.len(), 1);
    let web = &specs["web"];
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].name, "shop-web-1");
    assert_eq!(web[0].image, "berth/testapp:latest");
    assert_eq!(web[0].env, ["MODE=v2"]);
    assert_eq!(web[0].labels["com.docker.compose.service"], "web");

    let JournalStep::Route { service, before } = steps[1] else {
        panic!("route: {:?}", steps[1]);
    };
    assert_eq!(service, "web");
    let RouteBefore::Present(spec) = before else {
        panic!("route before: {before:?}");
    };
    assert_eq!(spec.name, "shop-web");
    assert_eq!(spec.hosts, ["shop.localhost"]);
    assert_eq!(spec.path_prefix, "/");
    assert_eq!(spec.health_path.as_deref(), Some("/health"));
    assert_eq!(spec.sets.len(), 1);
    assert_eq!(spec.sets[0].id, "r1");
    assert_eq!(spec.sets[0].weight, 100);
    assert_eq!(spec.sets[0].targets, ["172.18.0.5:8080"]);
    assert_eq!(spec.maintenance, None);

    assert_eq!(
        steps[2],
        &JournalStep::Route {
            service: "api".into(),
            before: RouteBefore::Absent
        }
    );
    assert_eq!(
        steps[3],
        &JournalStep::Aside {
            service: "web".into(),
            container: "0123abcd".into(),
            name: "shop-web-1".into()
        }
    );
    assert_eq!(
        steps[4],
        &JournalStep::Create {
            service: "web".into(),
            name: "shop-web-1".into()
        }
    );
    assert_eq!(
        steps[5],
        &JournalStep::Switched {
            service: "web".into(),
            batch: 1
        }
    );
    assert_eq!(
        steps[6],
        &JournalStep::RouteSwitch {
            service: "web".into()
        }
    );
    assert_eq!(
        steps[7],
        &JournalStep::Canary {
            service: "web".into()
        }
    );
    assert_eq!(steps[8], &JournalStep::Promote);
    assert_eq!(steps[9], &JournalStep::Abort);
    assert_eq!(
        steps[10],
        &JournalStep::Standby {
            services: vec!["web".into()],
            until: 1_764_950_000_000
        }
    );
    assert_eq!(steps[11], &JournalStep::Committed);
    assert_eq!(steps[12], &JournalStep::Reverted);

    let j = read_journal(&entries);
    assert_eq!(j.services, ["web", "worker"]);
    assert!(j.committed);
    assert!(j.reverted);
    assert_eq!(j.routes["api"], RouteBefore::Absent);
    assert!(matches!(j.routes["web"], RouteBefore::Present(_)));
}

#[test]
fn typed_steps_are_written_as_the_previous_format_wrote_them() {
    for line in fixture_lines() {
        let step: JournalStep = serde_json::from_str(line).unwrap();
        assert!(!matches!(step, JournalStep::Unknown(_)), "{line}");
        assert_eq!(serde_json::to_string(&step).unwrap(), line);
    }
}

#[test]
fn a_step_of_a_newer_berth_is_kept_as_it_was() {
    let newer = serde_json::json!({"step": "snapshot", "volume": "db", "size": 3});
    let step: JournalStep = serde_json::from_value(newer.clone()).unwrap();
    assert_eq!(step, JournalStep::Unknown(newer.clone()));
    assert_eq!(serde_json::to_value(&step).unwrap(), newer);
    // A known step missing a field it needs is kept too, rather than failing the read.
    let broken = serde_json::json!({"step": "switched", "service": "web"});
    let step: JournalStep = serde_json::from_value(broken.clone()).unwrap();
    assert_eq!(step, JournalStep::Unknown(broken));
}

#[test]
fn steps_round_trip_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_fixture(dir.path());
    store
        .journal_append(
            "shop",
            1,
            JournalStep::Canary {
                service: "api".into(),
            },
        )
        .unwrap();
    let entries = store.journal("shop", 1).unwrap();
    assert_eq!(
        entries.last().unwrap().step,
        JournalStep::Canary {
            service: "api".into()
        }
    );
}
