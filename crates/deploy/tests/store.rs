//! The state store on real SQLite files in temporary directories: numbering, outcomes, the
//! journal across reopen, image retention, and refusing files it cannot trust.

use berth_deploy::{NewRelease, Outcome, ReleaseStatus, ServiceImage, Store, StoreError};
use serde_json::json;
use std::path::PathBuf;

fn db(dir: &tempfile::TempDir) -> PathBuf {
    // A nested path, so that `open` has to create the directories.
    dir.path().join("var/lib/berth/state.db")
}

fn image(service: &str, id: &str) -> ServiceImage {
    ServiceImage {
        service: service.to_string(),
        image_ref: format!("shop/{service}:latest"),
        image_id: id.to_string(),
        config_hash: format!("cfg-{service}-{id}"),
    }
}

fn new_release(services: Vec<ServiceImage>) -> NewRelease {
    NewRelease {
        git_commit: Some("0123abc".to_string()),
        config_hash: "project-hash".to_string(),
        strategy: "rolling".to_string(),
        services,
        rollback_of: None,
    }
}

/// Begins and finishes one release of `project` with `web` at image `id`.
fn deploy(store: &mut Store, project: &str, id: &str, outcome: Outcome) -> u64 {
    let r = store
        .begin_release(project, &new_release(vec![image("web", id)]))
        .unwrap();
    store.finish_release(project, r.number, outcome).unwrap();
    r.number
}

#[test]
fn open_creates_private_directories_and_sets_wal() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    let mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let journal_mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, berth_deploy::store::SCHEMA_VERSION);
}

#[test]
fn numbers_are_per_project_and_start_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let a1 = deploy(&mut store, "shop", "sha256:a1", Outcome::Succeeded);
    let b1 = deploy(&mut store, "blog", "sha256:b1", Outcome::Succeeded);
    let a2 = deploy(&mut store, "shop", "sha256:a2", Outcome::Succeeded);
    let b2 = deploy(&mut store, "blog", "sha256:b2", Outcome::Succeeded);
    let a3 = deploy(&mut store, "shop", "sha256:a3", Outcome::Failed("x".into()));
    assert_eq!((a1, a2, a3), (1, 2, 3));
    assert_eq!((b1, b2), (1, 2));

    let shop: Vec<u64> = store
        .releases("shop")
        .unwrap()
        .iter()
        .map(|r| r.number)
        .collect();
    assert_eq!(shop, [3, 2, 1], "newest first");
    let blog = store.releases("blog").unwrap();
    assert_eq!(blog.len(), 2);
    assert_eq!(blog[0].services, [image("web", "sha256:b2")]);
    assert!(store.releases("nothing").unwrap().is_empty());
    assert_eq!(store.release("shop", 9).unwrap(), None);
}

#[test]
fn begin_release_records_everything_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let mut new = new_release(vec![image("worker", "sha256:w"), image("web", "sha256:a")]);
    new.rollback_of = Some(7);
    new.strategy = "blue-green".to_string();
    let r = store.begin_release("shop", &new).unwrap();
    assert_eq!(r.project, "shop");
    assert_eq!(r.number, 1);
    assert_eq!(r.status, ReleaseStatus::Running);
    assert_eq!(r.git_commit.as_deref(), Some("0123abc"));
    assert_eq!(r.config_hash, "project-hash");
    assert_eq!(r.strategy, "blue-green");
    assert_eq!(r.rollback_of, Some(7));
    assert_eq!(
        (r.finished_at, r.duration_ms, &r.reason),
        (None, None, &None)
    );
    assert!(r.created_at > 1_600_000_000_000, "unix milliseconds");
    // Services come back sorted by name.
    assert_eq!(
        r.services,
        [image("web", "sha256:a"), image("worker", "sha256:w")]
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["status"], "running");
    assert_eq!(json["services"][0]["image_id"], "sha256:a");
}

#[test]
fn a_service_listed_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let new = new_release(vec![image("web", "sha256:a"), image("web", "sha256:b")]);
    let err = store.begin_release("shop", &new).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateService { ref service, .. } if service == "web"));
    assert!(store.releases("shop").unwrap().is_empty());
}

