//! A berth snapshot as `berth backup list` shows it.

use serde::Serialize;

use crate::item::{tag_value, TAG};
use crate::{BackupError, Repo};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The full id, as restic prints it with `--no-lock snapshots --json`.
    pub id: String,
    /// The first 8 characters, which restic and berth accept wherever an id goes.
    pub short_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub unix_time: i64,
    pub item: String,
    pub kind: String,
    pub tags: Vec<String>,
    /// Bytes read from the source.
    pub bytes: u64,
    /// Bytes the repository grew by when the snapshot was made.
    pub added: u64,
}

impl Snapshot {
    pub(crate) fn from_file(snap: &rustic_core::repofile::SnapshotFile) -> Option<Snapshot> {
        let tags: Vec<String> = snap.tags.iter().cloned().collect();
        if !tags.iter().any(|t| t == TAG) {
            return None;
        }
        let id = snap.id.to_hex().to_string();
        let summary = snap.summary.clone().unwrap_or_default();
        Some(Snapshot {
            short_id: id.chars().take(8).collect(),
            id,
            time: snap.time.timestamp().to_string(),
            unix_time: snap.time.timestamp().as_second(),
            item: tag_value(&tags, "item").unwrap_or("").to_string(),
            kind: tag_value(&tags, "kind").unwrap_or("").to_string(),
            bytes: summary.total_bytes_processed,
            added: summary.data_added_packed,
            tags,
        })
    }

    /// The project the snapshot was made for.
    pub fn project(&self) -> Option<&str> {
        tag_value(&self.tags, "project")
    }
}

/// The project's snapshots, oldest first.
pub fn list(repo: &Repo, project: &str) -> Result<Vec<Snapshot>, BackupError> {
    let mut snaps: Vec<Snapshot> = repo
        .inner
        .get_all_snapshots()
        .map_err(repo.error("listing snapshots"))?
        .iter()
        .filter_map(Snapshot::from_file)
        .filter(|s| s.project() == Some(project))
        .collect();
    snaps.sort_by(|a, b| (a.unix_time, &a.id).cmp(&(b.unix_time, &b.id)));
    Ok(snaps)
}
