//! A berth snapshot as `berth backup list` shows it.

use std::collections::BTreeMap;

use rustic_core::repofile::SnapshotFile;
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
    /// blake3 of a dump's bytes as they were stored, so a read-back proves them intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_hash: Option<String>,
    /// The keys of a Redis dump, as `redis-check-rdb` counted them in the RDB file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Keys>,
}

/// What `redis-check-rdb` counts in an RDB file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    pub keys: u64,
    /// Keys with a time to live: a server that loads the file later may have dropped them.
    pub expires: u64,
    /// Keys whose time to live had passed when the file was checked.
    pub expired: u64,
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

/// Saves `first`, a dump just archived from a stream, again with its file's true size
/// (`size`, counted as it streamed) and with `recorded`. rustic_core 0.13 leaves a streamed
/// file's size at 0 in its tree node, and restic's `restore` writes a file of the size its
/// node says: without this, `restic restore` of a dump would give an empty file. So the dump
/// is archived a second time, read back from the repository with its size known up front:
/// every chunk is stored already, so nothing is added. The final snapshot keeps the first
/// one's time and summary (what the backup read and added) and is saved before the two
/// before it are deleted, so a crash in between leaves more snapshots, never none.
pub(crate) fn finish_dump(
    config: &crate::RepoConfig,
    first: SnapshotFile,
    path: &std::path::Path,
    size: u64,
    recorded: &Recorded,
) -> Result<SnapshotFile, BackupError> {
    let failed = crate::repository::err(config, "recording the dump's size");
    tokio::task::block_in_place(|| {
        // The index the dump was archived with does not know the blobs it just wrote.
        let fresh = crate::Repo::open(config)?
            .inner
            .to_indexed()
            .map_err(&failed)?;
        let node = fresh
            .node_from_snapshot_and_path(&first, &path.to_string_lossy())
            .map_err(&failed)?;
        let mut template = rustic_core::SnapshotOptions::default()
            .to_snapshot()
            .map_err(&failed)?;
        template.tags = first.tags.clone();
        template.time = first.time.clone();
        template.hostname = first.hostname.clone();
        let (reader, mut writer) = std::io::pipe().map_err(|cause| BackupError::Repository {
            repository: config.path.clone(),
            operation: "recording the dump's size",
            message: format!("cannot make a pipe: {cause}"),
        })?;
        let source = crate::dump::StreamSource::sized(path.to_path_buf(), Box::new(reader), size);
        let mut options = rustic_core::BackupOptions::default();
        options.parent_opts.force = true;
        let second = std::thread::scope(|scope| {
            let feeder = scope.spawn(|| {
                let fed = fresh.dump(&node, &mut writer);
                drop(writer);
                fed
            });
            let archived = fresh.archive(&options, &source, template, &[path.to_path_buf()]);
            let fed = feeder.join().unwrap_or_else(|_| {
                Err(rustic_core::RusticError::new(
                    rustic_core::ErrorKind::Internal,
                    "the dump's second pass ended early",
                ))
            });
            fed.and(archived)
        })
        .map_err(&failed)?;
        let mut last = second.clone();
        last.summary.clone_from(&first.summary);
        last.description = recorded.to_description();
        fresh.save_snapshots(vec![last.clone()]).map_err(&failed)?;
        fresh
            .delete_snapshots(&[first.id, second.id])
            .map_err(&failed)?;
        let saved = fresh
            .get_all_snapshots()
            .map_err(&failed)?
            .into_iter()
            .find(|s| {
                s.tree == last.tree && s.description == last.description && s.time == last.time
            })
            .unwrap_or(last);
        Ok(saved)
    })
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
