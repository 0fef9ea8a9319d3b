//! Helpers shared by the planner's tests: projects loaded from real compose files, and engine
//! states made up from desired specs.
#![allow(dead_code)]

use berth_compose::{load, LoadOptions, Project};
use berth_deploy::labels;
use berth_deploy::{desired_state, Actual, Context, Desired, ResourceSummary};
use berth_engine::ContainerSummary;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The seed-like stack: `web` x2 with a healthcheck, `db` (postgres) with a named volume,
/// `worker` waiting for a healthy `db` and restarting when `db` changes.
pub const SHOP: &str = r#"
name: shop
services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: v1
      DATABASE_URL: postgres://shop@db:5432/shop
    ports: ["8080:8080"]
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 2s
      timeout: 1s
      retries: 5
      start_period: 2s
    deploy:
      replicas: 2
    stop_grace_period: 20s
    restart: unless-stopped
    depends_on:
      db: { condition: service_healthy }
  worker:
    image: berth/testapp:latest
    environment:
      APP_VERSION: v1
    restart: unless-stopped
    depends_on:
      db: { condition: service_healthy, restart: true }
  db:
    image: berth/postgres:15
    environment:
      POSTGRES_USER: shop
      POSTGRES_DB: shop
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "shop"]
      interval: 2s
      retries: 15
volumes:
  pgdata: {}
"#;

/// A loaded project and the directory it lives in (kept alive by the TempDir).
pub struct Loaded {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub project: Project,
    pub files: Vec<PathBuf>,
}

/// Writes `compose.yaml` (plus `extra` files) into a temporary `shop` directory and loads it
/// with an empty environment.
pub fn load_text(compose: &str, extra: &[(&str, &str)]) -> Loaded {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
    for (name, text) in extra {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let loaded = load(&LoadOptions {
        working_dir: dir.clone(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    Loaded {
        _tmp: tmp,
        dir: loaded.project_dir.clone(),
        project: loaded.project,
        files: loaded.files,
    }
}

pub fn context(l: &Loaded) -> Context {
    Context {
        working_dir: l.dir.clone(),
        config_files: l.files.clone(),
        ..Default::default()
    }
}

/// The desired state of a compose text with the default context.
pub fn desired(compose: &str) -> Desired {
    let l = load_text(compose, &[]);
    desired_state(&l.project, &context(&l)).unwrap()
}

/// An engine state in which every desired container runs exactly as desired, and every
/// network and volume exists with the project's labels.
pub fn converged(d: &Desired) -> Actual {
    let mut a = Actual {
        networks: d
            .networks
            .iter()
            .map(|n| ResourceSummary::new(n.name.clone(), n.labels.clone()))
            .collect(),
        volumes: d
            .volumes
            .iter()
            .map(|v| ResourceSummary::new(v.name.clone(), v.labels.clone()))
            .collect(),
        containers: Vec::new(),
        observed: Default::default(),
    };
    for name in &d.external_networks {
        a.networks
            .push(ResourceSummary::new(name.clone(), BTreeMap::new()));
    }
    for name in &d.external_volumes {
        a.volumes
            .push(ResourceSummary::new(name.clone(), BTreeMap::new()));
    }
    for s in &d.services {
        for spec in &s.containers {
            a.containers.push(container(
                &spec.name,
                &spec.image,
                spec.labels.clone(),
                "running",
            ));
        }
    }
    a
}

pub fn container(
    name: &str,
    image: &str,
    labels: BTreeMap<String, String>,
    state: &str,
) -> ContainerSummary {
    ContainerSummary {
        id: format!("id-{name}"),
        name: format!("/{name}"),
        image: image.into(),
        image_id: "sha256:0".into(),
        labels,
        state: state.into(),
        health: None,
        status: String::new(),
        exit_code: None,
        ports: Vec::new(),
        created: 0,
    }
}

/// Compose-style labels of a container some other tool created for `project`.
pub fn compose_labels(project: &str, service: &str, number: u64) -> BTreeMap<String, String> {
    [
        (labels::COMPOSE_PROJECT, project.to_string()),
        (labels::COMPOSE_SERVICE, service.to_string()),
        (labels::COMPOSE_CONTAINER_NUMBER, number.to_string()),
        (labels::COMPOSE_ONEOFF, "False".to_string()),
        (labels::COMPOSE_CONFIG_HASH, "composehash".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The plan as dry-run text lines.
pub fn lines(p: &berth_deploy::Plan) -> Vec<String> {
    p.to_string().lines().map(String::from).collect()
}
