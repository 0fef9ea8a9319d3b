//! Command-line arguments: the "low" phase of configuration, plain data with no I/O.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Takes a Docker Compose project to a server and keeps it running",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The options Compose itself takes, with the same names and variables.
#[derive(Debug, Args, Clone, Default)]
pub struct ProjectArgs {
    /// Compose configuration files (repeatable); default: compose.yaml and its override file
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, else the directory name)
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Activate a profile (repeatable)
    #[arg(long = "profile", id = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Read variables from these files instead of the project's .env (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Use this directory as the project directory instead of the first file's
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Development mode: adds compose.dev.yaml and activates the `dev` profile
    #[arg(long)]
    pub dev: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the merged, interpolated, normalized project, like `docker compose config`
    Config(ConfigArgs),
    /// Print berth's version and the Docker Engine's
    Version(VersionArgs),
    /// Build the services' images with BuildKit, in parallel, and report what each build cost
    Build(BuildArgs),
    /// Create and start the project's containers, in dependency order
    Up(UpArgs),
    /// Stop and remove the project's containers and networks (and volumes with -v)
    Down(DownArgs),
    /// List the project's containers
    Ps(PsArgs),
    /// Show the output of the project's containers
    Logs(LogsArgs),
    /// Run a command in a running service container
    Exec(ExecArgs),
    /// Run a one-off command in a new container of a service
    Run(RunArgs),
    /// Stop service containers without removing them
    Stop(StopArgs),
    /// Start stopped service containers
    Start(ServicesArgs),
    /// Restart service containers
    Restart(StopArgs),
    /// Write a systemd unit that brings the project up at boot
    Systemd(SystemdArgs),
    /// Roll changed services out without downtime, behind the proxy, with automatic rollback
    Deploy(DeployArgs),
    /// Deploy an earlier release's images again, through the same zero-downtime path
    Rollback(RollbackArgs),
    /// List the project's releases
    Releases(ReleasesArgs),
    /// Move the running canary to all traffic now (also ends a `pause: true` step)
    Promote,
    /// Send all traffic back to stable and roll the running canary back
    Abort,
    /// The host's reverse proxy: run it, boot it as a container, inspect and steer it
    Proxy(Box<ProxyArgs>),
    /// Back up databases, volumes and bind-mounted data into a restic-format repository
    Backup(BackupArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up the project (or SVC...) as one consistent set: dumps online, volumes and bind
    /// mounts with their writers stopped
    Create(BackupCreateArgs),
    /// List the project's snapshots
    List(BackupListArgs),
    /// Write a snapshot back into its volume, directory or database
    Restore(BackupRestoreArgs),
    /// Read a snapshot back, restore it into a scratch volume or database, and compare
    Verify(BackupVerifyArgs),
    /// Remove the snapshots a keep policy does not keep (never an item's newest verified one)
    Prune(BackupPruneArgs),
    /// Run create, prune and verify of the newest snapshot on a timer (systemd) or from cron
    Schedule(BackupScheduleArgs),
}

