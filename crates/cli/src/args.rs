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
}
