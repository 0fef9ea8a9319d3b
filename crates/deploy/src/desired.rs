//! The desired state: what the engine should run for a project, in the engine's terms.

use crate::container::{container_name, service_spec};
use crate::deadline;
use crate::error::PlanError;
use crate::hash::config_hash;
use crate::labels::{self, ProjectLabels, Role};
use crate::order::DependencyGraph;
use berth_compose::model::{Resource, Service};
use berth_compose::Project;
use berth_engine::{BuildSpec, ContainerSpec, NetworkSpec, VolumeSpec};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// What the caller knows beyond the project itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The project directory, for the `working_dir` label (`Loaded::project_dir`).
    pub working_dir: PathBuf,
    /// The compose files in merge order, for the `config_files` label (`Loaded::files`).
    pub config_files: Vec<PathBuf>,
    /// Services named on the command line; empty means all. Their dependencies are included,
    /// as `docker compose up web` also starts what `web` depends on.
    pub services: Vec<String>,
    /// Image ids by service, when known (after a build or pull). They enter the config hash so
    /// a rebuilt image under the same tag recreates the containers.
    pub image_ids: BTreeMap<String, String>,
    /// Written into the `berth.release` label when set.
    pub release: Option<String>,
}

/// The whole desired state of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub project: String,
    /// Networks berth creates, sorted by engine name.
    pub networks: Vec<NetworkSpec>,
    /// Engine names of `external: true` networks the services use; they must exist.
    pub external_networks: Vec<String>,
    /// Volumes berth creates, sorted by engine name.
    pub volumes: Vec<VolumeSpec>,
    /// Engine names of `external: true` volumes; they must exist and are never removed.
    pub external_volumes: Vec<String>,
    /// The selected services and their dependencies, in dependency order (level by level).
    pub services: Vec<DesiredService>,
    /// `services` grouped into dependency levels: each level depends only on earlier ones.
    pub levels: Vec<Vec<String>>,
    /// Every service of the project (after profiles), selected or not. A container of any
    /// other service is an orphan.
    pub all_services: BTreeSet<String>,
    /// Keys that were ignored, for the CLI to show.
    pub warnings: Vec<String>,
}

impl Desired {
    pub fn service(&self, name: &str) -> Option<&DesiredService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Returns to a release (`berth rollback`): each service's replicas become the specs that
    /// release recorded (its configuration, environment included), when it recorded them, and
    /// run the release's image id instead of the tag, which may name a newer image now. The
    /// hash is computed again from what results, by the one function every path uses, so a
    /// service the rollback does not change keeps the hash its running containers carry.
    pub fn pin_release(
        &mut self,
        specs: &BTreeMap<String, Vec<ContainerSpec>>,
        image_ids: &BTreeMap<String, String>,
    ) {
        for d in self.services.iter_mut() {
            // The reference the files name (the tag), before the id replaces it.
            let reference = d.image.clone();
            if let Some(recorded) = specs.get(&d.name).filter(|s| !s.is_empty()) {
                d.containers = recorded.clone();
                d.replicas = recorded.len() as u64;
            }
            if let Some(id) = image_ids.get(&d.name) {
                d.image = id.clone();
                d.image_id = Some(id.clone());
                for c in d.containers.iter_mut() {
                    c.image = id.clone();
                }
            }
            // Specs recorded by that release carry its number; they are the new release's now.
            for c in d.containers.iter_mut() {
                c.labels.remove(labels::RELEASE);
            }
            d.rehash(&reference);
        }
    }
}

/// One service: its image, how to build it, and one spec per replica.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub name: String,
    /// The image reference containers run; `{project}-{service}` for a build without `image`.
    pub image: String,
    pub build: Option<BuildSpec>,
    pub replicas: u64,
    /// The id of `image` when the caller knew it (`Context::image_ids`); part of the hash.
    pub image_id: Option<String>,
    /// The config hash shared by all replicas (see [`crate::hash`]).
    pub config_hash: String,
    pub depends_on: Vec<DesiredDependency>,
    /// How long to wait for this service when another depends on it being healthy.
    pub health_deadline: Duration,
    /// Replica `n` is `containers[n - 1]`.
    pub containers: Vec<ContainerSpec>,
}

