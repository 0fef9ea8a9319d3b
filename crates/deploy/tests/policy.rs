//! The pure `policy()`: how one service is rolled out, read from a real compose file and its
//! first replica's spec, without an engine.

mod common;

use berth_compose::berth_ext::Strategy;
use berth_deploy::desired_state;
use berth_deploy::policy::{
    FailureAction, Kind, Order, Policy, Route, DEFAULT_MAX_ERROR_RATE, DEFAULT_MONITOR,
};
use common::{context, load_text};
use std::time::Duration;

/// The policy of `service` in `compose` (project `shop` unless the file names another).
fn policy_of(compose: &str, service: &str) -> Result<Policy, String> {
    let l = load_text(compose, &[]);
    let desired = desired_state(&l.project, &context(&l)).unwrap();
    let d = desired
        .services
        .iter()
        .find(|s| s.name == service)
        .unwrap_or_else(|| panic!("no service {service}"));
    berth_deploy::policy(
        &l.project,
        service,
        &l.project.services[service],
        &d.containers[0],
        d.health_deadline,
    )
}

fn ok(compose: &str, service: &str) -> Policy {
    policy_of(compose, service).unwrap_or_else(|e| panic!("{e}"))
}

const ROUTED: &str = r#"
services:
  web:
    image: berth/testapp:latest
    x-berth:
      proxy: { host: shop.test, port: 8080 }
"#;

#[test]
fn a_routed_service_gets_the_safe_defaults() {
    let p = ok(ROUTED, "web");
    assert_eq!(
        p.kind,
        Kind::Routed(Route {
            name: "shop-web".into(),
            hosts: vec!["shop.test".into()],
            path_prefix: "/".into(),
            health_path: "/up".into(),
            port: 8080,
        })
    );
    assert_eq!(p.strategy, Strategy::Rolling);
    assert_eq!(p.order, Order::StartFirst);
    assert_eq!(p.parallelism, 1);
    assert_eq!(p.delay, Duration::ZERO);
    assert_eq!(p.monitor, DEFAULT_MONITOR);
    assert_eq!(p.max_error_rate, DEFAULT_MAX_ERROR_RATE);
    assert_eq!(p.failure_action, FailureAction::Rollback);
    assert_eq!(p.drain_timeout, berth_proxy_api::DEFAULT_DRAIN_TIMEOUT);
    assert_eq!(p.drain_timeout, Duration::from_secs(30));
    assert_eq!(p.stop_grace, None);
    assert_eq!(p.canary_steps, vec![10, 50]);
    assert!(p.canary_pauses.is_empty());
    assert_eq!(p.canary_interval, Duration::from_secs(30));
    assert_eq!(p.release_command, None);
    assert!(p.notes.is_empty(), "{:?}", p.notes);
}

#[test]
fn the_route_takes_prefix_and_health_path_from_the_file() {
    let p = ok(
        r#"
name: blog
services:
  api:
    image: berth/testapp:latest
    x-berth:
      proxy: { host: blog.test, port: 3000, path_prefix: /api, health_path: /healthz }
"#,
        "api",
    );
    let Kind::Routed(route) = p.kind else {
        panic!("{:?}", p.kind)
    };
    assert_eq!(route.name, "blog-api");
    assert_eq!(route.path_prefix, "/api");
    assert_eq!(route.health_path, "/healthz");
    assert_eq!(route.port, 3000);
}

#[test]
fn a_worker_is_start_first_only_with_a_healthcheck() {
    let compose = r#"
services:
  plain:
    image: berth/testapp:latest
  checked:
    image: berth/testapp:latest
    healthcheck: { test: ["CMD", "/testapp", "health"] }
  disabled:
    image: berth/testapp:latest
    healthcheck: { disable: true }
"#;
    let plain = ok(compose, "plain");
    assert_eq!(
        plain.kind,
        Kind::Worker {
            has_healthcheck: false
        }
    );
    assert_eq!(plain.order, Order::StopFirst);
    assert!(plain.notes.is_empty());

    let checked = ok(compose, "checked");
    assert_eq!(
        checked.kind,
        Kind::Worker {
            has_healthcheck: true
        }
    );
    assert_eq!(checked.order, Order::StartFirst);

    // `disable: true` is the engine's `NONE` test: no healthcheck to trust.
    let disabled = ok(compose, "disabled");
    assert_eq!(
        disabled.kind,
        Kind::Worker {
            has_healthcheck: false
        }
    );
    assert_eq!(disabled.order, Order::StopFirst);
}

