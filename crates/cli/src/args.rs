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
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, else the directory name)
    #[arg(short = 'p', long = "project-name", global = true, value_name = "NAME")]
    pub project_name: Option<String>,
    /// Activate a profile (repeatable)
    #[arg(
        long = "profile",
        id = "profile",
        global = true,
        value_name = "PROFILE"
    )]
    pub profiles: Vec<String>,
    /// Read variables from these files instead of the project's .env (repeatable)
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Use this directory as the project directory instead of the first file's
    #[arg(long = "project-directory", global = true, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Development mode: adds compose.dev.yaml and activates the `dev` profile
    #[arg(long, global = true)]
    pub dev: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the merged, interpolated, normalized project, like `docker compose config`
    Config(ConfigArgs),
    /// Print berth's version and the Docker Engine's
    Version(VersionArgs),
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
