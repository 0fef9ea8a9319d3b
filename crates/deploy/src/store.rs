//! The embedded state store (issue 5, "Releases" and "Crash safety"): every deploy as a numbered
//! release with its images and outcome, and the journal of its steps, in one SQLite file.
//!
//! The engine's labels say what runs now; only this store remembers what ran before (for
//! `berth releases` and `berth rollback`) and what a deploy was in the middle of when berth was
//! killed. So every write is one transaction committed with `synchronous=FULL` before the call
//! returns: once `journal_append` has returned, the step survives `kill -9` and power loss.
//!
//! One process deploys a project at a time (see [`crate::lock::ProjectLock`]), but several
//! berth processes may use the same file for different projects, so writes take SQLite's write
//! lock up front (`BEGIN IMMEDIATE`) and wait up to 5 s for it instead of failing at once.

pub mod journal;

pub use journal::JournalStep;

use crate::clock::now_ms;
use crate::store_error::StoreError;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this code writes. Each entry of [`MIGRATIONS`] moves the file up one
/// version; a file with a higher `user_version` was written by a newer berth and is refused,
/// because this code cannot know what the newer columns mean.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Migration `i` takes the schema from version `i` to `i + 1`. Entries are never edited once
/// released; a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // Version 1. Numbers and times are INTEGER (unix milliseconds); `status` is checked so that
    // a bug cannot write a state the readers do not know. At most one release per project is
    // running: a second one would mean two deploys of one project at once, which the project
    // lock exists to prevent.
    r#"
    CREATE TABLE releases (
        project     TEXT    NOT NULL,
        number      INTEGER NOT NULL CHECK (number >= 1),
        created_at  INTEGER NOT NULL,
        finished_at INTEGER,
        git_commit  TEXT,
        config_hash TEXT    NOT NULL,
        strategy    TEXT    NOT NULL,
        status      TEXT    NOT NULL CHECK (status IN
                        ('running', 'succeeded', 'failed', 'rolled_back', 'interrupted')),
        reason      TEXT,
        duration_ms INTEGER,
        rollback_of INTEGER,
        PRIMARY KEY (project, number)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX releases_one_running ON releases (project) WHERE status = 'running';
    CREATE INDEX releases_by_status ON releases (project, status, number);

    CREATE TABLE release_services (
        project     TEXT    NOT NULL,
        number      INTEGER NOT NULL,
        service     TEXT    NOT NULL,
        image_ref   TEXT    NOT NULL,
        image_id    TEXT    NOT NULL,
        config_hash TEXT    NOT NULL,
        PRIMARY KEY (project, number, service),
        FOREIGN KEY (project, number) REFERENCES releases (project, number) ON DELETE CASCADE
    ) WITHOUT ROWID;

    CREATE TABLE journal (
        project TEXT    NOT NULL,
        number  INTEGER NOT NULL,
        seq     INTEGER NOT NULL CHECK (seq >= 1),
        at      INTEGER NOT NULL,
        step    TEXT    NOT NULL,
        PRIMARY KEY (project, number, seq),
        FOREIGN KEY (project, number) REFERENCES releases (project, number) ON DELETE CASCADE
    ) WITHOUT ROWID;
    "#,
    // Version 2 (issue #16): the snapshots of the backup a deploy took before its release
    // command, as full snapshot ids separated by spaces; NULL when it took none.
    r#"
    ALTER TABLE releases ADD COLUMN backup TEXT;
    "#,
];

/// Where the CLI keeps the state database: `/var/lib/berth/state.db` for root, else
/// `$XDG_STATE_HOME/berth/state.db`, falling back to `~/.local/state/berth/state.db` as the
/// XDG base directory specification says (and to a per-user temporary directory without `HOME`).
/// The caller reads the environment (once per run) and passes what it found.
pub fn default_path_in(
    root: bool,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    if root {
        return PathBuf::from("/var/lib/berth/state.db");
    }
    // The specification says relative values are invalid and must be ignored.
    let xdg = xdg_state_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    match xdg {
        Some(dir) => dir.join("berth/state.db"),
        None => match home.filter(|h| !h.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/state/berth/state.db"),
            None => std::env::temp_dir().join(format!("berth-{}/state.db", user_id())),
        },
    }
}

