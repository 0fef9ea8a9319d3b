//! What the user asked for, before anything is read (the "low" half of two-phase config).

use indexmap::IndexMap;
use std::path::PathBuf;

/// Inputs to [`crate::load`], as given on the command line and by the environment.
///
/// The loader never reads the process environment itself: the CLI hands it over in
/// `environment`, which keeps the loader deterministic and testable.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The directory berth was started in (or `--project-directory`).
    pub working_dir: PathBuf,
    /// `--project-directory`: fixes the project directory instead of the first file's directory.
    pub project_directory: Option<PathBuf>,
    /// `-f` files, in order. Empty means: `COMPOSE_FILE`, else discovery.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--profile`, repeatable.
    pub profiles: Vec<String>,
    /// `--env-file`, repeatable; replaces the project's `.env` when given.
    pub env_files: Vec<PathBuf>,
    /// `--dev`: adds `compose.dev.yaml` (or `docker-compose.dev.yml`) and activates profile `dev`.
    pub dev: bool,
    /// The process environment.
    pub environment: IndexMap<String, String>,
}
