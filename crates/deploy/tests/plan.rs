//! Planning `up` and `down` against made-up engine states.

mod common;

use berth_deploy::desired::Condition;
use berth_deploy::labels;
use berth_deploy::{
    plan, plan_down, Actual, DownOptions, PlanError, PlanOptions, ResourceSummary, Step,
};
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn up(d: &berth_deploy::Desired, a: &Actual) -> Vec<String> {
    lines(&plan(d, a, &PlanOptions::default()).unwrap())
}

#[test]
fn empty_engine_creates_everything_in_dependency_order() {
    let d = desired(SHOP);
    let p = plan(&d, &Actual::default(), &PlanOptions::default()).unwrap();
    insta::assert_snapshot!(p.to_string(), @r"
    create network shop_default
    create volume shop_pgdata
    create container shop-db-1
    start container shop-db-1
    wait for db to be healthy (up to 8m5s)
    create container shop-web-1
    start container shop-web-1
    create container shop-web-2
    start container shop-web-2
    create container shop-worker-1
    start container shop-worker-1
    ");
    // The wait carries the condition and the dependency's deadline.
    assert!(p.steps.contains(&Step::WaitHealthy {
        service: "db".into(),
        condition: Condition::Healthy,
        deadline: Some(Duration::from_secs(485)),
    }));
    let Step::Create { spec, .. } = &p.steps[2] else {
        panic!("{:?}", p.steps[2]);
    };
    assert_eq!(spec.name, "shop-db-1");
    assert_eq!(
        spec.labels[labels::CONFIG_HASH],
        d.service("db").unwrap().config_hash
    );
}

#[test]
fn converged_engine_only_keeps() {
    let d = desired(SHOP);
    let p = plan(&d, &converged(&d), &PlanOptions::default()).unwrap();
    assert!(p.is_noop());
    assert_eq!(
        lines(&p),
        [
            "keep container shop-db-1 (up to date)",
            "keep container shop-web-1 (up to date)",
            "keep container shop-web-2 (up to date)",
            "keep container shop-worker-1 (up to date)",
        ]
    );
}

#[test]
fn changed_service_is_recreated_and_restart_dependents_restart() {
    let before = desired(SHOP);
    let actual = converged(&before);

    // web changed: only web is recreated, after waiting for its dependency.
    let d = desired(&SHOP.replace(
        "APP_VERSION: v1\n      DATABASE_URL",
        "APP_VERSION: v2\n      DATABASE_URL",
    ));
    assert_eq!(
        up(&d, &actual),
        [
            "keep container shop-db-1 (up to date)",
            "wait for db to be healthy (up to 8m5s)",
            "recreate container shop-web-1 (config changed)",
            "recreate container shop-web-2 (config changed)",
            "keep container shop-worker-1 (up to date)",
        ]
    );

    // db changed: db is recreated; worker (restart: true) restarts; web (no restart) is kept.
    let d = desired(&SHOP.replace("POSTGRES_DB: shop", "POSTGRES_DB: shop2"));
    assert_eq!(
        up(&d, &actual),
        [
            "recreate container shop-db-1 (config changed)",
            "keep container shop-web-1 (up to date)",
            "keep container shop-web-2 (up to date)",
            "wait for db to be healthy (up to 8m5s)",
            "restart container shop-worker-1 (dependency db changed)",
        ]
    );
}

#[test]
fn rebuilt_image_recreates() {
    let l = load_text(SHOP, &[]);
    let mut ctx = context(&l);
    ctx.image_ids.insert("worker".into(), "sha256:old".into());
    let old = berth_deploy::desired_state(&l.project, &ctx).unwrap();
    ctx.image_ids.insert("worker".into(), "sha256:new".into());
    let new = berth_deploy::desired_state(&l.project, &ctx).unwrap();
    let got = up(&new, &converged(&old));
    assert!(got.contains(&"recreate container shop-worker-1 (config changed)".to_string()));
    assert_eq!(got.iter().filter(|l| l.starts_with("recreate")).count(), 1);
}

#[test]
fn scale_up_and_down() {
    let d = desired(SHOP);
    let actual = converged(&d);
    let more = desired(&SHOP.replace("replicas: 2", "replicas: 3"));
    let got = up(&more, &actual);
    assert_eq!(
        got[1..6],
        [
            "wait for db to be healthy (up to 8m5s)",
            "keep container shop-web-1 (up to date)",
            "keep container shop-web-2 (up to date)",
            "create container shop-web-3",
            "start container shop-web-3",
        ],
        "{got:#?}"
    );
    // Creating a container waits for the dependency first.
    assert_eq!(got[1..].iter().filter(|l| l.starts_with("wait")).count(), 1);

    let mut four = converged(&more);
    four.containers.push(container(
        "shop-web-4",
        "berth/testapp:latest",
        {
            let mut l = d.service("web").unwrap().containers[1].labels.clone();
            l.insert(labels::COMPOSE_CONTAINER_NUMBER.into(), "4".into());
            l
        },
        "exited",
    ));
    let fewer = desired(&SHOP.replace("replicas: 2", "replicas: 1"));
    let got = up(&fewer, &four);
    assert_eq!(
        got,
        [
            "keep container shop-db-1 (up to date)",
            "remove container shop-web-4 (scaled down)",
            "stop container shop-web-3",
            "remove container shop-web-3 (scaled down)",
            "stop container shop-web-2",
            "remove container shop-web-2 (scaled down)",
            "keep container shop-web-1 (up to date)",
            "keep container shop-worker-1 (up to date)",
        ]
    );
    let p = plan(&fewer, &four, &PlanOptions::default()).unwrap();
    assert!(p.steps.iter().any(|s| matches!(s,
        Step::Stop { container, timeout } if container.name == "shop-web-3" && *timeout == Some(Duration::from_secs(20)))));
}

#[test]
fn stopped_containers_are_started() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    for c in &mut a.containers {
        if c.name == "/shop-worker-1" {
            c.state = "exited".into();
        }
    }
    assert_eq!(
        &up(&d, &a)[3..],
        [
            "wait for db to be healthy (up to 8m5s)",
            "start container shop-worker-1",
        ]
    );
}

