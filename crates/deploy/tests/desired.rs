//! The translation of a compose project into engine specs.

mod common;

use berth_deploy::desired::Condition;
use berth_deploy::labels;
use berth_deploy::{desired_state, Context, PlanError};
use berth_engine::{
    BuildSpec, HealthSpec, MountSpec, NetworkAttachment, NetworkSpec, PortBinding, RestartPolicy,
    VolumeSpec,
};
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const RICH: &str = r#"
name: rich
services:
  app:
    build:
      context: ./app
      dockerfile: Dockerfile.prod
      target: runtime
      args: { A: "1" }
      tags: ["registry.example/app:1"]
    command: python main.py
    entrypoint: ["/entry.sh"]
    environment: [B=2, A=1, C]
    ports: ["8080:80", "127.0.0.1:9000:9000/udp", "5000"]
    volumes:
      - ./src:/src:ro
      - data:/data
      - /anon
      - type: tmpfs
        target: /cache
        tmpfs: { size: 64m, mode: 1777 }
      - type: volume
        source: data
        target: /sub
        volume: { nocopy: true, subpath: x }
    networks:
      front: { aliases: [api], ipv4_address: 172.28.0.5 }
      back: {}
    healthcheck:
      test: curl -f localhost
      interval: 10s
      timeout: 2s
      retries: 4
      start_period: 5s
      start_interval: 1s
    restart: on-failure:3
    labels: { x.y: z }
    stop_grace_period: 1m
    stop_signal: SIGINT
    user: "1000:1000"
    working_dir: /src
    hostname: apphost
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    extra_hosts: ["h:1.2.3.4", "g=5.6.7.8"]
    tmpfs: /run
    sysctls: { net.core.somaxconn: 1024 }
    tty: true
    stdin_open: true
    init: true
    privileged: true
    read_only: true
    dns: 8.8.8.8
    mem_limit: 512m
    shm_size: 1g
    logging: { driver: json-file, options: { max-size: 10m } }
    ulimits: { nofile: 1024 }
    deploy:
      resources: { limits: { cpus: "1.5", memory: 512m, pids: 50 } }
    depends_on:
      db: { condition: service_healthy, restart: true }
  db:
    image: postgres
    healthcheck: { disable: true }
    network_mode: host
    restart: always
  sidecar:
    image: busybox
    network_mode: service:db
    depends_on:
      db: { condition: service_started }
volumes:
  data: {}
  ext: { external: true }
networks:
  front:
    driver: bridge
    driver_opts: { a: b }
    internal: true
    attachable: true
    enable_ipv6: true
    labels: { l: v }
  back: { external: true, name: backnet }
"#;