#[test]
fn finish_records_each_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let outcomes = [
        (Outcome::Succeeded, ReleaseStatus::Succeeded, None),
        (
            Outcome::Failed("release_command exited 1".into()),
            ReleaseStatus::Failed,
            Some("release_command exited 1"),
        ),
        (
            Outcome::RolledBack("web never became healthy".into()),
            ReleaseStatus::RolledBack,
            Some("web never became healthy"),
        ),
        (
            Outcome::Interrupted("berth was killed".into()),
            ReleaseStatus::Interrupted,
            Some("berth was killed"),
        ),
    ];
    for (outcome, status, reason) in outcomes {
        let n = deploy(&mut store, "shop", "sha256:a", outcome);
        let r = store.release("shop", n).unwrap().unwrap();
        assert_eq!(r.status, status);
        assert_eq!(r.reason.as_deref(), reason);
        let finished = r.finished_at.unwrap();
        assert!(finished >= r.created_at);
        assert_eq!(r.duration_ms, Some(finished - r.created_at));
        assert_eq!(
            serde_json::to_value(&r).unwrap()["status"],
            json!(status.as_str())
        );
    }
    assert_eq!(store.running("shop").unwrap(), None);
}

#[test]
fn a_release_is_finished_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let n = deploy(&mut store, "shop", "sha256:a", Outcome::Succeeded);
    let err = store
        .finish_release("shop", n, Outcome::Failed("late".into()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "release 1 of project `shop` has already finished (succeeded); a finished release cannot change"
    );
    assert_eq!(
        store.release("shop", n).unwrap().unwrap().status,
        ReleaseStatus::Succeeded,
        "the first outcome stands"
    );
    let err = store
        .finish_release("shop", 5, Outcome::Succeeded)
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownRelease { number: 5, .. }));
    // A finished release takes no more journal steps either.
    let err = store.journal_append("shop", n, &json!({"late": true}));
    assert!(matches!(err, Err(StoreError::NotRunning { .. })));
}

#[test]
fn one_running_release_per_project() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let first = store
        .begin_release("shop", &new_release(vec![image("web", "sha256:a")]))
        .unwrap();
    let err = store
        .begin_release("shop", &new_release(vec![image("web", "sha256:b")]))
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::AlreadyRunning {
            project: "shop".into(),
            number: 1
        }
    );
    // Another project is not affected.
    store
        .begin_release("blog", &new_release(vec![image("web", "sha256:c")]))
        .unwrap();
    store
        .finish_release("shop", first.number, Outcome::Succeeded)
        .unwrap();
    let second = store
        .begin_release("shop", &new_release(vec![image("web", "sha256:b")]))
        .unwrap();
    assert_eq!(second.number, 2);
}

#[test]
fn an_unfinished_release_is_running_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let mut store = Store::open(&path).unwrap();
        deploy(&mut store, "shop", "sha256:a", Outcome::Succeeded);
        let r = store
            .begin_release("shop", &new_release(vec![image("web", "sha256:b")]))
            .unwrap();
        store
            .journal_append("shop", r.number, &json!({"start": "web-2"}))
            .unwrap();
        // Dropped without finishing: what a killed deploy leaves.
    }
    let mut store = Store::open(&path).unwrap();
    let running = store.running("shop").unwrap().expect("interrupted deploy");
    assert_eq!(running.number, 2);
    assert_eq!(running.status, ReleaseStatus::Running);
    assert_eq!(running.services, [image("web", "sha256:b")]);
    let live = store.last_succeeded("shop").unwrap().unwrap();
    assert_eq!(live.number, 1);
    assert_eq!(live.services, [image("web", "sha256:a")]);
    assert_eq!(store.journal("shop", 2).unwrap()[0].step["start"], "web-2");

    store
        .finish_release(
            "shop",
            2,
            Outcome::Interrupted("reverted to release 1".into()),
        )
        .unwrap();
    assert_eq!(store.running("shop").unwrap(), None);
    assert_eq!(store.last_succeeded("shop").unwrap().unwrap().number, 1);
}

#[test]
fn journal_keeps_order_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let steps: Vec<_> = (0..20)
        .map(|i| json!({"step": "start", "replica": i, "nested": {"z": 1, "a": [i]}}))
        .collect();
    {
        let mut store = Store::open(&path).unwrap();
        let r = store.begin_release("shop", &new_release(vec![])).unwrap();
        let other = store.begin_release("blog", &new_release(vec![])).unwrap();
        for (i, step) in steps.iter().enumerate() {
            assert_eq!(
                store.journal_append("shop", r.number, step).unwrap(),
                i as u64 + 1
            );
            // Interleaved appends to another project's release keep their own sequence.
            assert_eq!(
                store
                    .journal_append("blog", other.number, &json!(i))
                    .unwrap(),
                i as u64 + 1
            );
        }
        let err = store.journal_append("shop", 9, &json!({})).unwrap_err();
        assert!(matches!(err, StoreError::UnknownRelease { number: 9, .. }));
    }
    let store = Store::open(&path).unwrap();
    let journal = store.journal("shop", 1).unwrap();
    assert_eq!(journal.len(), steps.len());
    for (i, (entry, step)) in journal.iter().zip(&steps).enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(&entry.step, step);
    }
    assert!(journal.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(store.journal("shop", 2).unwrap().is_empty());
}

