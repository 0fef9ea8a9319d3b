//! What a backup or restore reports as it goes, for the CLI to render.

use std::path::PathBuf;
use std::time::Duration;

/// One step of `berth backup create` or `restore`.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupEvent {
    /// The password file did not exist and berth made one: the user must keep a copy.
    PasswordCreated { path: PathBuf },
    /// The repository did not exist and berth made one.
    RepositoryCreated { path: PathBuf },
    /// Containers left stopped by an interrupted backup were started again.
    Recovered { containers: Vec<String> },
    /// A container is stopped so that its data holds still.
    Stopping { container: String },
    /// A container stopped for the snapshot runs again.
    Started { container: String },
    /// An item's snapshot begins.
    ItemStarted { item: String },
    /// An item is in the repository.
    ItemDone {
        item: String,
        snapshot: String,
        /// Bytes read from the source.
        bytes: u64,
        /// Bytes the repository grew by (after deduplication and compression).
        added: u64,
        elapsed: Duration,
    },
    /// Before a restore overwrites its target, the target's own state was saved here.
    SafetySnapshot { item: String, snapshot: String },
    /// A snapshot was written back into its target.
    Restored { item: String, target: String },
}