#[test]
fn every_field_lands_in_the_container_spec() {
    let l = load_text(RICH, &[]);
    let dir = l.dir.clone();
    let mut ctx = context(&l);
    ctx.release = Some("r1".into());
    let d = desired_state(&l.project, &ctx).unwrap();

    let app = d.service("app").unwrap();
    assert_eq!(
        app.image, "rich-app",
        "a build without image is named project-service"
    );
    assert_eq!(
        app.build,
        Some(BuildSpec {
            context: dir.join("app"),
            dockerfile: "Dockerfile.prod".into(),
            dockerfile_inline: None,
            target: Some("runtime".into()),
            args: [("A".to_string(), "1".to_string())].into(),
            labels: BTreeMap::new(),
            tags: vec!["rich-app".into(), "registry.example/app:1".into()],
            no_cache: false,
            pull: false,
            ..Default::default()
        })
    );
    assert_eq!(app.replicas, 1);
    let c = &app.containers[0];
    assert_eq!(c.name, "rich-app-1");
    assert_eq!(c.image, "rich-app");
    assert_eq!(c.entrypoint, Some(vec!["/entry.sh".to_string()]));
    assert_eq!(
        c.command,
        Some(vec!["python".to_string(), "main.py".to_string()])
    );
    assert_eq!(c.env, ["A=1", "B=2"], "sorted, unset C skipped");
    assert_eq!(c.labels["x.y"], "z");
    assert_eq!(c.labels[labels::RELEASE], "r1");
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert_eq!(c.working_dir.as_deref(), Some("/src"));
    assert_eq!(c.hostname.as_deref(), Some("apphost"));
    assert!(c.tty && c.stdin_open && c.privileged && c.read_only_rootfs);
    assert_eq!(c.init, Some(true));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(c.stop_timeout, Some(Duration::from_secs(60)));
    assert_eq!(
        c.healthcheck,
        Some(HealthSpec {
            test: vec!["CMD-SHELL".into(), "curl -f localhost".into()],
            interval: Some(Duration::from_secs(10)),
            timeout: Some(Duration::from_secs(2)),
            start_period: Some(Duration::from_secs(5)),
            start_interval: Some(Duration::from_secs(1)),
            retries: Some(4),
        })
    );
    assert_eq!(
        c.restart,
        RestartPolicy::OnFailure {
            max_retries: Some(3)
        }
    );
    let port = |cp: u16, proto: &str, ip: Option<&str>, hp: Option<&str>| PortBinding {
        container_port: cp,
        protocol: proto.into(),
        host_ip: ip.map(String::from),
        host_port: hp.map(String::from),
    };
    assert_eq!(
        c.ports,
        [
            port(80, "tcp", None, Some("8080")),
            port(9000, "udp", Some("127.0.0.1"), Some("9000")),
            port(5000, "tcp", None, None),
        ]
    );
    assert_eq!(
        c.mounts,
        [
            MountSpec::Bind {
                source: dir.join("src").display().to_string(),
                target: "/src".into(),
                read_only: true,
                create_host_path: true,
                propagation: None,
                selinux: None,
            },
            MountSpec::Volume {
                source: Some("rich_data".into()),
                target: "/data".into(),
                read_only: false,
                nocopy: false,
                subpath: None,
            },
            MountSpec::Volume {
                source: None,
                target: "/anon".into(),
                read_only: false,
                nocopy: false,
                subpath: None,
            },
            MountSpec::Tmpfs {
                target: "/cache".into(),
                size_bytes: Some(64 << 20),
                mode: Some(0o1777),
            },
            MountSpec::Volume {
                source: Some("rich_data".into()),
                target: "/sub".into(),
                read_only: false,
                nocopy: true,
                subpath: Some("x".into()),
            },
        ]
    );
    assert_eq!(
        c.networks,
        [
            NetworkAttachment {
                network: "backnet".into(),
                aliases: vec!["app".into()],
                ipv4_address: None,
            },
            NetworkAttachment {
                network: "rich_front".into(),
                aliases: vec!["app".into(), "api".into()],
                ipv4_address: Some("172.28.0.5".into()),
            },
        ]
    );
    assert_eq!(c.network_mode, None);
    assert_eq!(c.extra_hosts, ["h:1.2.3.4", "g:5.6.7.8"]);
    assert_eq!(c.cap_add, ["NET_ADMIN"]);
    assert_eq!(c.cap_drop, ["ALL"]);
    assert_eq!(c.dns, ["8.8.8.8"]);
    assert_eq!(c.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(c.tmpfs, ["/run"]);
    assert_eq!(c.memory_bytes, Some(512 << 20));
    assert_eq!(c.nano_cpus, Some(1_500_000_000));
    assert_eq!(c.pids_limit, Some(50));
    assert_eq!(c.shm_size_bytes, Some(1 << 30));
    assert_eq!(c.log_driver.as_deref(), Some("json-file"));
    assert_eq!(c.log_options["max-size"], "10m");
    assert_eq!(
        app.depends_on[0].condition,
        Condition::Healthy,
        "depends_on is carried over"
    );
    assert!(app.depends_on[0].restart);

    let db = &d.service("db").unwrap().containers[0];
    assert_eq!(db.network_mode.as_deref(), Some("host"));
    assert!(db.networks.is_empty());
    assert_eq!(db.restart, RestartPolicy::Always);
    assert_eq!(db.healthcheck.as_ref().unwrap().test, ["NONE"]);
    let sidecar = &d.service("sidecar").unwrap().containers[0];
    assert_eq!(sidecar.network_mode.as_deref(), Some("container:rich-db-1"));

    assert_eq!(
        d.networks,
        [NetworkSpec {
            name: "rich_front".into(),
            driver: Some("bridge".into()),
            driver_opts: [("a".to_string(), "b".to_string())].into(),
            labels: labels::network(
                "rich",
                "front",
                &[("l".to_string(), "v".to_string())].into()
            ),
            internal: true,
            attachable: true,
            enable_ipv6: true,
        }]
    );
    assert_eq!(d.external_networks, ["backnet"]);
    assert_eq!(
        d.volumes,
        [VolumeSpec {
            name: "rich_data".into(),
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: labels::volume("rich", "data", &BTreeMap::new()),
        }]
    );
    assert_eq!(d.external_volumes, ["ext"]);
    assert_eq!(
        d.levels,
        [vec!["db".to_string()], vec!["app".into(), "sidecar".into()]]
    );
    assert_eq!(
        d.warnings,
        ["service `app`: `ulimits` is not supported by berth yet and is ignored"]
    );
}

#[test]
fn names_labels_and_order_of_the_shop() {
    let l = load_text(SHOP, &[]);
    let d = desired_state(&l.project, &context(&l)).unwrap();
    let order: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, ["db", "web", "worker"]);
    let web = d.service("web").unwrap();
    assert_eq!(web.replicas, 2);
    let names: Vec<&str> = web.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["shop-web-1", "shop-web-2"]);
    for (i, c) in web.containers.iter().enumerate() {
        let l = &c.labels;
        assert_eq!(l[labels::COMPOSE_PROJECT], "shop");
        assert_eq!(l[labels::COMPOSE_SERVICE], "web");
        assert_eq!(l[labels::COMPOSE_CONTAINER_NUMBER], (i + 1).to_string());
        assert_eq!(l[labels::COMPOSE_ONEOFF], "False");
        assert_eq!(l[labels::PROJECT], "shop");
        assert_eq!(l[labels::SERVICE], "web");
        assert_eq!(l[labels::ROLE], "app");
        assert_eq!(l[labels::CONFIG_HASH], web.config_hash);
        assert_eq!(l[labels::COMPOSE_CONFIG_HASH], web.config_hash);
        assert_eq!(l[labels::COMPOSE_WORKING_DIR], d_dir(&d, &c.labels));
        assert!(l[labels::COMPOSE_CONFIG_FILES].ends_with("compose.yaml"));
        assert!(!l.contains_key(labels::RELEASE));
    }
    assert_eq!(
        web.containers[0].networks,
        [NetworkAttachment {
            network: "shop_default".into(),
            aliases: vec!["web".into()],
            ipv4_address: None,
        }]
    );
    assert_eq!(d.networks.len(), 1);
    assert_eq!(d.networks[0].labels[labels::COMPOSE_NETWORK], "default");
    assert_eq!(d.volumes[0].name, "shop_pgdata");
    assert_eq!(d.volumes[0].labels[labels::COMPOSE_VOLUME], "pgdata");
    assert_eq!(
        d.service("db").unwrap().containers[0].mounts[0],
        MountSpec::Volume {
            source: Some("shop_pgdata".into()),
            target: "/var/lib/postgresql/data".into(),
            read_only: false,
            nocopy: false,
            subpath: None,
        }
    );
    // db: 0 + (2s + 30s default timeout) * 15 + 5s margin.
    assert_eq!(
        d.service("db").unwrap().health_deadline,
        Duration::from_secs(485)
    );
}