#[test]
fn retained_images_are_those_of_the_last_succeeded_releases() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(db(&dir)).unwrap();
    let two = |store: &mut Store, web: &str, worker: &str, outcome| {
        let r = store
            .begin_release(
                "shop",
                &new_release(vec![image("web", web), image("worker", worker)]),
            )
            .unwrap();
        store.finish_release("shop", r.number, outcome).unwrap();
    };
    two(&mut store, "web1", "worker1", Outcome::Succeeded);
    two(&mut store, "web2", "worker1", Outcome::Succeeded);
    two(
        &mut store,
        "web3",
        "worker3",
        Outcome::RolledBack("bad".into()),
    );
    two(&mut store, "web4", "worker1", Outcome::Succeeded);
    two(&mut store, "web5", "worker5", Outcome::Failed("bad".into()));
    // Another project's images are not this project's business.
    deploy(&mut store, "blog", "blogweb", Outcome::Succeeded);

    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(s, i)| (s.to_string(), i.to_string()))
            .collect()
    };
    assert_eq!(
        store.retained_images("shop", 2).unwrap(),
        pairs(&[("web", "web4"), ("worker", "worker1"), ("web", "web2")]),
        "releases 4 and 2; worker1 once"
    );
    assert_eq!(
        store.retained_images("shop", 5).unwrap(),
        pairs(&[
            ("web", "web4"),
            ("worker", "worker1"),
            ("web", "web2"),
            ("web", "web1"),
        ])
    );
    assert!(store.retained_images("shop", 0).unwrap().is_empty());
    assert!(store.retained_images("none", 5).unwrap().is_empty());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err,
        StoreError::NewerSchema {
            path: path.clone(),
            found: 99,
            supported: berth_deploy::store::SCHEMA_VERSION
        }
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("upgrade berth"), "{message}");
}

#[test]
fn a_corrupt_file_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "this is not an SQLite database, ".repeat(200)).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "state database {} is not readable (",
            path.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("; move it aside to start a new history"),
        "{message}"
    );
}

#[test]
fn two_stores_on_one_file_write_at_once() {
    // Two berth processes deploying different projects share the file; each write waits for
    // the other's instead of failing.
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    let threads: Vec<_> = ["shop", "blog"]
        .into_iter()
        .map(|project| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                for i in 0..10 {
                    let r = store
                        .begin_release(project, &new_release(vec![image("web", "sha256:a")]))
                        .unwrap();
                    store
                        .journal_append(project, r.number, &json!({"i": i}))
                        .unwrap();
                    store
                        .finish_release(project, r.number, Outcome::Succeeded)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    for project in ["shop", "blog"] {
        let numbers: Vec<u64> = store
            .releases(project)
            .unwrap()
            .iter()
            .map(|r| r.number)
            .collect();
        assert_eq!(numbers, (1..=10).rev().collect::<Vec<_>>());
    }
}

/// Issue #16 item 5: the release record names the backup taken before its release command;
/// a finished release cannot be given one afterwards, and a store written before the column
/// existed (schema version 1) is migrated and reads as "no backup".
#[test]
fn a_release_records_its_pre_release_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = Store::open(&path).unwrap();
    let r = store
        .begin_release("shop", &new_release(vec![image("web", "a")]))
        .unwrap();
    let ids = vec!["1f".repeat(32), "2e".repeat(32)];
    store.record_backup("shop", r.number, &ids).unwrap();
    store
        .finish_release("shop", r.number, Outcome::Succeeded)
        .unwrap();
    assert_eq!(
        store.release("shop", r.number).unwrap().unwrap().backup,
        ids
    );
    assert!(store.record_backup("shop", r.number, &ids).is_err());
    let second = deploy(&mut store, "shop", "b", Outcome::Succeeded);
    assert!(store
        .release("shop", second)
        .unwrap()
        .unwrap()
        .backup
        .is_empty());
    drop(store);

    // Back to version 1: the column goes, as a berth from before #16 left the file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE releases DROP COLUMN backup; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let old = store.release("shop", r.number).unwrap().unwrap();
    assert!(old.backup.is_empty());
    assert_eq!(old.services.len(), 1);
}