#[test]
fn orphans_warn_or_go() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    let mut l = compose_labels("shop", "old", 1);
    l.insert(labels::CONFIG_HASH.into(), "x".into());
    a.containers
        .push(container("shop-old-1", "old", l, "running"));
    // Another project's container is none of our business.
    a.containers.push(container(
        "blog-web-1",
        "x",
        compose_labels("blog", "web", 1),
        "running",
    ));

    let got = up(&d, &a);
    assert_eq!(got[0], "warning: found orphan container shop-old-1 of service `old`, which is not in the project; run with --remove-orphans to remove it");
    assert_eq!(got.len(), 5);
    let p = plan(&d, &a, &PlanOptions::default()).unwrap();
    assert!(p.is_noop());
    assert_eq!(p.warnings().count(), 1);

    let opts = PlanOptions {
        remove_orphans: true,
        ..Default::default()
    };
    let got = lines(&plan(&d, &a, &opts).unwrap());
    assert_eq!(
        &got[..2],
        [
            "stop container shop-old-1",
            "remove orphan container shop-old-1"
        ]
    );
    assert!(!got.iter().any(|l| l.contains("blog")));

    // A service that is still in the project but not selected is not an orphan.
    let l = load_text(SHOP, &[]);
    let ctx = berth_deploy::Context {
        services: vec!["db".into()],
        ..context(&l)
    };
    let only_db = berth_deploy::desired_state(&l.project, &ctx).unwrap();
    assert_eq!(
        lines(&plan(&only_db, &converged(&d), &opts).unwrap()),
        ["keep container shop-db-1 (up to date)"]
    );
}