fn d_dir(_d: &berth_deploy::Desired, l: &BTreeMap<String, String>) -> String {
    // The working dir label is the project dir; it must be absolute.
    let v = l[labels::COMPOSE_WORKING_DIR].clone();
    assert!(v.starts_with('/') && v.ends_with("shop"), "{v}");
    v
}

fn hashes(compose: &str, image_ids: &[(&str, &str)]) -> BTreeMap<String, String> {
    let l = load_text(compose, &[]);
    let mut ctx = context(&l);
    ctx.image_ids = image_ids
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let d = desired_state(&l.project, &ctx).unwrap();
    d.services
        .iter()
        .map(|s| (s.name.clone(), s.config_hash.clone()))
        .collect()
}

#[test]
fn config_hash_is_stable_and_local() {
    let base = hashes(SHOP, &[]);
    assert_eq!(base, hashes(SHOP, &[]), "same input, same hash");

    // Loading from another directory changes labels only, not the hash.
    let l = load_text(SHOP, &[]);
    let mut ctx = context(&l);
    ctx.release = Some("r9".into());
    ctx.config_files.push("/elsewhere/override.yaml".into());
    let d = desired_state(&l.project, &ctx).unwrap();
    assert_eq!(d.service("web").unwrap().config_hash, base["web"]);

    let changed = hashes(
        &SHOP.replace(
            "APP_VERSION: v1\n      DATABASE_URL",
            "APP_VERSION: v2\n      DATABASE_URL",
        ),
        &[],
    );
    assert_ne!(changed["web"], base["web"]);
    assert_eq!(changed["worker"], base["worker"]);
    assert_eq!(changed["db"], base["db"]);

    let reordered = hashes(
        &SHOP.replace(
            "POSTGRES_USER: shop\n      POSTGRES_DB: shop",
            "POSTGRES_DB: shop\n      POSTGRES_USER: shop",
        ),
        &[],
    );
    assert_eq!(reordered, base, "environment order does not matter");

    let with_id = hashes(SHOP, &[("web", "sha256:aaa")]);
    let rebuilt = hashes(SHOP, &[("web", "sha256:bbb")]);
    assert_ne!(with_id["web"], base["web"]);
    assert_ne!(with_id["web"], rebuilt["web"]);
    assert_eq!(with_id["db"], base["db"]);

    // Replica count is not part of a container's configuration.
    let scaled = hashes(&SHOP.replace("replicas: 2", "replicas: 3"), &[]);
    assert_eq!(scaled["web"], base["web"]);
}

