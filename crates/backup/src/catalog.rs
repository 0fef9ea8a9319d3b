//! Which snapshots `backup verify` proved restorable, and when: a small file in berth's
//! state directory. Snapshots themselves are immutable (rewriting one changes its id), so
//! the result lives beside the repository, not in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BackupError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Entries {
    /// Full snapshot id → when it was verified (RFC 3339, UTC).
    verified: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    path: PathBuf,
    entries: Entries,
}

impl Catalog {
    /// `<state dir>/backup-verified.json`; missing or unreadable means nothing verified yet.
    pub fn open(state_dir: &Path) -> Catalog {
        let path = state_dir.join("backup-verified.json");
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Catalog { path, entries }
    }

    pub fn verified_at(&self, id: &str) -> Option<String> {
        self.entries.verified.get(id).cloned()
    }

    /// Records that `id` was verified at `at` and writes the catalog (atomically).
    pub fn record(&mut self, id: &str, at: &str) -> Result<(), BackupError> {
        self.entries.verified.insert(id.to_string(), at.to_string());
        let journal_error = |cause| BackupError::Journal {
            path: self.path.clone(),
            cause,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(journal_error)?;
        }
        let text = serde_json::to_vec_pretty(&self.entries).map_err(|e| journal_error(e.into()))?;
        berth_base::atomic::write(&self.path, &text).map_err(journal_error)
    }
}
