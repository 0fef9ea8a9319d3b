//! Database dumps streamed from `docker exec` straight into the repository, never through
//! the host's disk, and database restores streamed back the same way.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_engine::{Engine, ExecOptions};
use rustic_core::repofile::SnapshotFile;
use rustic_core::{
    BackupOptions, IndexedFull, IndexedIds, ReadSource, ReadSourceEntry, Repository, RusticResult,
};
use tokio_util::io::SyncIoBridge;

use crate::repository::rustic_error;
use crate::snapshot::{describe, Recorded};
use crate::{BackupError, RepoConfig};

/// How much of a dump is buffered between the engine and the repository: enough to keep
/// both busy, small enough to stay out of the memory budget.
const PIPE_BYTES: usize = 1 << 20;

/// Sets the database's superuser and database from the variables the official postgres
/// image is configured with, so every command runs as that user over the local socket, with
/// no password.
const PG_ENV: &str =
    r#"export PGUSER="${POSTGRES_USER:-postgres}"; export PGDATABASE="${POSTGRES_DB:-$PGUSER}";"#;

/// The query that counts the rows of every user table, one `berth-rows<TAB>schema.table<TAB>N`
/// line each (through psql's `\gexec`).
const PG_COUNT_QUERY: &str = r#"SELECT format('SELECT %L || chr(9) || count(*) FROM %I.%I', 'berth-rows' || chr(9) || schemaname || '.' || tablename, schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY schemaname, tablename \gexec"#;

/// Dumps the database and counts its rows in one transaction snapshot: psql opens a
/// repeatable-read transaction, exports its snapshot, writes the row counts to standard
/// error, and runs `pg_dump --snapshot` on it, whose custom-format output is standard
/// output. A failed pg_dump is marked on standard error, since psql's own exit code does
/// not carry it.
fn pg_dump_script() -> String {
    format!(
        r#"{PG_ENV}
exec psql -qAtX -v ON_ERROR_STOP=1 <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT pg_export_snapshot() AS berth_snapshot \gset
\setenv BERTH_SNAPSHOT :berth_snapshot
\o | cat 1>&2
{PG_COUNT_QUERY}
\o
\! pg_dump --format=custom --snapshot="$BERTH_SNAPSHOT" || echo {DUMP_FAILED} 1>&2
COMMIT;
SQL
"#
    )
}

/// Counts the rows of every user table, on standard output.
fn pg_count_script() -> String {
    format!(
        r#"{PG_ENV}
exec psql -qAtX -v ON_ERROR_STOP=1 <<'SQL'
{PG_COUNT_QUERY}
SQL
"#
    )
}

const DUMP_FAILED: &str = "berth-dump-failed";

/// The row counts in a count script's output.
fn parse_rows(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.trim_end().split('\t');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("berth-rows"), Some(table), Some(n)) => {
                    n.parse().ok().map(|n| (table.to_string(), n))
                }
                _ => None,
            }
        })
        .collect()
}

/// Loads a custom-format dump from standard input in one transaction: it either replaces
/// the database's objects (`--clean --if-exists`) or, on any error, changes nothing.
const PG_RESTORE: &str = r#"export PGUSER="${POSTGRES_USER:-postgres}"; export PGDATABASE="${POSTGRES_DB:-$PGUSER}"; exec pg_restore --clean --if-exists --single-transaction --no-owner --exit-on-error --dbname="$PGDATABASE""#;

/// Counts the user tables of the service's database: zero means an empty target.
const PG_COUNT_TABLES: &str = r#"export PGUSER="${POSTGRES_USER:-postgres}"; export PGDATABASE="${POSTGRES_DB:-$PGUSER}"; exec psql -qAtX -c "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')""#;

fn shell(line: &str) -> ExecOptions {
    ExecOptions {
        cmd: vec!["sh".into(), "-c".into(), line.into()],
        ..Default::default()
    }
}

