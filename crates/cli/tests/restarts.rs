//! No command restarts a service whose configuration did not change: `run`, the `up` after it
//! and `rollback` all compute the same config hash (issue #14 item 3), on the real engine.

mod harness;
use berth_test_support::{docker, ensure_test_images, unique_name};
use harness::stage::Stage;

/// web depends on a healthy db; `VERSION` (from .env) changes only web.
const STACK: &str = r#"
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: ${VERSION:-v1}
    depends_on:
      db: { condition: service_healthy }
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 20
    deploy:
      update_config: { monitor: 1s }
  db:
    image: berth/testapp:latest
    environment:
      APP_VERSION: db
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 20
"#;

fn stage() -> Stage {
    ensure_test_images();
    Stage::new(&unique_name("berth-rst").to_lowercase(), STACK)
}

/// The container of `service` (exactly one) and when it last started.
fn running(project: &str, service: &str) -> (String, String) {
    let ids = harness::service_ids(project, service, false);
    assert_eq!(ids.len(), 1, "{service}: {ids:?}");
    let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", &ids[0]]);
    (ids[0].clone(), started)
}

/// Issue #14 item 3: `berth run --rm web migrate` used to recreate the healthy db (its hash was
/// computed without the image id, `up`'s with it), and the next `up` recreated it again.
#[test]
fn run_leaves_a_healthy_dependency_alone_and_the_next_up_touches_nothing() {
    let s = stage();
    s.run(&["up", "-d", "--wait"]).success();
    let db = running(&s.project, "db");
    let web = running(&s.project, "web");

    s.run(&["run", "--rm", "web", "migrate"])
        .success()
        .stdout_has("migrations applied");
    assert_eq!(running(&s.project, "db"), db, "`run` restarted db");

    let up = s.run(&["up", "-d"]);
    up.success().stdout_has("up to date");
    assert_eq!(
        running(&s.project, "db"),
        db,
        "`up` after `run` restarted db"
    );
    assert_eq!(
        running(&s.project, "web"),
        web,
        "`up` after `run` restarted web"
    );
    // The one-off container is gone (--rm) and was never taken for a replica.
    let names = harness::container_names(&s.project);
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Issue #14 item 3: a rollback of web used to stop and start the unchanged db as well (every
/// service of the release was rolled, with a hash read from the release's labels).
#[test]
fn rollback_of_web_leaves_an_unchanged_db_untouched() {
    let s = stage();
    s.deploy_env("VERSION=v1\n", &[]).success();
    let db = running(&s.project, "db");
    s.deploy_env("VERSION=v2\n", &[]).success();
    assert_eq!(
        running(&s.project, "db"),
        db,
        "a deploy of web restarted db"
    );
    let web_v2 = running(&s.project, "web");

    s.run(&["rollback"]).success();
    assert_eq!(running(&s.project, "db"), db, "`rollback` restarted db");
    let web = running(&s.project, "web");
    assert_ne!(web.0, web_v2.0, "web was not rolled back");
    let env = docker(&["inspect", "-f", "{{.Config.Env}}", &web.0]);
    assert!(env.contains("APP_VERSION=v1"), "{env}");
}