#[test]
fn selection_includes_dependencies() {
    let l = load_text(SHOP, &[]);
    let ctx = Context {
        services: vec!["web".into()],
        ..context(&l)
    };
    let d = desired_state(&l.project, &ctx).unwrap();
    let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(d.all_services.len(), 3);
    let ctx = Context {
        services: vec!["nope".into()],
        ..context(&l)
    };
    assert_eq!(
        desired_state(&l.project, &ctx),
        Err(PlanError::UnknownService("nope".into()))
    );
}

#[test]
fn invalid_projects_are_errors() {
    let err = |text: &str| {
        let l = load_text(text, &[]);
        desired_state(&l.project, &context(&l))
            .unwrap_err()
            .to_string()
    };
    let cases = [
        (
            "services:\n  a:\n    image: x\n    container_name: one\n    deploy: { replicas: 2 }\n",
            "sets `container_name` but runs 2 replicas",
        ),
        (
            "services:\n  a:\n    image: x\n    scale: 2\n    deploy: { replicas: 3 }\n",
            "`deploy.replicas` and `scale` disagree (3 vs 2)",
        ),
        (
            "services:\n  a:\n    image: x\n    mem_limit: 1g\n    deploy: { resources: { limits: { memory: 2g } } }\n",
            "`mem_limit` and `deploy.resources.limits.memory` disagree (1g vs 2g)",
        ),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.contains(want), "{got}");
    }
    // Both limits agreeing is fine.
    let d = desired("services:\n  a:\n    image: x\n    cpus: 0.5\n    deploy: { resources: { limits: { cpus: '0.5' } } }\n");
    assert_eq!(d.services[0].containers[0].nano_cpus, Some(500_000_000));
}

