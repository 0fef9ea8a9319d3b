//! The restic-format repository a project's backups live in: where it is, its password,
//! and opening or creating it through rustic_core.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_compose::Project;
use rustic_core::{
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions, RusticError,
};

use crate::{password, BackupError, BackupEvent};

/// Where the project's backups go and which file holds the password; resolved once, before
/// anything is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    pub path: PathBuf,
    pub password_file: PathBuf,
    /// Where the long steps report how far they got (nowhere by default).
    pub meter: crate::meter::Meter,
}

impl RepoConfig {
    /// The repository directory when `x-berth.backups.repository` is not written, relative
    /// to the project directory.
    pub const DEFAULT_REPOSITORY: &'static str = "backups";

    /// Resolves the project's `x-berth.backups` against its directory and the user's
    /// environment: `password_file_env` (`BERTH_BACKUP_PASSWORD_FILE`) wins over the compose
    /// file, which wins over `<config_home>/berth/backup-password`.
    pub fn resolve(
        project: &Project,
        password_file_env: Option<PathBuf>,
        config_home: &Path,
        home: Option<&Path>,
    ) -> RepoConfig {
        let backups = project.berth.backups.clone().unwrap_or_default();
        let repository = backups
            .repository
            .unwrap_or_else(|| Self::DEFAULT_REPOSITORY.to_string());
        let path = project.project_dir.join(expand_home(&repository, home));
        let password_file = password_file_env
            .or_else(|| {
                backups
                    .password_file
                    .map(|p| project.project_dir.join(expand_home(&p, home)))
            })
            .unwrap_or_else(|| config_home.join("berth").join("backup-password"));
        RepoConfig {
            path,
            password_file,
            meter: crate::meter::Meter::default(),
        }
    }
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// An open repository.
pub struct Repo {
    pub config: RepoConfig,
    pub(crate) inner: Repository<OpenStatus>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("config", &self.config)
            .finish()
    }
}

impl Repo {
    /// Opens the repository, creating it (0700) and its password file (0600) when they do
    /// not exist yet; both creations are reported, the password's with its path, because
    /// a repository is lost with its password.
    pub fn open_or_create(
        config: &RepoConfig,
        on: &mut dyn FnMut(BackupEvent),
    ) -> Result<Repo, BackupError> {
        let (password, password_created) = password::read_or_create(&config.password_file)?;
        if password_created {
            on(BackupEvent::PasswordCreated {
                path: config.password_file.clone(),
            });
        }
        let exists = config.path.join("config").exists();
        if !exists {
            create_dir_private(&config.path)?;
        }
        let repo = new_repository(config)?;
        let credentials = Credentials::password(&password);
        let inner = if exists {
            repo.open(&credentials)
                .map_err(|e| open_error(config, &e))?
        } else {
            let opened = repo
                .init(
                    &credentials,
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
                .map_err(|e| rustic_error(config, "creating the repository", &e))?;
            on(BackupEvent::RepositoryCreated {
                path: config.path.clone(),
            });
            opened
        };
        Ok(Repo {
            config: config.clone(),
            inner,
        })
    }

    /// Opens an existing repository; a missing one or a missing password file is an error.
    pub fn open(config: &RepoConfig) -> Result<Repo, BackupError> {
        if !config.path.join("config").exists() {
            return Err(BackupError::NoRepository {
                path: config.path.clone(),
            });
        }
        let password = password::read(&config.password_file)?;
        let inner = new_repository(config)?
            .open(&Credentials::password(&password))
            .map_err(|e| open_error(config, &e))?;
        Ok(Repo {
            config: config.clone(),
            inner,
        })
    }

    /// Maps a rustic error of `operation` on this repository.
    pub(crate) fn error(
        &self,
        operation: &'static str,
    ) -> impl Fn(Box<RusticError>) -> BackupError + '_ {
        err(&self.config, operation)
    }
}

/// Maps a rustic error of `operation` on the repository of `config`.
pub(crate) fn err<'a>(
    config: &'a RepoConfig,
    operation: &'static str,
) -> impl Fn(Box<RusticError>) -> BackupError + 'a {
    move |e| rustic_error(config, operation, &e)
}

fn new_repository(config: &RepoConfig) -> Result<Repository<()>, BackupError> {
    let path = config.path.to_string_lossy().into_owned();
    let backend = rustic_backend::LocalBackend::new(&path, Vec::new())
        .map_err(|e| rustic_error(config, "opening the repository", &e))?;
    let backends = RepositoryBackends::new(Arc::new(backend), None);
    // A local repository is as fast to read as a cache would be; a cache would only be a
    // second copy of the index under the user's home.
    let mut options = RepositoryOptions::default();
    options.no_cache = true;
    Repository::new_with_progress(&options, &backends, config.meter.clone())
        .map_err(|e| rustic_error(config, "opening the repository", &e))
}

fn create_dir_private(path: &Path) -> Result<(), BackupError> {
    let made = std::fs::create_dir_all(path)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)));
    made.map_err(|cause| BackupError::RepositoryDir {
        path: path.to_path_buf(),
        cause,
    })
}

fn open_error(config: &RepoConfig, e: &RusticError) -> BackupError {
    if e.is_incorrect_password() {
        BackupError::WrongPassword {
            repository: config.path.clone(),
            password_file: config.password_file.clone(),
        }
    } else {
        rustic_error(config, "opening the repository", e)
    }
}

pub(crate) fn rustic_error(
    config: &RepoConfig,
    operation: &'static str,
    e: &RusticError,
) -> BackupError {
    if disk_full(e) {
        return BackupError::DiskFull {
            repository: config.path.clone(),
            operation,
        };
    }
    BackupError::Repository {
        repository: config.path.clone(),
        operation,
        message: message(e),
    }
}

/// Whether the cause of `e` is a full disk (ENOSPC, or a full quota), which the user fixes in
/// one way whatever rustic was writing.
fn disk_full(e: &RusticError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            // 28 is ENOSPC and 122 EDQUOT on Linux.
            if matches!(io.raw_os_error(), Some(28 | 122))
                || io.kind() == std::io::ErrorKind::StorageFull
            {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// rustic's own one-line account of an error, without its "Error: " prefix.
pub(crate) fn message(e: &RusticError) -> String {
    let log = e.display_log();
    log.strip_prefix("Error: ")
        .unwrap_or(&log)
        .trim()
        .to_string()
}