#[test]
fn a_worker_asked_for_start_first_gets_it() {
    let p = ok(
        r#"
services:
  worker:
    image: berth/testapp:latest
    deploy:
      update_config: { order: start-first }
"#,
        "worker",
    );
    assert_eq!(p.order, Order::StartFirst);
    assert!(p.notes.is_empty());
}

#[test]
fn a_writable_volume_makes_a_service_stateful_and_stop_first() {
    let compose = r#"
services:
  db:
    image: berth/postgres:15
    volumes: [pgdata:/var/lib/postgresql/data]
  asked:
    image: berth/postgres:15
    volumes: [pgdata:/data]
    deploy:
      update_config: { order: start-first }
  readonly:
    image: berth/testapp:latest
    volumes: [pgdata:/data:ro]
volumes:
  pgdata: {}
"#;
    let db = ok(compose, "db");
    assert_eq!(
        db.kind,
        Kind::Stateful {
            volume: "shop_pgdata".into()
        }
    );
    assert_eq!(db.order, Order::StopFirst);
    assert!(db.notes.is_empty(), "{:?}", db.notes);

    let asked = ok(compose, "asked");
    assert_eq!(asked.order, Order::StopFirst);
    assert_eq!(
        asked.notes,
        vec!["service `asked` mounts volume `shop_pgdata` read-write, so it is updated stop-first although update_config asks for start-first: two containers never share a writable volume".to_string()]
    );

    // A read-only mount cannot be written by two containers at once.
    let readonly = ok(compose, "readonly");
    assert!(
        matches!(readonly.kind, Kind::Worker { .. }),
        "{:?}",
        readonly.kind
    );
}

#[test]
fn a_fixed_host_port_means_stop_first_unless_the_file_says_otherwise() {
    let compose = r#"
services:
  web:
    image: berth/testapp:latest
    ports: ["8080:8080"]
    healthcheck: { test: ["CMD", "/testapp", "health"] }
  asked:
    image: berth/testapp:latest
    ports: ["8081:8080"]
    deploy:
      update_config: { order: start-first }
  ephemeral:
    image: berth/testapp:latest
    ports: ["8080"]
    healthcheck: { test: ["CMD", "/testapp", "health"] }
"#;
    let web = ok(compose, "web");
    assert_eq!(web.order, Order::StopFirst);
    assert_eq!(
        web.notes,
        vec!["service `web` publishes a fixed host port, which old and new replicas cannot share; it is updated stop-first".to_string()]
    );
    // What the file asks for wins; the engine then refuses the second bind, not the policy.
    let asked = ok(compose, "asked");
    assert_eq!(asked.order, Order::StartFirst);
    assert!(asked.notes.is_empty());
    // A port the engine picks is not shared.
    let ephemeral = ok(compose, "ephemeral");
    assert_eq!(ephemeral.order, Order::StartFirst);
    assert!(ephemeral.notes.is_empty());
}

#[test]
fn update_config_is_read_as_written() {
    let p = ok(
        r#"
services:
  web:
    image: berth/testapp:latest
    stop_grace_period: 20s
    deploy:
      update_config:
        order: stop-first
        failure_action: pause
        parallelism: 3
        delay: 2s
        monitor: 1m
    x-berth:
      proxy: { host: shop.test, port: 8080 }
      drain_timeout: 90s
"#,
        "web",
    );
    assert_eq!(p.order, Order::StopFirst);
    assert_eq!(p.failure_action, FailureAction::Pause);
    assert_eq!(p.parallelism, 3);
    assert_eq!(p.delay, Duration::from_secs(2));
    assert_eq!(p.monitor, Duration::from_secs(60));
    assert_eq!(p.drain_timeout, Duration::from_secs(90));
    assert_eq!(p.stop_grace, Some(Duration::from_secs(20)));

    let cont = ok(
        r#"
services:
  web:
    image: berth/testapp:latest
    deploy:
      update_config: { failure_action: continue, parallelism: 0 }
"#,
        "web",
    );
    assert_eq!(cont.failure_action, FailureAction::Continue);
    // Zero replicas at a time would never finish: at least one.
    assert_eq!(cont.parallelism, 1);
}

#[test]
fn rollback_config_does_not_change_the_update_policy() {
    let p = ok(
        r#"
services:
  web:
    image: berth/testapp:latest
    healthcheck: { test: ["CMD", "/testapp", "health"] }
    deploy:
      rollback_config: { order: stop-first, failure_action: pause, parallelism: 4 }
"#,
        "web",
    );
    assert_eq!(p.order, Order::StartFirst);
    assert_eq!(p.failure_action, FailureAction::Rollback);
    assert_eq!(p.parallelism, 1);
}