#[test]
fn force_and_no_recreate() {
    let d = desired(SHOP);
    let a = converged(&d);
    let forced = PlanOptions {
        force_recreate: true,
        services: vec!["db".into()],
        ..Default::default()
    };
    assert_eq!(
        lines(&plan(&d, &a, &forced).unwrap()),
        ["recreate container shop-db-1 (forced)"]
    );
    let changed = desired(&SHOP.replace("POSTGRES_DB: shop", "POSTGRES_DB: shop2"));
    let keep = PlanOptions {
        no_recreate: true,
        ..Default::default()
    };
    let got = lines(&plan(&changed, &a, &keep).unwrap());
    assert_eq!(
        got[0],
        "keep container shop-db-1 (config changed, kept by --no-recreate)"
    );
    assert!(plan(&changed, &a, &keep).unwrap().is_noop());
}

#[test]
fn containers_from_docker_compose_are_recreated_once() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    // The db container came from `docker compose up`: Compose labels, no berth hash.
    let db = a
        .containers
        .iter_mut()
        .find(|c| c.name == "/shop-db-1")
        .unwrap();
    db.labels = compose_labels("shop", "db", 1);
    let got = up(&d, &a);
    assert_eq!(
        got[0],
        "recreate container shop-db-1 (not created by berth)"
    );
    assert_eq!(
        got.last().unwrap(),
        "restart container shop-worker-1 (dependency db changed)"
    );
}

#[test]
fn duplicates_and_unnumbered_containers_are_removed() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    let mut stale = d.service("db").unwrap().containers[0].labels.clone();
    stale.insert(labels::CONFIG_HASH.into(), "stale".into());
    // Listed first, but the up-to-date copy is the one kept.
    a.containers
        .insert(0, container("old_shop-db-1", "x", stale, "exited"));
    let mut unnumbered = d.service("worker").unwrap().containers[0].labels.clone();
    unnumbered.remove(labels::COMPOSE_CONTAINER_NUMBER);
    a.containers
        .push(container("shop-worker-x", "x", unnumbered, "running"));
    let got = up(&d, &a);
    assert_eq!(
        got,
        [
            "remove container old_shop-db-1 (duplicate replica)",
            "keep container shop-db-1 (up to date)",
            "keep container shop-web-1 (up to date)",
            "keep container shop-web-2 (up to date)",
            "stop container shop-worker-x",
            "remove container shop-worker-x (no replica number)",
            "keep container shop-worker-1 (up to date)",
        ]
    );
}

#[test]
fn one_off_containers_are_ignored_by_up() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    let mut l = compose_labels("shop", "web", 1);
    l.insert(labels::COMPOSE_ONEOFF.into(), "True".into());
    a.containers
        .push(container("shop-web-run-1", "x", l, "running"));
    assert!(plan(&d, &a, &PlanOptions::default()).unwrap().is_noop());
}

#[test]
fn networks_volumes_and_externals() {
    const EXT: &str = r#"
name: shop
services:
  app:
    image: x
    networks: [default, shared]
    volumes: [certs:/certs, data:/data]
networks:
  shared: { external: true, name: proxy_net }
volumes:
  certs: { external: true }
  data: {}
"#;
    let d = desired(EXT);
    assert_eq!(
        plan(&d, &Actual::default(), &PlanOptions::default()),
        Err(PlanError::MissingExternal {
            kind: "network",
            name: "proxy_net".into()
        })
    );
    let a = Actual {
        networks: vec![
            ResourceSummary::new("proxy_net", BTreeMap::new()),
            // Same name as ours, but someone else made it.
            ResourceSummary::new("shop_default", BTreeMap::new()),
        ],
        volumes: vec![],
        containers: vec![],
        observed: BTreeMap::new(),
    };
    assert_eq!(
        plan(&d, &a, &PlanOptions::default()).unwrap_err().to_string(),
        "external volume `certs` does not exist; create it with `docker volume create certs` or drop `external: true`"
    );
    let mut a = a;
    a.volumes
        .push(ResourceSummary::new("certs", BTreeMap::new()));
    let got = up(&d, &a);
    assert_eq!(
        &got[..4],
        [
            "warning: network shop_default already exists but was not created for project `shop`; it is used as it is. Declare it with `external: true` if that is intended",
            "use external network proxy_net",
            "create volume shop_data",
            "use external volume certs",
        ]
    );
}

