//! The journal of containers a backup or restore stopped: written before the first stop,
//! removed after the last start, so that a berth killed in between leaves a record from
//! which the next berth command starts them again.

use std::path::{Path, PathBuf};

use berth_engine::Engine;
use serde::{Deserialize, Serialize};

use crate::BackupError;

/// One stopped container, by id (to start it) and name (to say which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedContainer {
    pub id: String,
    pub name: String,
}

/// `<state dir>/backup-stopped-<project>.json`: the containers in the order they start.
#[derive(Debug, Clone)]
pub struct StoppedJournal {
    path: PathBuf,
}

impl StoppedJournal {
    pub fn new(state_dir: &Path, project: &str) -> StoppedJournal {
        StoppedJournal {
            path: state_dir.join(format!("backup-stopped-{project}.json")),
        }
    }

    /// Records `containers` (in start order) before any of them is stopped.
    pub fn write(&self, containers: &[StoppedContainer]) -> Result<(), BackupError> {
        let journal_error = |cause| BackupError::Journal {
            path: self.path.clone(),
            cause,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(journal_error)?;
        }
        let text = serde_json::to_vec_pretty(containers).map_err(|e| journal_error(e.into()))?;
        berth_base::atomic::write(&self.path, &text).map_err(journal_error)
    }

    /// The containers an interrupted run left stopped; empty when there is no journal.
    pub fn read(&self) -> Vec<StoppedContainer> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Ends the record: every container in it runs again.
    pub fn clear(&self) -> Result<(), BackupError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(cause) => Err(BackupError::Journal {
                path: self.path.clone(),
                cause,
            }),
        }
    }
}

/// Starts every container an interrupted backup or restore left stopped and clears the
/// journal; returns their names. Containers removed meanwhile are skipped.
pub async fn recover(
    engine: &Engine,
    journal: &StoppedJournal,
) -> Result<Vec<String>, BackupError> {
    let stopped = journal.read();
    let mut started = Vec::new();
    for c in &stopped {
        match engine.inspect_container(&c.id).await? {
            Some(found) if found.state != "running" => {
                engine.start_container(&c.id).await?;
                started.push(c.name.clone());
            }
            _ => {}
        }
    }
    journal.clear()?;
    Ok(started)
}
