//! The per-project deploy lock (issue 5, "Crash safety and concurrency"): a second `berth deploy`
//! of a project that is being deployed is refused with who is deploying it and since when.
//!
//! The lock is an advisory `flock(LOCK_EX | LOCK_NB)` on `<dir>/<project>.lock` (std's
//! `File::try_lock`, which is `flock` on Linux). The kernel ties it to the open file, so it is
//! released when the [`ProjectLock`] is dropped and also when the process dies in any way,
//! `kill -9` included. There is therefore never a stale lock to detect or break: a lock file
//! that exists but is not locked is simply free, and its contents are only a note about the
//! last holder.
//!
//! The lock file is never deleted. Unlinking it would let two processes hold "the" lock at
//! once: one still locked on the unlinked file, the other on a newly created one.

use crate::clock::{format_utc, now_ms};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Who holds a project lock, written into the lock file so that the refused command can say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// The berth subcommand, for example `deploy` or `rollback`.
    pub command: String,
    /// Unix milliseconds when the lock was taken.
    pub since: u64,
}

impl Holder {
    /// This process, running `command`, from now on.
    pub fn current(command: impl Into<String>) -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            command: command.into(),
            since: now_ms(),
        }
    }
}

/// The host name from `/etc/hostname`, else `$HOSTNAME`, else `unknown`. The host matters when
/// the state directory is shared, so that a pid is not looked for on the wrong machine.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Why a project lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock. `holder` is `None` when it has not written its note yet
    /// (it does so right after locking) or the note is unreadable.
    #[error("{}", held_message(.project, .holder.as_ref(), .path))]
    Held {
        project: String,
        holder: Option<Holder>,
        path: PathBuf,
    },

    #[error("project name {project:?} cannot name a lock file; use the project's Compose name")]
    InvalidProject { project: String },

    #[error("cannot use the lock file {}: {cause}; check that its directory is writable", .path.display())]
    Io { path: PathBuf, cause: String },
}

fn held_message(project: &str, holder: Option<&Holder>, path: &Path) -> String {
    match holder {
        Some(h) => format!(
            "project `{project}` is locked by `berth {}` (pid {} on host {}) since {}; wait for it to finish",
            h.command,
            h.pid,
            h.host,
            format_utc(h.since)
        ),
        None => format!(
            "project `{project}` is locked by another berth process (lock file {}); wait for it to finish",
            path.display()
        ),
    }
}

/// A held project lock; dropping it releases the lock.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
    path: PathBuf,
    project: String,
}

impl ProjectLock {
    /// Takes the lock of `project` in `dir` (created with mode 0700 when missing) without
    /// waiting, and records `holder` in it. When another process (or another `ProjectLock` in
    /// this one) holds it, returns [`LockError::Held`] with that holder's note.
    pub fn acquire(dir: &Path, project: &str, holder: &Holder) -> Result<ProjectLock, LockError> {
        // Compose project names are `[a-z0-9][a-z0-9_-]*`; anything that could leave `dir` or
        // hide the file is refused rather than sanitised, so two names never share a lock.
        if project.is_empty() || project.starts_with('.') || project.contains(['/', '\\', '\0']) {
            return Err(LockError::InvalidProject {
                project: project.to_string(),
            });
        }
        let path = dir.join(format!("{project}.lock"));
        let io = |e: std::io::Error| LockError::Io {
            path: path.clone(),
            cause: e.to_string(),
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            // Not truncated on open: the note belongs to whoever holds the lock, and we do not
            // know yet whether that is us.
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io)?
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut note = String::new();
                let holder = file
                    .read_to_string(&mut note)
                    .ok()
                    .and_then(|_| serde_json::from_str(note.trim()).ok());
                return Err(LockError::Held {
                    project: project.to_string(),
                    holder,
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // We hold the lock; replace the previous holder's note with ours. If writing fails the
        // file is dropped, which releases the lock again. The note is written in place, not
        // with `berth_base::atomic`: the lock is held on this inode, and renaming a new file
        // over the path would leave the next process locking a different inode than ours.
        let note = serde_json::to_string(holder).map_err(|e| LockError::Io {
            path: path.clone(),
            cause: e.to_string(),
        })?;
        file.set_len(0).map_err(io)?;
        file.write_all(format!("{note}\n").as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(ProjectLock {
            file,
            path,
            project: project.to_string(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The project this lock is for.
    pub fn project(&self) -> &str {
        &self.project
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first only makes the release
        // independent of any duplicate of the descriptor. A failure leaves nothing to undo.
        let _ = self.file.unlock();
    }
}