/// Runs `pg_dump` in `container` and stores its output as the one file of `snap`, at
/// `path`, with the row counts of its transaction recorded in the snapshot. A dump that
/// fails leaves no snapshot.
pub(crate) async fn postgres<S: IndexedIds>(
    engine: &Engine,
    repo: &Repository<S>,
    config: &RepoConfig,
    container: &str,
    service: &str,
    snap: SnapshotFile,
    path: PathBuf,
) -> Result<SnapshotFile, BackupError> {
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let exec = {
        let engine = engine.clone();
        let container = container.to_string();
        tokio::spawn(async move {
            let mut stderr = Vec::new();
            let code = engine
                .exec(
                    &container,
                    &shell(&pg_dump_script()),
                    None::<tokio::io::Empty>,
                    writer,
                    &mut stderr,
                )
                .await;
            (code, stderr)
        })
    };
    let bridge = SyncIoBridge::new_with_handle(reader, tokio::runtime::Handle::current());
    let source = StreamSource::new(path.clone(), Box::new(bridge));
    // A dump has no useful parent: it is one new file each time, deduplicated by chunks.
    let mut options = BackupOptions::default();
    options.parent_opts.force = true;
    let archived = tokio::task::block_in_place(|| {
        repo.archive(&options, &source, snap, std::slice::from_ref(&path))
    });
    let (code, stderr) = exec
        .await
        .unwrap_or_else(|e| (Err(task_failed(container, e)), Vec::new()));
    let failed = String::from_utf8_lossy(&stderr).contains(DUMP_FAILED);
    let failure = match code {
        Ok(0) if !failed => None,
        Ok(0) => Some(BackupError::Command {
            service: service.to_string(),
            what: "pg_dump",
            code: 1,
            stderr: tail(&stderr),
        }),
        Ok(code) => Some(BackupError::Command {
            service: service.to_string(),
            what: "pg_dump",
            code,
            stderr: tail(&stderr),
        }),
        Err(e) => Some(BackupError::Engine(e)),
    };
    match (archived, failure) {
        (Ok(snap), None) => {
            let recorded = Recorded {
                tree_hash: None,
                rows: Some(parse_rows(&String::from_utf8_lossy(&stderr))),
            };
            describe(repo, snap, &recorded)
                .map_err(|e| rustic_error(config, "recording the row counts", &e))
        }
        (Ok(snap), Some(failure)) => {
            // The snapshot holds a truncated dump: it must not be mistaken for a backup.
            let _ = repo.delete_snapshots(&[snap.id]);
            Err(failure)
        }
        (Err(_), Some(failure)) => Err(failure),
        (Err(e), None) => Err(rustic_error(config, "storing the dump", &e)),
    }
}

/// Streams the dump file `node` of the repository into `pg_restore` in `container`.
pub(crate) async fn postgres_restore<S: IndexedFull>(
    engine: &Engine,
    repo: &Repository<S>,
    config: &RepoConfig,
    container: &str,
    service: &str,
    node: &rustic_core::repofile::Node,
) -> Result<(), BackupError> {
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let exec = {
        let engine = engine.clone();
        let container = container.to_string();
        let mut options = shell(PG_RESTORE);
        options.interactive = true;
        tokio::spawn(async move {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let code = engine
                .exec(&container, &options, Some(reader), &mut stdout, &mut stderr)
                .await;
            (code, stderr)
        })
    };
    let mut bridge = SyncIoBridge::new_with_handle(writer, tokio::runtime::Handle::current());
    let dumped = tokio::task::block_in_place(|| {
        let result = repo.dump(node, &mut bridge);
        // Closing the pipe is what tells pg_restore the dump is complete.
        let _ = std::io::Write::flush(&mut bridge);
        let _ = bridge.shutdown();
        drop(bridge);
        result
    });
    let (code, stderr) = exec
        .await
        .unwrap_or_else(|e| (Err(task_failed(container, e)), Vec::new()));
    dumped.map_err(|e| rustic_error(config, "reading the dump", &e))?;
    match code? {
        0 => Ok(()),
        code => Err(BackupError::Command {
            service: service.to_string(),
            what: "pg_restore",
            code,
            stderr: tail(&stderr),
        }),
    }
}

