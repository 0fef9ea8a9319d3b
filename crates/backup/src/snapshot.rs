//! A berth snapshot as `berth backup list` shows it.

use std::collections::BTreeMap;

use rustic_core::repofile::SnapshotFile;
use rustic_core::{IndexedIds, Repository};
use serde::{Deserialize, Serialize};

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
    /// When `backup verify` last restored and probed it, RFC 3339, UTC.
    pub verified_at: Option<String>,
}

/// What berth records of an item at backup time, for `verify` to compare against; kept as
/// JSON in the snapshot's description (restic keeps and ignores the field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The source's [`crate::tree_hash::tree_hash`] (volumes and bind mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_hash: Option<String>,
    /// Rows per table (`schema.table`), counted in the dump's own transaction snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<BTreeMap<String, u64>>,
}

impl Recorded {
    pub(crate) fn of(snap: &SnapshotFile) -> Recorded {
        snap.description
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }

    pub(crate) fn to_description(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}

/// Replaces the saved snapshot `snap` by one that carries `recorded`: the new one is saved
/// before the old one is deleted, so a crash in between leaves two, never none.
pub(crate) fn describe<S: IndexedIds>(
    repo: &Repository<S>,
    snap: SnapshotFile,
    recorded: &Recorded,
) -> rustic_core::RusticResult<SnapshotFile> {
    let mut described = snap.clone();
    described.description = recorded.to_description();
    repo.save_snapshots(vec![described.clone()])?;
    repo.delete_snapshots(&[snap.id])?;
    let saved = repo
        .get_all_snapshots()?
        .into_iter()
        .find(|s| {
            s.time == described.time
                && s.tree == described.tree
                && s.description == described.description
        })
        .unwrap_or(described);
    Ok(saved)
}

/// The first 8 characters of a snapshot id, which restic and berth accept wherever an id goes.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// The snapshot `wanted` names (an id, a prefix of one, or `latest` for the project's newest),
/// checked to be berth's and this project's: what `restore` and `verify` act on.
pub(crate) fn own(
    repo: &Repo,
    project: &str,
    wanted: &str,
) -> Result<(SnapshotFile, Snapshot), BackupError> {
    let id = if wanted == "latest" {
        of_project(repo, project)?
            .pop()
            .map(|s| s.id)
            .ok_or_else(|| BackupError::NoSnapshot(wanted.to_string()))?
    } else {
        wanted.to_string()
    };
    let snap = repo
        .inner
        .get_snapshot_from_str(&id, |_| true)
        .map_err(|_| BackupError::NoSnapshot(id.clone()))?;
    let listed = Snapshot::from_file(&snap).ok_or_else(|| BackupError::NotBerth(id.clone()))?;
    if listed.project() != Some(project) {
        return Err(BackupError::OtherProject {
            project: listed.project().unwrap_or("").to_string(),
            snapshot: listed.short_id,
        });
    }
    Ok((snap, listed))
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
            short_id: short_id(&id).to_string(),
            id,
            time: snap.time.timestamp().to_string(),
            unix_time: snap.time.timestamp().as_second(),
            item: tag_value(&tags, "item").unwrap_or("").to_string(),
            kind: tag_value(&tags, "kind").unwrap_or("").to_string(),
            bytes: summary.total_bytes_processed,
            added: summary.data_added_packed,
            verified_at: None,
            tags,
        })
    }

    /// The project the snapshot was made for.
    pub fn project(&self) -> Option<&str> {
        tag_value(&self.tags, "project")
    }
}

/// The project's snapshots, oldest first, with when each was last verified.
pub fn list(
    repo: &Repo,
    project: &str,
    catalog: &crate::catalog::Catalog,
) -> Result<Vec<Snapshot>, BackupError> {
    let mut snaps = of_project(repo, project)?;
    for s in &mut snaps {
        s.verified_at = catalog.verified_at(&s.id);
    }
    Ok(snaps)
}

/// The project's snapshots, oldest first.
fn of_project(repo: &Repo, project: &str) -> Result<Vec<Snapshot>, BackupError> {
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