#[test]
fn down_in_reverse_order_keeps_what_is_not_ours() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    for c in &mut a.containers {
        if c.name == "/shop-web-2" {
            c.state = "exited".into();
        }
    }
    // An external volume that happens to carry our label, and a volume of another project.
    let ext = desired(&format!(
        "{SHOP}  backups: {{ external: true, name: shop_backups }}\n"
    ));
    a.volumes.push(ResourceSummary::new(
        "shop_backups",
        labels::volume("shop", "backups", &BTreeMap::new()),
    ));
    a.volumes.push(ResourceSummary::new(
        "blog_data",
        labels::volume("blog", "data", &BTreeMap::new()),
    ));
    a.networks
        .push(ResourceSummary::new("bridge", BTreeMap::new()));

    let p = plan_down(&ext, &a, &DownOptions::default());
    insta::assert_snapshot!(p.to_string(), @r"
    stop container shop-worker-1
    remove container shop-worker-1
    stop container shop-web-1
    remove container shop-web-1
    remove container shop-web-2
    stop container shop-db-1
    remove container shop-db-1
    remove network shop_default
    ");
    let p = plan_down(
        &ext,
        &a,
        &DownOptions {
            volumes: true,
            ..Default::default()
        },
    );
    let got = lines(&p);
    assert_eq!(got.last().unwrap(), "remove volume shop_pgdata");
    assert!(!got
        .iter()
        .any(|l| l.contains("shop_backups") || l.contains("blog")));
    assert!(p.steps.contains(&Step::Stop {
        container: berth_deploy::plan::ContainerRef {
            id: "id-shop-web-1".into(),
            name: "shop-web-1".into(),
            service: "web".into(),
        },
        timeout: Some(Duration::from_secs(20)),
    }));
}

#[test]
fn down_handles_orphans_and_one_offs() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    a.containers.push(container(
        "shop-old-1",
        "x",
        compose_labels("shop", "old", 1),
        "exited",
    ));
    let mut l = compose_labels("shop", "db", 1);
    l.insert(labels::COMPOSE_ONEOFF.into(), "True".into());
    a.containers
        .push(container("shop-db-run-1", "x", l, "running"));
    let got = lines(&plan_down(&d, &a, &DownOptions::default()));
    assert!(got[0].starts_with("warning: found orphan container shop-old-1"));
    let db_run = got
        .iter()
        .position(|l| l == "remove container shop-db-run-1")
        .unwrap();
    let db = got
        .iter()
        .position(|l| l == "remove container shop-db-1")
        .unwrap();
    assert!(db < db_run, "{got:#?}");
    let got = lines(&plan_down(
        &d,
        &a,
        &DownOptions {
            remove_orphans: true,
            ..Default::default()
        },
    ));
    assert_eq!(got[0], "remove container shop-old-1");
}

/// Issue #14 item 4: `down web` takes only web's containers (its one-offs too) and leaves the
/// networks, volumes and orphans that the other services still have.
#[test]
fn down_of_one_service_takes_only_its_containers() {
    let d = desired(SHOP);
    let mut a = converged(&d);
    a.containers.push(container(
        "shop-old-1",
        "x",
        compose_labels("shop", "old", 1),
        "exited",
    ));
    let mut l = compose_labels("shop", "web", 1);
    l.insert(labels::COMPOSE_ONEOFF.into(), "True".into());
    a.containers
        .push(container("shop-web-run-1", "x", l, "exited"));
    let got = lines(&plan_down(
        &d,
        &a,
        &DownOptions {
            volumes: true,
            remove_orphans: true,
            services: vec!["web".into()],
        },
    ));
    assert_eq!(
        got,
        [
            "stop container shop-web-1",
            "remove container shop-web-1",
            "stop container shop-web-2",
            "remove container shop-web-2",
            "remove container shop-web-run-1",
        ],
        "{got:#?}"
    );
}