/// Rows per table of the database in `container`.
pub(crate) async fn postgres_rows(
    engine: &Engine,
    container: &str,
    service: &str,
) -> Result<BTreeMap<String, u64>, BackupError> {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = engine
        .exec(
            container,
            &shell(&pg_count_script()),
            None::<tokio::io::Empty>,
            &mut stdout,
            &mut stderr,
        )
        .await?;
    if code != 0 {
        return Err(BackupError::Command {
            service: service.to_string(),
            what: "psql",
            code,
            stderr: tail(&stderr),
        });
    }
    Ok(parse_rows(&String::from_utf8_lossy(&stdout)))
}

/// Whether the server in `container` accepts connections over TCP: the official image's
/// initialisation runs a temporary server on the socket only, which must not be taken for
/// the real one.
pub(crate) async fn postgres_ready(engine: &Engine, container: &str) -> bool {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let line = format!("{PG_ENV} exec pg_isready -q -h 127.0.0.1");
    matches!(
        engine
            .exec(
                container,
                &shell(&line),
                None::<tokio::io::Empty>,
                &mut out,
                &mut err
            )
            .await,
        Ok(0)
    )
}

/// The number of user tables in the service's database.
pub(crate) async fn postgres_tables(
    engine: &Engine,
    container: &str,
    service: &str,
) -> Result<u64, BackupError> {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = engine
        .exec(
            container,
            &shell(PG_COUNT_TABLES),
            None::<tokio::io::Empty>,
            &mut stdout,
            &mut stderr,
        )
        .await?;
    let text = String::from_utf8_lossy(&stdout);
    match (code, text.trim().parse::<u64>()) {
        (0, Ok(n)) => Ok(n),
        _ => Err(BackupError::Command {
            service: service.to_string(),
            what: "psql",
            code,
            stderr: tail(&stderr),
        }),
    }
}

fn task_failed(container: &str, e: tokio::task::JoinError) -> berth_engine::EngineError {
    berth_engine::EngineError::Stream {
        container: container.to_string(),
        reason: format!("the exec task ended early: {e}"),
    }
}

/// The last lines of a command's error output, enough to say what went wrong.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join("; ");
    if joined.is_empty() {
        "no error output".to_string()
    } else {
        joined
    }
}

/// A source of one file read from a stream, as rustic's stdin source is, but from any
/// reader (here: the engine's exec output).
struct StreamSource {
    path: PathBuf,
    reader: Mutex<Option<Box<dyn Read + Send>>>,
}

impl StreamSource {
    fn new(path: PathBuf, reader: Box<dyn Read + Send>) -> Self {
        StreamSource {
            path,
            reader: Mutex::new(Some(reader)),
        }
    }
}

impl ReadSource for StreamSource {
    type Open = Box<dyn Read + Send>;
    type Iter = std::option::IntoIter<RusticResult<ReadSourceEntry<Self::Open>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let reader = self.reader.lock().map(|mut r| r.take()).unwrap_or(None);
        let name = self.path.file_name().unwrap_or_default();
        let meta = rustic_core::repofile::Metadata {
            mode: Some(0o600),
            mtime: Some(rustic_core::jiff::Timestamp::now()),
            ..Default::default()
        };
        let node = rustic_core::repofile::Node::new_node(
            name,
            rustic_core::repofile::NodeType::File,
            meta,
        );
        Some(Ok(ReadSourceEntry {
            path: self.path.clone(),
            node,
            open: reader,
        }))
        .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_are_read_from_their_marked_lines_only() {
        let text = "berth-rows\tpublic.a\t12\nWARNING: something\nberth-rows\tshop.b c\t0\n";
        let rows = parse_rows(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows["public.a"], 12);
        assert_eq!(rows["shop.b c"], 0);
    }
}