#[test]
fn the_health_deadline_is_the_callers() {
    let l = load_text(ROUTED, &[]);
    let desired = desired_state(&l.project, &context(&l)).unwrap();
    let d = &desired.services[0];
    let p = berth_deploy::policy(
        &l.project,
        "web",
        &l.project.services["web"],
        &d.containers[0],
        Duration::from_secs(7),
    )
    .unwrap();
    assert_eq!(p.health_deadline, Duration::from_secs(7));
}

#[test]
fn canary_steps_pauses_and_rate_come_from_x_berth() {
    let p = ok(
        r#"
services:
  web:
    image: berth/testapp:latest
    x-berth:
      proxy: { host: shop.test, port: 8080 }
      strategy: canary
      canary:
        steps: [5, { percent: 25, pause: true }, 60]
        interval: 10s
        max_error_rate: 0.05
"#,
        "web",
    );
    assert_eq!(p.strategy, Strategy::Canary);
    assert_eq!(p.canary_steps, vec![5, 25, 60]);
    assert_eq!(p.canary_pauses, vec![25]);
    assert_eq!(p.canary_interval, Duration::from_secs(10));
    assert_eq!(p.max_error_rate, 0.05);
    assert!(p.notes.is_empty());
}

#[test]
fn blue_green_is_kept_for_a_routed_service() {
    let compose = ROUTED.replace(
        "proxy: { host: shop.test, port: 8080 }",
        "proxy: { host: shop.test, port: 8080 }\n      strategy: blue-green",
    );
    let p = ok(&compose, "web");
    assert_eq!(p.strategy, Strategy::BlueGreen);
    assert!(p.notes.is_empty());
}

#[test]
fn a_traffic_strategy_without_the_proxy_is_rolled_with_a_note() {
    for (written, strategy) in [
        ("canary", Strategy::Canary),
        ("blue-green", Strategy::BlueGreen),
    ] {
        let compose = format!(
            "services:\n  worker:\n    image: berth/testapp:latest\n    x-berth:\n      strategy: {written}\n"
        );
        let p = ok(&compose, "worker");
        assert_eq!(p.strategy, Strategy::Rolling, "{strategy:?}");
        assert_eq!(
            p.notes,
            vec![format!("service `worker` is not behind the proxy, so its `{written}` strategy cannot split traffic; it is rolled instead")]
        );
    }
}

#[test]
fn the_release_command_is_split_into_words() {
    let p = ok(
        r#"
services:
  web:
    image: berth/testapp:latest
    x-berth:
      release_command: ./manage.py migrate --database 'main db'
"#,
        "web",
    );
    assert_eq!(
        p.release_command,
        Some(vec![
            "./manage.py".to_string(),
            "migrate".into(),
            "--database".into(),
            "main db".into()
        ])
    );
}

#[test]
fn a_release_command_that_cannot_be_split_is_refused() {
    let err = policy_of(
        r#"
services:
  web:
    image: berth/testapp:latest
    x-berth:
      release_command: ./migrate 'unclosed
"#,
        "web",
    )
    .unwrap_err();
    assert!(
        err.starts_with("service `web`: x-berth.release_command cannot be split into words: "),
        "{err}"
    );
}

#[test]
fn a_routed_service_may_not_write_a_volume() {
    let err = policy_of(
        r#"
services:
  web:
    image: berth/testapp:latest
    volumes: [uploads:/srv/uploads]
    x-berth:
      proxy: { host: shop.test, port: 8080 }
volumes:
  uploads: {}
"#,
        "web",
    )
    .unwrap_err();
    assert_eq!(
        err,
        "service `web` is routed through the proxy but mounts volume `shop_uploads` read-write; two replicas would write to one volume during a deploy. Mount it read-only, or move the state to a database service"
    );
    // Read-only is fine.
    let p = ok(
        r#"
services:
  web:
    image: berth/testapp:latest
    volumes: [uploads:/srv/uploads:ro]
    x-berth:
      proxy: { host: shop.test, port: 8080 }
volumes:
  uploads: {}
"#,
        "web",
    );
    assert!(matches!(p.kind, Kind::Routed(_)));
}

#[test]
fn strategy_names_round_trip() {
    use berth_deploy::policy::{parse_strategy, strategy_name};
    for s in [Strategy::Rolling, Strategy::BlueGreen, Strategy::Canary] {
        assert_eq!(parse_strategy(strategy_name(s)), Some(s));
    }
    assert_eq!(strategy_name(Strategy::BlueGreen), "blue-green");
    assert_eq!(parse_strategy("bluegreen"), None);
}
