//! The typed project the rest of berth works with.
//!
//! It is read from the canonical (normalized) form, so every field here is already in long
//! syntax. Keys berth does not act on yet are kept in `other`, so nothing the user wrote is lost.

use crate::berth_ext::{ProjectBerth, ServiceBerth};
use crate::duration::GoDuration;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub services: IndexMap<String, Service>,
    #[serde(default)]
    pub networks: IndexMap<String, Resource>,
    #[serde(default)]
    pub volumes: IndexMap<String, Resource>,
    #[serde(default)]
    pub secrets: IndexMap<String, Resource>,
    #[serde(default)]
    pub configs: IndexMap<String, Resource>,
    /// The project directory; relative paths were resolved against it.
    #[serde(skip)]
    pub project_dir: PathBuf,
    /// Top-level `x-berth`.
    #[serde(skip)]
    pub berth: ProjectBerth,
    /// Other top-level `x-` extensions, kept as written.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub environment: IndexMap<String, Option<String>>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<Mount>,
    #[serde(default)]
    pub depends_on: IndexMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    pub network_mode: Option<String>,
    pub restart: Option<String>,
    #[serde(default)]
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    pub stop_grace_period: Option<GoDuration>,
    pub stop_signal: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub container_name: Option<String>,
    /// `x-berth` of the service, typed.
    #[serde(skip)]
    pub berth: Option<ServiceBerth>,
    /// Every other key, kept as written (sorted).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub context: String,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    #[serde(default)]
    pub args: IndexMap<String, Option<String>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub name: Option<String>,
    pub mode: String,
    pub host_ip: Option<String>,
    pub target: u16,
    pub published: Option<String>,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dependency {
    pub condition: String,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Vec<String>,
    pub interval: Option<GoDuration>,
    pub timeout: Option<GoDuration>,
    pub start_period: Option<GoDuration>,
    pub start_interval: Option<GoDuration>,
    pub retries: Option<u64>,
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Deploy {
    pub replicas: Option<u64>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<GoDuration>,
    pub failure_action: Option<FailureAction>,
    pub monitor: Option<GoDuration>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<Order>,
}

/// `update_config.order`: whether a new replica starts before the old one stops. The
/// loader's schema check has already rejected any other spelling with its file, line and
/// column, so the rest of berth never parses this string again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    StartFirst,
    StopFirst,
}

impl Order {
    /// The spelling in a compose file, e.g. `start-first`.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::StartFirst => "start-first",
            Order::StopFirst => "stop-first",
        }
    }
}

/// `update_config.failure_action`: what a failed update does. Validated by the loader's
/// schema check like `Order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// Put the previous release back (the default).
    Rollback,
    /// Stop where the failure happened and leave everything as it is, for a human to look at.
    Pause,
    /// Ignore the failure of the monitor window and go on.
    Continue,
}

impl FailureAction {
    /// The spelling in a compose file, e.g. `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureAction::Rollback => "rollback",
            FailureAction::Pause => "pause",
            FailureAction::Continue => "continue",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceNetwork {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A top-level network, volume, secret or config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    #[serde(default)]
    pub external: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}