/// The effective user, read from the owner of `/proc/self` as the CLI does elsewhere, so that
/// no `unsafe` `geteuid` call is needed. Without `/proc` the user counts as not root, which
/// only moves the default into the user's own directories.
fn user_id() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Where a release is in its life. Only `Running` changes, once, to one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    Running,
    Succeeded,
    Failed,
    RolledBack,
    Interrupted,
}

impl ReleaseStatus {
    /// The word stored in the database and shown by `berth releases`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Running => "running",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::RolledBack => "rolled_back",
            ReleaseStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<ReleaseStatus> {
        Some(match s {
            "running" => ReleaseStatus::Running,
            "succeeded" => ReleaseStatus::Succeeded,
            "failed" => ReleaseStatus::Failed,
            "rolled_back" => ReleaseStatus::RolledBack,
            "interrupted" => ReleaseStatus::Interrupted,
            _ => return None,
        })
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a running release ended; the text says why, for `berth releases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// The deploy failed before traffic moved; nothing changed.
    Failed(String),
    /// The new version was bad and traffic went back to the previous release.
    RolledBack(String),
    /// berth was killed mid-deploy and a later command converged what it left.
    Interrupted(String),
}

impl Outcome {
    fn status(&self) -> ReleaseStatus {
        match self {
            Outcome::Succeeded => ReleaseStatus::Succeeded,
            Outcome::Failed(_) => ReleaseStatus::Failed,
            Outcome::RolledBack(_) => ReleaseStatus::RolledBack,
            Outcome::Interrupted(_) => ReleaseStatus::Interrupted,
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded => None,
            Outcome::Failed(r) | Outcome::RolledBack(r) | Outcome::Interrupted(r) => Some(r),
        }
    }
}

/// One service's image in a release: what rollback redeploys and what image pruning keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceImage {
    pub service: String,
    /// The reference as written or built (`registry/app:v2`), for people.
    pub image_ref: String,
    /// The content id (`sha256:…`), which is what rollback must run again.
    pub image_id: String,
    pub config_hash: String,
}

/// What a deploy knows when it starts; [`Store::begin_release`] adds the number and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    /// The checkout's `HEAD` when the project is a git checkout.
    pub git_commit: Option<String>,
    pub config_hash: String,
    /// `rolling`, `blue-green` or `canary`.
    pub strategy: String,
    pub services: Vec<ServiceImage>,
    /// For `berth rollback`: the release whose images this one deploys again.
    pub rollback_of: Option<u64>,
}

/// A recorded deploy, as `berth releases --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub project: String,
    /// 1 for a project's first release, then one more each time.
    pub number: u64,
    /// Unix milliseconds.
    pub created_at: u64,
    pub finished_at: Option<u64>,
    pub git_commit: Option<String>,
    pub config_hash: String,
    pub strategy: String,
    pub status: ReleaseStatus,
    pub reason: Option<String>,
    pub duration_ms: Option<u64>,
    pub rollback_of: Option<u64>,
    /// The snapshots of the backup taken before the release command ran (full ids); empty
    /// when none was taken.
    pub backup: Vec<String>,
    /// Sorted by service name.
    pub services: Vec<ServiceImage>,
}

/// One step of a deploy's journal, in the order it was appended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    /// 1 for a release's first step, then one more each time.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: u64,
    pub step: JournalStep,
}

