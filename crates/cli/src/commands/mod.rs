//! One module per command. Each returns a [`CliError`]; only [`crate::run`] turns it into an
//! exit code.

mod backup;
mod build;
mod config;
mod control;
mod deploy;
mod down;
mod exec;
mod logs;
mod proxy;
mod proxy_tls;
mod ps;
mod release_view;
mod releases;
mod run;
mod session;
mod systemd;
mod up;
mod version;
mod watch;

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
    /// Bad usage the argument parser cannot see, e.g. an unknown service name: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The operation failed (a service did not become healthy, …): exit 1.
    #[error("{0}")]
    Failed(String),
    /// Planning found the project cannot be brought up as written: exit 2.
    #[error(transparent)]
    Plan(#[from] berth_deploy::PlanError),
    /// A step failed on the engine; services it touched were put back: exit 1.
    #[error(transparent)]
    Execute(#[from] berth_deploy::ExecuteError),
    /// A backup or restore failed or was refused.
    #[error(transparent)]
    Backup(#[from] berth_backup::BackupError),
    /// A build was refused before it started (exit 2) or failed (exit 1).
    #[error(transparent)]
    Build(#[from] berth_deploy::build::BuildError),
    /// Ctrl-C: stopped between engine calls; rerunning converges.
    #[error("interrupted; run the command again to converge")]
    Interrupted,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Interrupted | CliError::Execute(berth_deploy::ExecuteError::Interrupted) => {
                exit::INTERRUPTED
            }
            CliError::Load(_) | CliError::Usage(_) | CliError::Plan(_) => exit::USAGE,
            CliError::Backup(e) if backup::is_usage(e) => exit::USAGE,
            CliError::Backup(_) => exit::FAILURE,
            CliError::Build(
                berth_deploy::build::BuildError::Dockerfile(_)
                | berth_deploy::build::BuildError::Invalid(_),
            ) => exit::USAGE,
            CliError::Build(_) => exit::FAILURE,
            CliError::Engine(_) | CliError::Io(_) | CliError::Failed(_) | CliError::Execute(_) => {
                exit::FAILURE
            }
        }
    }
}

/// Runs the command; `Ok` carries the exit code (0, or the code of a command run in a
/// container by `exec` and `run`).
pub fn dispatch(cli: Cli) -> Result<u8, CliError> {
    let p = &cli.project;
    let done = |r: Result<(), CliError>| r.map(|()| 0);
    match cli.command {
        Command::Config(a) => done(config::run(p, &a)),
        Command::Version(a) => done(version::run(&a)),
        Command::Build(a) => done(build::run(p, &a)),
        Command::Up(a) => done(up::run(p, &a)),
        Command::Down(a) => done(down::run(p, &a)),
        Command::Ps(a) => done(ps::run(p, &a)),
        Command::Logs(a) => done(logs::run(p, &a)),
        Command::Exec(a) => exec::run(p, &a).map(|c| c as u8),
        Command::Run(a) => run::run(p, &a).map(|c| c as u8),
        Command::Stop(a) => done(control::stop(p, &a)),
        Command::Start(a) => done(control::start(p, &a)),
        Command::Restart(a) => done(control::restart(p, &a)),
        Command::Systemd(a) => done(systemd::run(p, &a)),
        Command::Deploy(a) => done(deploy::deploy(p, &a)),
        Command::Rollback(a) => done(deploy::rollback(p, &a)),
        Command::Releases(a) => done(releases::releases(p, &a)),
        Command::Promote => done(releases::decide(p, true)),
        Command::Abort => done(releases::decide(p, false)),
        Command::Proxy(a) => proxy::run(&a),
        Command::Backup(a) => done(backup::run(p, &a)),
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