#[derive(Debug, Args)]
pub struct BackupPruneArgs {
    /// Keep the N newest snapshots of each item
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N weeks that have one
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Show what would be removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct BackupScheduleArgs {
    /// How often: 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d (at 03:00) or 1w (Mondays at 03:00)
    #[arg(long, value_name = "PERIOD")]
    pub every: String,
    /// Print a crontab line instead of systemd units
    #[arg(long, conflicts_with_all = ["install", "user"])]
    pub cron: bool,
    /// Write the timer and service and enable the timer (otherwise print them)
    #[arg(long)]
    pub install: bool,
    /// User units (~/.config/systemd/user) instead of system units
    #[arg(long)]
    pub user: bool,
}

#[derive(Debug, Args)]
pub struct BackupVerifyArgs {
    /// The snapshot: its id or the 8-character id `backup list` shows
    #[arg(required_unless_present = "latest", conflicts_with = "latest")]
    pub snapshot: Option<String>,
    /// The project's newest snapshot
    #[arg(long)]
    pub latest: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct BackupCreateArgs {
    /// A tag added to every snapshot of this backup (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Stop the services that write to a volume or bind mount while it is read (default)
    #[arg(long, overrides_with = "no_stop")]
    pub stop: bool,
    /// Read volumes while their writers run; refused for a volume holding database files
    #[arg(long)]
    pub no_stop: bool,
    /// Output: text, or one JSON object per snapshot
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// Services to back up (default: all)
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BackupListArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct BackupRestoreArgs {
    /// The snapshot: its id, the 8-character id `backup list` shows, or `latest`
    pub snapshot: String,
    /// Restore into another volume (compose key or engine name), directory, or service
    #[arg(long, value_name = "TARGET")]
    pub into: Option<String>,
    /// Replace a target that holds data (berth takes a safety snapshot of it first)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// Rollout strategy for routed services [default: each service's x-berth.strategy, else
    /// rolling]
    #[arg(long, value_parser = ["rolling", "blue-green", "canary"])]
    pub strategy: Option<String>,
    /// Blue-green: how long the previous set stays running after the switch, for an instant
    /// rollback (e.g. 5m, 0s)
    #[arg(long, value_name = "DURATION")]
    pub keep_old: Option<String>,
    /// Build images with `build:` before deploying, even when they exist
    #[arg(long)]
    pub build: bool,
    /// Skip the backup of the services with x-berth.backup that runs before a release command
    #[arg(long)]
    pub no_backup: bool,
    /// Output: live text, or one JSON event per line
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// The proxy's admin socket [default: $BERTH_PROXY_SOCKET, else the proxy's default]
    #[arg(long, value_name = "PATH")]
    pub admin_socket: Option<PathBuf>,
    /// Services to deploy (default: every service whose configuration or image changed)
    pub services: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    /// The release to return to [default: the last succeeded release before the current one]
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<u64>,
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// The proxy's admin socket [default: $BERTH_PROXY_SOCKET, else the proxy's default]
    #[arg(long, value_name = "PATH")]
    pub admin_socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The proxy's admin socket [default: $BERTH_PROXY_SOCKET, else /run/berth/proxy.sock
    /// as root, else $XDG_RUNTIME_DIR/berth/proxy.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub admin_socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ProxyCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Run the proxy in this process until Ctrl-C or SIGTERM
    Run(ProxyRunArgs),
    /// Build the proxy image from this binary and run it as container `berth-proxy`, or
    /// upgrade the running one without a gap
    Boot(ProxyBootArgs),
    /// PID 1 of the proxy container: runs `proxy run` as a child and swaps it for a newer
    /// binary on SIGHUP
    #[command(hide = true)]
    Supervise(ProxyRunArgs),
    /// Show routes, target sets, health and in-flight requests
    Status(ProxyStatusArgs),
    /// Add, replace or remove routes
    #[command(subcommand)]
    Route(ProxyRouteCommand),
    /// Move a route to a new set of targets: wait until healthy, switch, drain the old set
    Deploy(ProxyDeployArgs),
    /// Set the relative weights of a route's target sets (canary)
    Weights(ProxyWeightsArgs),
    /// Hold a route's new requests until `resume` (each for at most --hold)
    Pause(ProxyPauseArgs),
    /// Release requests held by `pause`
    Resume(ProxyRouteName),
    /// Answer a route's requests with 503 and a message, or stop doing so with --off
    Maintenance(ProxyMaintenanceArgs),
    /// Stop the proxy container (it drains first); `boot`, `up` or `deploy` start it again
    Stop,
    /// Show the proxy container's output
    Logs(ProxyLogsArgs),
}

#[derive(Debug, Args)]
pub struct ProxyLogsArgs {
    /// Follow new output
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ProxyRunArgs {
    /// Plain HTTP (HTTP/1.1 and h2c) listener (repeatable) [default: 0.0.0.0:80 unless
    /// --tls-listen is given]
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// TLS listener, HTTP/1.1 and HTTP/2 by ALPN (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Vec<String>,
    /// Prometheus metrics listener (serves /metrics)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Where routes are kept across restarts [default: /var/lib/berth/proxy/state.json as
    /// root, else ~/.local/state/berth/proxy/state.json]
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Where TLS certificates are kept [default: beside the state file, certs/]
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Certificate for a host, as HOST=CERT.pem:KEY.pem (repeatable)
    #[arg(long, value_name = "HOST=CERT:KEY")]
    pub cert: Vec<String>,
    /// ACME directory URL for automatic certificates (http-01)
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// Contact e-mail for the ACME account
    #[arg(long, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// Extra CA certificate (PEM) to trust for the ACME server, e.g. a test CA
    #[arg(long, value_name = "PATH")]
    pub acme_ca: Option<PathBuf>,
    /// Hosts to get ACME certificates for (repeatable)
    #[arg(long = "acme-host", value_name = "HOST")]
    pub acme_hosts: Vec<String>,
    /// JSON access log: `off`, `stdout`, or a file path
    #[arg(long, value_name = "WHERE", default_value = "stdout")]
    pub access_log: String,
    /// Largest request body accepted, in bytes (larger ones get 413)
    #[arg(long, value_name = "BYTES")]
    pub max_body: Option<u64>,
    /// A client must send its request headers within this (e.g. 10s)
    #[arg(long, value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// Threads serving requests [default: one per CPU]
    #[arg(long, value_name = "N", env = "BERTH_PROXY_WORKERS")]
    pub workers: Option<usize>,
    /// Take the listening sockets over from the proxy running on the same admin socket,
    /// then let it drain: an upgrade with no refused connection
    #[arg(long)]
    pub takeover: bool,
}

#[derive(Debug, Args)]
pub struct ProxyBootArgs {
    /// Host address the proxy publishes for plain HTTP
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:80")]
    pub listen: String,
    /// Host address the proxy publishes for TLS
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<String>,
    /// Host directory for the proxy's state, certificates and binaries [default:
    /// /var/lib/berth/proxy as root, else ~/.local/state/berth/proxy]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The statically linked berth binary to run in the container [default: this binary]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Recreate the proxy container even when it runs this binary (its ports close for a
    /// moment; use it to change --listen or --tls-listen)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ProxyStatusArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

#[derive(Debug, Subcommand)]
pub enum ProxyRouteCommand {
    /// Add a route, or replace the route of that name
    Add(ProxyRouteAddArgs),
    /// Remove a route
    Rm(ProxyRouteName),
}

#[derive(Debug, Args)]
pub struct ProxyRouteName {
    /// The route's name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ProxyRouteAddArgs {
    /// The route's name (berth uses PROJECT-SERVICE)
    pub name: String,
    /// Host name or *.wildcard the route serves (repeatable; none means every host)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Path prefix the route serves
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub path_prefix: String,
    /// Targets' health endpoint (without one, an accepted TCP connection counts as healthy)
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// Target address IP:PORT (repeatable)
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Id of the target set
    #[arg(long, value_name = "ID", default_value = "initial")]
    pub set: String,
}

#[derive(Debug, Args)]
pub struct ProxyDeployArgs {
    /// The route to deploy
    pub name: String,
    /// New target address IP:PORT (repeatable)
    #[arg(long = "target", value_name = "ADDR", required = true)]
    pub targets: Vec<String>,
    /// Id of the new set [default: a timestamp]
    #[arg(long, value_name = "ID")]
    pub set: Option<String>,
    // Both timeouts default to the proxy's own defaults; the help text is built from those
    // constants so that it cannot drift from the value used when the flag is left out.
    #[arg(
        long,
        value_name = "DURATION",
        help = with_default(
            "How long the new targets may take to become healthy",
            berth_proxy_api::DEFAULT_HEALTH_TIMEOUT,
        )
    )]
    pub health_timeout: Option<String>,
    #[arg(
        long,
        value_name = "DURATION",
        help = with_default(
            "How long in-flight requests and WebSockets on the old set may take to finish",
            berth_proxy_api::DEFAULT_DRAIN_TIMEOUT,
        )
    )]
    pub drain_timeout: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct ProxyWeightsArgs {
    /// The route
    pub name: String,
    /// SET=WEIGHT pairs, e.g. stable=90 canary=10
    #[arg(required = true, value_name = "SET=WEIGHT")]
    pub weights: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProxyPauseArgs {
    /// The route
    pub name: String,
    /// Longest a request is held before it gets a 503
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub hold: String,
}

#[derive(Debug, Args)]
pub struct ProxyMaintenanceArgs {
    /// The route
    pub name: String,
    /// Message shown with the 503
    #[arg(long, value_name = "TEXT", required_unless_present = "off")]
    pub message: Option<String>,
    /// End maintenance
    #[arg(long, conflicts_with = "message")]
    pub off: bool,
}

#[derive(Debug, Args, Clone)]
pub struct BuildArgs {
    /// Run every step again instead of answering from the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Pull base images: only `never` is possible, since berth never pulls (the default)
    #[arg(long, value_enum, default_value_t)]
    pub pull: PullPolicy,
    /// Builds run at once (default: the number of cores)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// How the build's progress is shown: a live view on a terminal (auto), lines, or JSON
    /// events, one per line, on standard error
    #[arg(long, value_enum, default_value_t)]
    pub progress: ProgressMode,
    /// Which builder to use, over each service's `x-berth.builder`
    #[arg(long, value_enum)]
    pub builder: Option<BuilderArg>,
    /// The final report: text, or one JSON document on standard output
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// Services to build (default: every service with `build:`)
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum PullPolicy {
    #[default]
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ProgressMode {
    #[default]
    Auto,
    Plain,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BuilderArg {
    Buildkit,
    Classic,
}

#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// Return once the containers are started (berth never attaches; kept for Compose habits)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Build images before starting, even when they exist
    #[arg(long)]
    pub build: bool,
    /// Wait until every service is healthy (or running, without a healthcheck)
    #[arg(long)]
    pub wait: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Remove containers of services no longer in the project
    #[arg(long)]
    pub remove_orphans: bool,
    /// Recreate containers even when their configuration did not change
    #[arg(long)]
    pub force_recreate: bool,
    /// Seconds to wait for a container to stop before killing it
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// After the services are up (and healthy), stay in the foreground and apply the
    /// services' `develop.watch` rules to file changes until Ctrl-C
    #[arg(long, conflicts_with = "dry_run")]
    pub watch: bool,
    /// Services to bring up (default: all); their dependencies come too
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also remove the project's named volumes (never external ones)
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove images: `local` removes those berth built for the project
    #[arg(long, value_name = "local")]
    pub rmi: Option<String>,
    /// Seconds to wait for a container to stop before killing it
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Also remove containers of services no longer in the project
    #[arg(long)]
    pub remove_orphans: bool,
    /// Only these services' containers and routes (default: the whole project)
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: a table, or one JSON object per line
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// Show stopped containers too
    #[arg(short, long)]
    pub all: bool,
    /// Only these services
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following new output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines from the end of each container's log
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only these services
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Do not allocate a TTY
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Which replica (1-based)
    #[arg(long, default_value_t = 1)]
    pub index: u64,
    /// Run as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Extra environment variables (KEY=VALUE)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Do not allocate a TTY
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Extra environment variables (KEY=VALUE)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's entrypoint
    #[arg(long)]
    pub entrypoint: Option<String>,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for a container to stop before killing it
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Only these services
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Only these services
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// Write the unit and enable it (otherwise print it)
    #[arg(long)]
    pub install: bool,
    /// A user unit (~/.config/systemd/user) instead of a system unit
    #[arg(long)]
    pub user: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum TextFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Print only the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print only the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print only the profile names, one per line
    #[arg(long = "profiles", id = "list_profiles")]
    pub profiles: bool,
    /// Only validate; print nothing on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the output to this file instead of standard output (atomically)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
}

/// A flag's help line ending in `[default: 30s]`, as clap writes it for a default value,
/// for flags whose default is a `Duration` constant rather than text.
fn with_default(help: &str, default: std::time::Duration) -> String {
    let default = if default.subsec_nanos() == 0 {
        format!("{}s", default.as_secs())
    } else {
        berth_compose::duration::format_go(default)
    };
    format!("{help} [default: {default}]")
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    /// clap checks flag clashes (like two `-f`s) only when a command is parsed; this checks
    /// every subcommand up front.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        // Subcommands are only fully built when used; these parse each one with its flags.
        for line in [
            "berth -f a.yaml -p x --profile p --dev logs -f -t --tail 5 web",
            "berth up -d --wait --build --dry-run --remove-orphans -t 3 web",
            "berth down -v --rmi local -t 1",
            "berth ps -a --format json",
            "berth exec -T --index 2 -u root -w / -e A=1 web sh -c true",
            "berth run --rm -T -e A=1 web migrate --noinput",
            "berth stop -t 1 web",
            "berth start web",
            "berth restart web",
            "berth systemd --user",
            "berth config --format json --services",
            "berth version --format json",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            if let Err(e) = Cli::try_parse_from(&args) {
                panic!("{line}: {e}");
            }
        }
    }

    /// The timeouts of `berth proxy deploy` default to the proxy's constants, and `--help`
    /// says so the way clap says it for a default value.
    #[test]
    fn proxy_deploy_help_names_the_proxy_defaults() {
        let mut cli = Cli::command();
        let deploy = cli
            .find_subcommand_mut("proxy")
            .and_then(|p| p.find_subcommand_mut("deploy"))
            .expect("berth proxy deploy exists")
            .render_help()
            .to_string();
        assert!(deploy.contains("become healthy [default: 60s]"), "{deploy}");
        assert!(
            deploy.contains("may take to finish [default: 30s]"),
            "{deploy}"
        );
    }
}
