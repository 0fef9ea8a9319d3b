//! Why the state store cannot do what was asked. Every message is lowercase, names the database
//! file when the file is the problem, and says what to do next, because the CLI prints it as is.

use std::path::PathBuf;

/// An error from [`crate::store::Store`].
///
/// Causes from SQLite and the file system are kept as text: the message already contains
/// them, and text keeps the error `Clone` and comparable in tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {}: {cause}; create it or check its permissions", .dir.display())]
    CreateDir { dir: PathBuf, cause: String },

    #[error("cannot open the state database {}: {cause}; check that the file and its directory are writable", .path.display())]
    Open { path: PathBuf, cause: String },

    #[error("state database {} is not readable ({cause}); move it aside to start a new history", .path.display())]
    Corrupt { path: PathBuf, cause: String },

    #[error("state database {} has schema version {found}, but this berth knows only up to version {supported}; upgrade berth, or move the file aside to start a new history", .path.display())]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("state database {} stayed locked by another process for 5 s; wait for the other berth command to finish and try again", .path.display())]
    Busy { path: PathBuf },

    #[error("state database {}: {cause}; check free disk space and the file's permissions", .path.display())]
    Database { path: PathBuf, cause: String },

    #[error("project `{project}` has no release {number}; `berth releases` lists the ones it has")]
    UnknownRelease { project: String, number: u64 },

    #[error("release {number} of project `{project}` has already finished ({status}); a finished release cannot change")]
    NotRunning {
        project: String,
        number: u64,
        status: String,
    },

    #[error("project `{project}` still has release {number} running, left by an interrupted deploy; converge it (finish or revert it) before starting another")]
    AlreadyRunning { project: String, number: u64 },

    #[error("a release of project `{project}` lists service `{service}` twice; each service has one image per release")]
    DuplicateService { project: String, service: String },
}
