//! One module per command. Each returns a [`CliError`]; only [`crate::run`] turns it into an
//! exit code.

mod config;
mod version;

use crate::args::{Cli, Command, ProjectArgs};
use crate::exit;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The compose project is invalid: bad input, exit 2.
    #[error(transparent)]
    Load(#[from] berth_compose::LoadError),
    /// The Docker Engine could not be reached or refused: the operation failed, exit 1.
    #[error(transparent)]
    Engine(#[from] berth_engine::EngineError),
    /// Writing output failed.
    #[error("{0}")]
    Io(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Load(_) => exit::USAGE,
            CliError::Engine(_) | CliError::Io(_) => exit::FAILURE,
        }
    }
}

pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Config(a) => config::run(&cli.project, &a),
        Command::Version(a) => version::run(&a),
    }
}

/// The second phase of configuration: command-line options plus the process environment,
/// resolved into the loader's options. Nothing is read yet.
pub fn load_options(p: &ProjectArgs) -> berth_compose::LoadOptions {
    berth_compose::LoadOptions {
        working_dir: std::env::current_dir().unwrap_or_else(|_| ".".into()),
        project_directory: p.project_directory.clone(),
        files: p.files.clone(),
        project_name: p.project_name.clone(),
        profiles: p.profiles.clone(),
        env_files: p.env_files.clone(),
        dev: p.dev,
        environment: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    }
}
