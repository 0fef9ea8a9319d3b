//! What can go wrong in a backup or a restore, each with what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot read the backup password file {}: {cause}; check its permissions, or point x-berth.backups.password_file at the right file", path.display())]
    PasswordRead {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot create the backup password file {}: {cause}; check that its directory is writable", path.display())]
    PasswordCreate {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the backup password file {} is empty; write the repository's password into it", path.display())]
    PasswordEmpty { path: PathBuf },
    #[error("the password in {} does not open the backup repository {}; use the password file this repository was created with", password_file.display(), repository.display())]
    WrongPassword {
        repository: PathBuf,
        password_file: PathBuf,
    },
    #[error("there is no backup repository at {}; `berth backup create` makes one", path.display())]
    NoRepository { path: PathBuf },
    #[error("cannot create the backup repository directory {}: {cause}; check that its parent is writable", path.display())]
    RepositoryDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The repository refused or failed an operation; `message` is rustic's, which names
    /// the file at fault (a damaged pack, a missing index).
    #[error("backup repository {}: {operation} failed: {message}", repository.display())]
    Repository {
        repository: PathBuf,
        operation: &'static str,
        message: String,
    },
    /// The repository's disk filled up mid-way: nothing is listed as a snapshot, and the
    /// data being backed up was only read.
    #[error("backup repository {}: the disk is full ({operation} stopped); free space there or move the repository (x-berth.backups.repository), then run the backup again: the data being backed up is untouched", repository.display())]
    DiskFull {
        repository: PathBuf,
        operation: &'static str,
    },
    #[error(transparent)]
    Engine(#[from] berth_engine::EngineError),
    #[error("no such service `{service}` in project `{project}`; services: {known}")]
    UnknownService {
        service: String,
        project: String,
        known: String,
    },
    #[error(
        "service `{service}` has no running container; start it with `berth up {service}` first"
    )]
    NotRunning { service: String },
    #[error("{what} in service `{service}` failed with exit code {code}: {stderr}")]
    Command {
        service: String,
        what: &'static str,
        code: i64,
        stderr: String,
    },
    #[error("volume `{volume}` does not exist; `berth up` creates the project's volumes")]
    NoVolume { volume: String },
    #[error("cannot read volume `{volume}` at {}: {cause}; run berth as root on the Docker host", path.display())]
    VolumeUnreadable {
        volume: String,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot read {} (bind-mounted data): {cause}", path.display())]
    BindUnreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("volume `{volume}` holds the database files of service `{service}`; copying them while it runs is not a backup: drop --no-stop, or set x-berth.backup: postgres on the service")]
    LiveDatabase { volume: String, service: String },
    #[error("no snapshot `{0}` in the backup repository; `berth backup list` shows them")]
    NoSnapshot(String),
    #[error(
        "snapshot {0} was not made by berth (it has no berth item tag); restore it with restic"
    )]
    NotBerth(String),
    #[error("snapshot {snapshot} belongs to project `{project}`, not this one; run the restore from that project")]
    OtherProject { snapshot: String, project: String },
    #[error("{target} is not empty; add --force to replace it (berth takes a safety snapshot of it first)")]
    TargetNotEmpty { target: String },
    #[error("volume `{volume}` is used by container `{container}`, which is not part of project `{project}`; stop or remove it first")]
    ForeignUser {
        volume: String,
        container: String,
        project: String,
    },
    #[error("--into `{into}` fits no {what} of project `{project}`")]
    BadInto {
        into: String,
        what: &'static str,
        project: String,
    },
    #[error("cannot write the backup journal {}: {cause}; check that the state directory is writable", path.display())]
    Journal {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("container `{container}` did not come back after the backup: {outcome}; see `berth logs {service}`")]
    NotBack {
        container: String,
        service: String,
        outcome: String,
    },
    #[error("snapshot {snapshot} is damaged: {detail}; restore from another snapshot (`berth backup list`) and run `restic check` on the repository")]
    Damaged { snapshot: String, detail: String },
    #[error("snapshot {snapshot} restored, but {detail}; do not rely on it")]
    Mismatch { snapshot: String, detail: String },
    #[error("the scratch {what} for verifying did not start: {detail}")]
    Scratch { what: &'static str, detail: String },
}