/// The state database. Open it with [`Store::open`]; it is closed on drop.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`, creating it and its missing parent directories (mode
    /// 0700: release history names images and commits, which are nobody else's business), and
    /// brings its schema up to [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let conn = Connection::open(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            cause: e.to_string(),
        })?;
        let mut store = Store { conn, path };
        store.configure().map_err(|f| store.error(f))?;
        store.migrate().map_err(|f| store.error(f))?;
        Ok(store)
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the start of a deploy as the project's next release, `running`. Refuses while
    /// another release of the project is still running: that one must first be converged and
    /// finished, or its journal would be lost from view.
    pub fn begin_release(
        &mut self,
        project: &str,
        new: &NewRelease,
    ) -> Result<Release, StoreError> {
        let mut seen = HashSet::new();
        if let Some(dup) = new.services.iter().find(|s| !seen.insert(&s.service)) {
            return Err(StoreError::DuplicateService {
                project: project.to_string(),
                service: dup.service.clone(),
            });
        }
        let number = self
            .begin_release_tx(project, new)
            .map_err(|f| self.error(f))?;
        self.release(project, number)?
            .ok_or_else(|| StoreError::Database {
                path: self.path.clone(),
                cause: "the release just written cannot be read back".to_string(),
            })
    }

    fn begin_release_tx(&mut self, project: &str, new: &NewRelease) -> Result<u64, Failure> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let running: Option<i64> = tx
            .query_row(
                "SELECT number FROM releases WHERE project = ?1 AND status = 'running'",
                params![project],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(number) = running {
            return Err(Failure::Store(StoreError::AlreadyRunning {
                project: project.to_string(),
                number: to_u64(number, "releases.number")?,
            }));
        }
        let number: i64 = tx.query_row(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE project = ?1",
            params![project],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO releases (project, number, created_at, git_commit, config_hash, \
             strategy, status, rollback_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
            params![
                project,
                number,
                to_i64(now_ms()),
                new.git_commit,
                new.config_hash,
                new.strategy,
                new.rollback_of.map(to_i64),
            ],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO release_services (project, number, service, image_ref, image_id, \
                 config_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for s in &new.services {
                insert.execute(params![
                    project,
                    number,
                    s.service,
                    s.image_ref,
                    s.image_id,
                    s.config_hash
                ])?;
            }
        }
        tx.commit()?;
        to_u64(number, "releases.number")
    }

    /// Ends a running release with `outcome`, recording when and how long it took. A release
    /// that already finished is refused: its outcome is history, and a second finish would mean
    /// two deploys believed they owned it.
    pub fn finish_release(
        &mut self,
        project: &str,
        number: u64,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        self.finish_release_tx(project, number, &outcome)
            .map_err(|f| self.error(f))
    }

    fn finish_release_tx(
        &mut self,
        project: &str,
        number: u64,
        outcome: &Outcome,
    ) -> Result<(), Failure> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let created_at = require_running(&tx, project, number)?;
        let now = now_ms();
        tx.execute(
            "UPDATE releases SET status = ?3, reason = ?4, finished_at = ?5, duration_ms = ?6 \
             WHERE project = ?1 AND number = ?2",
            params![
                project,
                to_i64(number),
                outcome.status().as_str(),
                outcome.reason(),
                to_i64(now),
                // A clock stepped backwards during the deploy gives 0 rather than a negative time.
                to_i64(now.saturating_sub(created_at)),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records the snapshots of the backup the running release `number` took before its
    /// release command.
    pub fn record_backup(
        &mut self,
        project: &str,
        number: u64,
        snapshots: &[String],
    ) -> Result<(), StoreError> {
        self.record_backup_tx(project, number, snapshots)
            .map_err(|f| self.error(f))
    }

    fn record_backup_tx(
        &mut self,
        project: &str,
        number: u64,
        snapshots: &[String],
    ) -> Result<(), Failure> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_running(&tx, project, number)?;
        tx.execute(
            "UPDATE releases SET backup = ?3 WHERE project = ?1 AND number = ?2",
            params![project, to_i64(number), snapshots.join(" ")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The project's releases, newest first.
    pub fn releases(&self, project: &str) -> Result<Vec<Release>, StoreError> {
        self.load(project, None, "1", None)
            .map_err(|f| self.error(f))
    }

    /// Release `number` of the project, if it exists.
    pub fn release(&self, project: &str, number: u64) -> Result<Option<Release>, StoreError> {
        self.load(project, Some(number), "1", Some(1))
            .map(|mut v| v.pop())
            .map_err(|f| self.error(f))
    }

    /// The newest release that succeeded: what is live when nothing is running, and what a
    /// failed deploy returns to.
    pub fn last_succeeded(&self, project: &str) -> Result<Option<Release>, StoreError> {
        self.load(project, None, "status = 'succeeded'", Some(1))
            .map(|v| v.into_iter().next())
            .map_err(|f| self.error(f))
    }

    /// The release being deployed now, or, when no berth process holds the project lock, the
    /// one a killed deploy left behind for the next command to converge.
    pub fn running(&self, project: &str) -> Result<Option<Release>, StoreError> {
        self.load(project, None, "status = 'running'", Some(1))
            .map(|v| v.into_iter().next())
            .map_err(|f| self.error(f))
    }

    /// Appends a step to the journal of a running release and returns its sequence number.
    /// The step is committed to disk before this returns, because the journal is what the next
    /// command reads after a crash to find out what this deploy had done.
    pub fn journal_append(
        &mut self,
        project: &str,
        number: u64,
        step: impl Into<JournalStep>,
    ) -> Result<u64, StoreError> {
        self.journal_append_tx(project, number, &step.into())
            .map_err(|f| self.error(f))
    }

    fn journal_append_tx(
        &mut self,
        project: &str,
        number: u64,
        step: &JournalStep,
    ) -> Result<u64, Failure> {
        let text = serde_json::to_string(step)
            .map_err(|e| Failure::Corrupt(format!("journal step cannot be written: {e}")))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_running(&tx, project, number)?;
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE project = ?1 AND number = ?2",
            params![project, to_i64(number)],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO journal (project, number, seq, at, step) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![project, to_i64(number), seq, to_i64(now_ms()), text],
        )?;
        tx.commit()?;
        to_u64(seq, "journal.seq")
    }

    /// The journal of release `number`, in the order the steps were appended.
    pub fn journal(&self, project: &str, number: u64) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_rows(project, number)
            .map_err(|f| self.error(f))
    }

    fn journal_rows(&self, project: &str, number: u64) -> Result<Vec<JournalEntry>, Failure> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, step FROM journal WHERE project = ?1 AND number = ?2 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map(params![project, to_i64(number)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, at, step)| {
                Ok(JournalEntry {
                    seq: to_u64(seq, "journal.seq")?,
                    at: to_u64(at, "journal.at")?,
                    step: serde_json::from_str(&step).map_err(|e| {
                        Failure::Corrupt(format!("journal step {seq} is not JSON: {e}"))
                    })?,
                })
            })
            .collect()
    }

    /// `(service, image_id)` of every service in the project's last `keep` succeeded releases,
    /// newest release first, each pair once: the images pruning must keep so that
    /// `berth rollback` can run them again without a registry.
    pub fn retained_images(
        &self,
        project: &str,
        keep: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.retained_rows(project, keep).map_err(|f| self.error(f))
    }

    fn retained_rows(&self, project: &str, keep: usize) -> Result<Vec<(String, String)>, Failure> {
        let mut stmt = self.conn.prepare(
            "SELECT s.service, s.image_id FROM release_services s \
             JOIN (SELECT number FROM releases WHERE project = ?1 AND status = 'succeeded' \
                   ORDER BY number DESC LIMIT ?2) r ON r.number = s.number \
             WHERE s.project = ?1 ORDER BY s.number DESC, s.service",
        )?;
        let rows = stmt
            .query_map(
                params![project, i64::try_from(keep).unwrap_or(i64::MAX)],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = HashSet::new();
        Ok(rows
            .into_iter()
            .filter(|pair| seen.insert(pair.clone()))
            .collect())
    }

    /// Sets the connection up. `journal_mode` is the first statement that reads the file, so a
    /// file that is not a database fails here and is reported as such.
    fn configure(&self) -> Result<(), Failure> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets `berth releases` read while a deploy writes, and makes a commit one append
        // to the log instead of a rewrite of the pages.
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Failure::Sql(format!(
                "the file system does not support write-ahead logging (journal mode stayed {mode})"
            )));
        }
        // FULL syncs the log on every commit: slower than NORMAL, but a journal step that is
        // not on disk when the call returns is no crash record.
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    /// Applies the migrations the file lacks, each with its version bump in one transaction,
    /// and refuses a file from a newer berth. The version is read inside the write transaction
    /// so that two processes opening a new file at once do not both migrate it.
    fn migrate(&mut self) -> Result<(), Failure> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(Failure::Store(StoreError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            }));
        }
        if found < 0 {
            return Err(Failure::Corrupt(format!("schema version {found}")));
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` releases of `project` matching `filter` (and `number` when given), newest
    /// first, with their services, read in one transaction so that a concurrent write is seen
    /// whole or not at all.
    fn load(
        &self,
        project: &str,
        number: Option<u64>,
        filter: &'static str,
        limit: Option<usize>,
    ) -> Result<Vec<Release>, Failure> {
        let tx = self.conn.unchecked_transaction()?;
        let number = number.map(to_i64);
        // SQLite reads a negative LIMIT as "no limit".
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let raws = {
            let mut stmt = tx.prepare(&format!(
                "SELECT number, created_at, finished_at, git_commit, config_hash, strategy, \
                 status, reason, duration_ms, rollback_of, backup FROM releases \
                 WHERE project = ?1 AND (?2 IS NULL OR number = ?2) AND {filter} \
                 ORDER BY number DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![project, number, limit], |r| {
                Ok(RawRelease {
                    number: r.get(0)?,
                    created_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    git_commit: r.get(3)?,
                    config_hash: r.get(4)?,
                    strategy: r.get(5)?,
                    status: r.get(6)?,
                    reason: r.get(7)?,
                    duration_ms: r.get(8)?,
                    rollback_of: r.get(9)?,
                    backup: r.get(10)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        // Services of the releases found only: those numbered between the lowest and the highest
        // read (rows are newest first), so that one release does not read the whole history.
        let (Some(high), Some(low)) = (raws.first(), raws.last()) else {
            return Ok(Vec::new());
        };
        let (low, high) = (low.number, high.number);
        let mut services: BTreeMap<i64, Vec<ServiceImage>> = BTreeMap::new();
        {
            let mut stmt = tx.prepare(
                "SELECT number, service, image_ref, image_id, config_hash FROM release_services \
                 WHERE project = ?1 AND number BETWEEN ?2 AND ?3 ORDER BY number, service",
            )?;
            let rows = stmt.query_map(params![project, low, high], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ServiceImage {
                        service: r.get(1)?,
                        image_ref: r.get(2)?,
                        image_id: r.get(3)?,
                        config_hash: r.get(4)?,
                    },
                ))
            })?;
            for row in rows {
                let (n, service) = row?;
                services.entry(n).or_default().push(service);
            }
        }
        tx.finish()?;
        raws.into_iter()
            .map(|raw| {
                let services = services.remove(&raw.number).unwrap_or_default();
                raw.into_release(project, services)
            })
            .collect()
    }

    /// Turns an internal failure into the public error, naming this store's file.
    fn error(&self, failure: Failure) -> StoreError {
        failure.into_store_error(&self.path)
    }
}

/// Checks inside `tx` that the release exists and is running, and returns its start time.
fn require_running(
    tx: &rusqlite::Transaction<'_>,
    project: &str,
    number: u64,
) -> Result<u64, Failure> {
    let row: Option<(String, i64)> = tx
        .query_row(
            "SELECT status, created_at FROM releases WHERE project = ?1 AND number = ?2",
            params![project, to_i64(number)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Err(Failure::Store(StoreError::UnknownRelease {
            project: project.to_string(),
            number,
        })),
        Some((status, _)) if status != ReleaseStatus::Running.as_str() => {
            Err(Failure::Store(StoreError::NotRunning {
                project: project.to_string(),
                number,
                status,
            }))
        }
        Some((_, created_at)) => to_u64(created_at, "releases.created_at"),
    }
}

/// A `releases` row as stored, before its values are checked.
struct RawRelease {
    number: i64,
    created_at: i64,
    finished_at: Option<i64>,
    git_commit: Option<String>,
    config_hash: String,
    strategy: String,
    status: String,
    reason: Option<String>,
    duration_ms: Option<i64>,
    rollback_of: Option<i64>,
    backup: Option<String>,
}

impl RawRelease {
    fn into_release(self, project: &str, services: Vec<ServiceImage>) -> Result<Release, Failure> {
        let opt = |v: Option<i64>, what| v.map(|v| to_u64(v, what)).transpose();
        Ok(Release {
            project: project.to_string(),
            number: to_u64(self.number, "releases.number")?,
            created_at: to_u64(self.created_at, "releases.created_at")?,
            finished_at: opt(self.finished_at, "releases.finished_at")?,
            git_commit: self.git_commit,
            config_hash: self.config_hash,
            strategy: self.strategy,
            status: ReleaseStatus::parse(&self.status).ok_or_else(|| {
                Failure::Corrupt(format!("unknown release status {:?}", self.status))
            })?,
            reason: self.reason,
            duration_ms: opt(self.duration_ms, "releases.duration_ms")?,
            rollback_of: opt(self.rollback_of, "releases.rollback_of")?,
            backup: self
                .backup
                .map(|b| b.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            services,
        })
    }
}

/// What went wrong inside the store, before it is tied to the file's path.
enum Failure {
    /// An SQLite error, classified when it becomes a [`StoreError`].
    Rusqlite(rusqlite::Error),
    /// Something the store itself found wrong with the database's contents.
    Corrupt(String),
    /// Any other database problem, as text.
    Sql(String),
    /// An error that is already the public one.
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Rusqlite(e)
    }
}

impl Failure {
    fn into_store_error(self, path: &Path) -> StoreError {
        let path = path.to_path_buf();
        match self {
            Failure::Store(e) => e,
            Failure::Corrupt(cause) => StoreError::Corrupt { path, cause },
            Failure::Sql(cause) => StoreError::Database { path, cause },
            Failure::Rusqlite(e) => match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
                    path,
                    cause: e.to_string(),
                },
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                    StoreError::Busy { path }
                }
                _ => StoreError::Database {
                    path,
                    cause: e.to_string(),
                },
            },
        }
    }
}

/// Creates `dir` and its missing parents with mode 0700; existing directories keep theirs.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::CreateDir {
            dir: dir.to_path_buf(),
            cause: e.to_string(),
        })
}

/// SQLite integers are signed; numbers and times past `i64::MAX` (year 292 million) saturate.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored number or time read back; a negative one was not written by berth.
fn to_u64(v: i64, what: &str) -> Result<u64, Failure> {
    u64::try_from(v).map_err(|_| Failure::Corrupt(format!("{what} is negative ({v})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_rule() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_path_in(true, os("/x"), os("/home/a")),
            Path::new("/var/lib/berth/state.db")
        );
        assert_eq!(
            default_path_in(false, os("/x/state"), os("/home/a")),
            Path::new("/x/state/berth/state.db")
        );
        for ignored in ["", "relative/state"] {
            assert_eq!(
                default_path_in(false, os(ignored), os("/home/a")),
                Path::new("/home/a/.local/state/berth/state.db")
            );
        }
        let fallback = default_path_in(false, None, None);
        assert!(fallback.starts_with(std::env::temp_dir()));
        assert!(fallback.ends_with("state.db"));
    }
}