#[test]
fn scale_and_restart_policy_fallbacks() {
    let d = desired(
        "services:\n  a:\n    image: x\n    scale: 3\n    deploy: { restart_policy: { condition: on-failure, max_attempts: 2 } }\n  b:\n    image: x\n    deploy: { replicas: 0 }\n",
    );
    let a = d.service("a").unwrap();
    assert_eq!(a.replicas, 3);
    assert_eq!(
        a.containers[0].restart,
        RestartPolicy::OnFailure {
            max_retries: Some(2)
        }
    );
    assert_eq!(d.service("b").unwrap().containers.len(), 0);
    let d = desired("services:\n  a:\n    image: x\n    container_name: solo\n");
    assert_eq!(d.services[0].containers[0].name, "solo");
    assert_eq!(d.services[0].containers[0].restart, RestartPolicy::No);
}

/// Issue #14 item 3: `up`, `run web` (web and its dependencies) and a rollback that pins a
/// release's images give an unchanged service one hash, so none of them restarts it.
#[test]
fn up_run_and_rollback_hash_an_unchanged_service_alike() {
    let compose = r#"
name: shop
services:
  web:
    image: shop/web:latest
    environment: { APP_VERSION: v2 }
    depends_on: { db: { condition: service_healthy } }
  db:
    image: berth/postgres:15
    environment: { POSTGRES_PASSWORD: secret }
    labels: { team: data }
"#;
    let l = load_text(compose, &[]);
    let ids = BTreeMap::from([
        ("web".to_string(), "sha256:web2".to_string()),
        ("db".to_string(), "sha256:db".to_string()),
    ]);
    let up = desired_state(
        &l.project,
        &Context {
            image_ids: ids.clone(),
            ..context(&l)
        },
    )
    .unwrap();
    let run = desired_state(
        &l.project,
        &Context {
            services: vec!["web".into()],
            image_ids: ids.clone(),
            ..context(&l)
        },
    )
    .unwrap();
    let db = up.service("db").unwrap();
    assert_eq!(run.service("db").unwrap(), db);

    // A rollback to a release that ran web v1 (image sha256:web1) with the same db: its specs
    // come back from the journal's JSON and its images are pinned by id.
    let mut recorded = up.clone();
    for c in recorded
        .services
        .iter_mut()
        .flat_map(|d| d.containers.iter_mut())
    {
        c.labels.insert(labels::RELEASE.into(), "r1".into());
        if c.name.contains("web") {
            c.env = vec!["APP_VERSION=v1".into()];
        }
    }
    let specs: BTreeMap<String, Vec<berth_engine::ContainerSpec>> = serde_json::from_value(
        serde_json::to_value(
            recorded
                .services
                .iter()
                .map(|d| (d.name.clone(), d.containers.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
        .unwrap(),
    )
    .unwrap();
    let release_ids = BTreeMap::from([
        ("web".to_string(), "sha256:web1".to_string()),
        ("db".to_string(), "sha256:db".to_string()),
    ]);
    let mut rollback = up.clone();
    rollback.pin_release(&specs, &release_ids);
    let pinned = rollback.service("db").unwrap();
    assert_eq!(pinned.config_hash, db.config_hash);
    assert_eq!(pinned.containers[0].image, "sha256:db");
    assert_eq!(
        pinned.containers[0].labels[labels::CONFIG_HASH],
        db.config_hash
    );
    assert!(!pinned.containers[0].labels.contains_key(labels::RELEASE));
    // web does change: another image and another environment.
    assert_ne!(
        rollback.service("web").unwrap().config_hash,
        up.service("web").unwrap().config_hash
    );
    // Without the image ids (what `run` used to plan with), db would look changed.
    let unresolved = desired_state(
        &l.project,
        &Context {
            services: vec!["web".into()],
            ..context(&l)
        },
    )
    .unwrap();
    assert_ne!(
        unresolved.service("db").unwrap().config_hash,
        db.config_hash
    );
}
