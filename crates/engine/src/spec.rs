//! What berth asks the engine to create, in Docker's own terms. Nothing here knows Compose:
//! the planner (crates/deploy) translates a compose service into these.

use std::collections::BTreeMap;
use std::time::Duration;

/// Everything needed to create one container. Field order and types are stable because the
/// planner hashes a canonical form of the spec into a label to detect drift.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    /// Container name, e.g. `shop-web-1`.
    pub name: String,
    pub image: String,
    /// Overrides the image's entrypoint when set (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's command when set.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE` pairs, sorted by key.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub stdin_open: bool,
    pub init: Option<bool>,
    pub privileged: bool,
    pub read_only_rootfs: bool,
    pub stop_signal: Option<String>,
    /// Grace period between the stop signal and SIGKILL.
    pub stop_timeout: Option<Duration>,
    pub healthcheck: Option<HealthSpec>,
    pub restart: RestartPolicy,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<MountSpec>,
    /// The first network is attached at creation, the others right after, before start.
    pub networks: Vec<NetworkAttachment>,
    /// `network_mode` when not attaching to named networks (`host`, `none`, `container:ID`).
    pub network_mode: Option<String>,
    /// `host:ip` entries for /etc/hosts.
    pub extra_hosts: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub dns: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub tmpfs: Vec<String>,
    /// Hard memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU (Docker's NanoCPUs).
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    pub shm_size_bytes: Option<i64>,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthSpec {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        max_retries: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortBinding {
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub host_ip: Option<String>,
    /// A port, a range `8000-8010`, or None for a random port.
    pub host_port: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MountSpec {
    Bind {
        source: String,
        target: String,
        read_only: bool,
        /// Create the host path when missing (Compose's short syntax does).
        create_host_path: bool,
        propagation: Option<String>,
        selinux: Option<String>,
    },
    Volume {
        /// The engine name of the volume, or None for an anonymous volume.
        source: Option<String>,
        target: String,
        read_only: bool,
        nocopy: bool,
        subpath: Option<String>,
    },
    Tmpfs {
        target: String,
        size_bytes: Option<i64>,
        mode: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkAttachment {
    /// The engine name of the network.
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VolumeSpec {
    pub name: String,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BuildSpec {
    /// The build context directory on this machine.
    pub context: std::path::PathBuf,
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    /// Inline Dockerfile text (Compose's `dockerfile_inline`), used instead of `dockerfile`.
    pub dockerfile_inline: Option<String>,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Tags to apply, e.g. `shop-web:latest`.
    pub tags: Vec<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// Which builder runs the build.
    pub builder: Builder,
    /// Build secrets by id (`RUN --mount=type=secret,id=…`), BuildKit only.
    pub secrets: BTreeMap<String, SecretSource>,
    /// SSH agent sockets by id (`RUN --mount=type=ssh`), BuildKit only.
    pub ssh: BTreeMap<String, std::path::PathBuf>,
    /// Images whose layers may answer steps from the cache (`cache_from`).
    pub cache_from: Vec<String>,
    /// The network RUN steps use (`network`), e.g. `host` or `none`.
    pub network: Option<String>,
    /// `/dev/shm` size for RUN steps, in bytes.
    pub shm_size: Option<u64>,
    /// `host:ip` entries added to RUN steps' /etc/hosts (`extra_hosts`).
    pub extra_hosts: Vec<String>,
    /// `os/arch` to build for; only the engine's own platform can be built here.
    pub platform: Option<String>,
    /// Options of the compose file this engine cannot apply, said to the user as the build
    /// starts (e.g. `cache_to`, which `/build` has no parameter for).
    pub not_applied: Vec<String>,
}

/// The builders berth can use. BuildKit is the default; the classic builder is for engines
/// without a session endpoint, or when a project asks for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    #[default]
    BuildKit,
    Classic,
}

impl Builder {
    pub fn name(self) -> &'static str {
        match self {
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
        }
    }
}

/// Where a build secret's value comes from (Compose's top-level `secrets`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum SecretSource {
    File(std::path::PathBuf),
    Env(String),
}

/// A container as the engine reports it, enough to plan against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `exited`, `restarting`, `paused`, `dead`.
    pub state: String,
    /// `starting`, `healthy`, `unhealthy`, or None without a healthcheck.
    pub health: Option<String>,
    /// The engine's human status, e.g. `Up 3 minutes (healthy)`.
    pub status: String,
    pub exit_code: Option<i64>,
    pub ports: Vec<PublishedPort>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
}

/// Progress of an image build, for the CLI to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A step started, was answered from the cache, finished or failed. `name` is the
    /// builder's name for it: `[stage 2/4] RUN pip install …` (BuildKit) or
    /// `Step 2/4 : RUN pip install …` (classic).
    Step { name: String, status: StepStatus },
    /// A line a step printed.
    Output { step: String, line: String },
    /// Something the user should know about the build as a whole, such as the classic
    /// builder being used because the engine has no BuildKit.
    Notice(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Running,
    Cached,
    Done(Duration),
    Failed(String),
}

/// One step of a finished build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepRecord {
    pub name: String,
    pub cached: bool,
    /// How long it ran; zero when it came from the cache.
    pub elapsed: Duration,
}

/// One layer of a built image, newest last, as the engine's image history gives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerRecord {
    /// The instruction that made it.
    pub created_by: String,
    /// Bytes it adds to the image.
    pub size_bytes: i64,
}

/// The result of a finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub id: String,
    pub size_bytes: i64,
    /// The image's history, oldest first (base image layers included).
    pub layers: Vec<LayerRecord>,
    pub steps: Vec<StepRecord>,
    /// What the build context sent.
    pub context: crate::ContextSummary,
    /// The builder that ran the build (BuildKit may have fallen back to classic).
    pub builder: Builder,
}

impl BuiltImage {
    pub fn cached_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.cached).count()
    }
}

/// One line of container output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// RFC 3339 timestamp when requested.
    pub timestamp: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}