impl DesiredService {
    /// Computes the config hash from the first replica, with the image named by `reference`
    /// (the files' name for it, whatever the replicas run it by), and the image id; and
    /// writes it into every replica's labels. Replicas differ only in what the hash leaves
    /// out (name, managed labels), so the first stands for all; without replicas the hash is
    /// kept.
    fn rehash(&mut self, reference: &str) {
        if let Some(first) = self.containers.first() {
            let hashed = ContainerSpec {
                image: reference.to_string(),
                ..first.clone()
            };
            self.config_hash = config_hash(&hashed, self.image_id.as_deref());
        }
        for c in self.containers.iter_mut() {
            labels::set_config_hash(&mut c.labels, &self.config_hash);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDependency {
    pub service: String,
    pub condition: Condition,
    /// Restart this service when the dependency was recreated or restarted.
    pub restart: bool,
    pub required: bool,
}

/// A `depends_on` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    /// Reads Compose's spelling; the loader validated it, so anything else means "started".
    pub fn parse(s: &str) -> Condition {
        match s {
            "service_healthy" => Condition::Healthy,
            "service_completed_successfully" => Condition::CompletedSuccessfully,
            _ => Condition::Started,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// Translates a loaded project into the engine-side specs berth wants to exist.
pub fn desired_state(project: &Project, ctx: &Context) -> Result<Desired, PlanError> {
    let graph = DependencyGraph::from_project(project);
    let selected = graph.closure(&ctx.services)?;
    let levels: Vec<Vec<String>> = graph
        .levels()?
        .into_iter()
        .map(|l| l.into_iter().filter(|s| selected.contains(s)).collect())
        .filter(|l: &Vec<String>| !l.is_empty())
        .collect();

    let plabels = ProjectLabels {
        project: project.name.clone(),
        working_dir: ctx.working_dir.clone(),
        config_files: ctx.config_files.clone(),
        release: ctx.release.clone(),
    };
    let mut warnings = Vec::new();
    let mut services = Vec::new();
    for name in levels.iter().flatten() {
        let svc = &project.services[name];
        let (ds, w) = service(project, &plabels, name, svc, ctx.image_ids.get(name))?;
        warnings.extend(w);
        services.push(ds);
    }

    let (networks, external_networks) = split(&project.networks, |key, r| NetworkSpec {
        name: r.name.clone(),
        driver: str_field(r, "driver"),
        driver_opts: map_field(r, "driver_opts"),
        labels: labels::network(&project.name, key, &map_field(r, "labels")),
        internal: bool_field(r, "internal"),
        attachable: bool_field(r, "attachable"),
        enable_ipv6: bool_field(r, "enable_ipv6"),
    });
    let (volumes, external_volumes) = split(&project.volumes, |key, r| VolumeSpec {
        name: r.name.clone(),
        driver: str_field(r, "driver"),
        driver_opts: map_field(r, "driver_opts"),
        labels: labels::volume(&project.name, key, &map_field(r, "labels")),
    });

    let mut external_networks = external_networks;
    let routed = services.iter().any(|s| {
        s.containers.iter().any(|c| {
            c.networks
                .iter()
                .any(|n| n.network == labels::PROXY_NETWORK)
        })
    });
    if routed && !external_networks.iter().any(|n| n == labels::PROXY_NETWORK) {
        external_networks.push(labels::PROXY_NETWORK.to_string());
    }

    Ok(Desired {
        project: project.name.clone(),
        networks,
        external_networks,
        volumes,
        external_volumes,
        services,
        levels,
        all_services: project.services.keys().cloned().collect(),
        warnings,
    })
}

fn service(
    project: &Project,
    plabels: &ProjectLabels,
    name: &str,
    svc: &Service,
    image_id: Option<&String>,
) -> Result<(DesiredService, Vec<String>), PlanError> {
    let image = match (&svc.image, &svc.build) {
        (Some(i), _) => i.clone(),
        (None, Some(_)) => format!("{}-{}", project.name, name),
        (None, None) => {
            return Err(PlanError::NoImage {
                service: name.into(),
            })
        }
    };
    let replicas = replicas(name, svc)?;
    if svc.container_name.is_some() && replicas > 1 {
        return Err(PlanError::ContainerNameWithReplicas {
            service: name.into(),
            replicas,
        });
    }
    let (base, warnings) = service_spec(project, name, svc, &image)?;
    let containers = (1..=replicas)
        .map(|n| {
            let mut spec = base.clone();
            spec.name = container_name(&project.name, name, svc, n);
            spec.labels = labels::container(plabels, name, n, Role::App, &base.labels);
            spec
        })
        .collect();
    let depends_on = svc
        .depends_on
        .iter()
        .filter(|(dep, _)| project.services.contains_key(*dep))
        .map(|(dep, d)| DesiredDependency {
            service: dep.clone(),
            condition: Condition::parse(&d.condition),
            restart: d.restart,
            required: d.required,
        })
        .collect();
    let mut ds = DesiredService {
        name: name.into(),
        build: svc
            .build
            .as_ref()
            .map(|b| crate::build_spec::build_spec(project, name, svc, b, &image))
            .transpose()?,
        image,
        replicas,
        image_id: image_id.cloned(),
        // What a service without replicas (`replicas: 0`) is recorded with.
        config_hash: config_hash(&base, image_id.map(String::as_str)),
        depends_on,
        health_deadline: deadline::healthy(svc.healthcheck.as_ref()),
        containers,
    };
    let reference = ds.image.clone();
    ds.rehash(&reference);
    Ok((ds, warnings))
}

/// `deploy.replicas`, else `scale`, else 1. Both set to different values is an error, as in
/// compose-go.
fn replicas(name: &str, svc: &Service) -> Result<u64, PlanError> {
    let deploy = svc.deploy.as_ref().and_then(|d| d.replicas);
    let scale = match svc.other.get("scale") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| PlanError::InvalidValue {
            service: name.into(),
            key: "scale".into(),
            value: v.to_string(),
            expected: "a number of replicas".into(),
            help: "use a whole number like 2".into(),
        })?),
    };
    match (deploy, scale) {
        (Some(d), Some(s)) if d != s => Err(PlanError::Conflict {
            service: name.into(),
            first: "deploy.replicas".into(),
            second: "scale".into(),
            first_value: d.to_string(),
            second_value: s.to_string(),
        }),
        (d, s) => Ok(d.or(s).unwrap_or(1)),
    }
}

/// Splits top-level resources into specs to create and engine names of external ones.
fn split<T>(
    resources: &indexmap::IndexMap<String, Resource>,
    make: impl Fn(&str, &Resource) -> T,
) -> (Vec<T>, Vec<String>)
where
    T: HasName,
{
    let mut create: Vec<T> = Vec::new();
    let mut external = Vec::new();
    for (key, r) in resources {
        if r.external {
            external.push(r.name.clone());
        } else {
            create.push(make(key, r));
        }
    }
    create.sort_by(|a, b| a.name().cmp(b.name()));
    external.sort();
    external.dedup();
    (create, external)
}

trait HasName {
    fn name(&self) -> &str;
}
impl HasName for NetworkSpec {
    fn name(&self) -> &str {
        &self.name
    }
}
impl HasName for VolumeSpec {
    fn name(&self) -> &str {
        &self.name
    }
}

fn str_field(r: &Resource, k: &str) -> Option<String> {
    r.other.get(k).and_then(Value::as_str).map(String::from)
}

fn bool_field(r: &Resource, k: &str) -> bool {
    r.other.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn map_field(r: &Resource, k: &str) -> BTreeMap<String, String> {
    object(r.other.get(k))
}

/// A string-valued mapping (`labels`, `driver_opts`), other scalars as their JSON text.
pub(crate) fn object(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}
