//! Database dumps streamed from `docker exec` straight into the repository, never through
//! the host's disk, and dumps streamed back into a server the same way. What each engine
//! runs is [`DumpKind`]'s; this file moves the bytes.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_engine::{Engine, ExecOptions};
use rustic_core::repofile::SnapshotFile;
use rustic_core::{
    BackupOptions, IndexedFull, IndexedIds, ReadSource, ReadSourceEntry, Repository, RusticResult,
};
use tokio_util::io::SyncIoBridge;

use crate::database::DumpKind;
use crate::mysql::RowCounter;
use crate::repository::rustic_error;
use crate::snapshot::finish_dump;
use crate::{BackupError, RepoConfig};

/// How much of a dump is buffered between the engine and the repository: enough to keep
/// both busy, small enough to stay out of the memory budget.
const PIPE_BYTES: usize = 1 << 20;

pub(crate) fn shell(line: &str) -> ExecOptions {
    ExecOptions {
        cmd: vec!["sh".into(), "-c".into(), line.into()],
        ..Default::default()
    }
}

/// Runs the engine's dump in `container` and stores its output as the one file of `snap`,
/// at `path`, with what the engine counted of it recorded in the snapshot. A dump that
/// fails leaves no snapshot.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store<S: IndexedIds>(
    engine: &Engine,
    repo: &Repository<S>,
    config: &RepoConfig,
    kind: &DumpKind,
    container: &str,
    service: &str,
    snap: SnapshotFile,
    path: PathBuf,
) -> Result<SnapshotFile, BackupError> {
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let exec = {
        let engine = engine.clone();
        let container = container.to_string();
        let script = shell(&kind.dump_script());
        tokio::spawn(async move {
            let mut stderr = Vec::new();
            let code = engine
                .exec(
                    &container,
                    &script,
                    None::<tokio::io::Empty>,
                    writer,
                    &mut stderr,
                )
                .await;
            (code, stderr)
        })
    };
    let bridge = SyncIoBridge::new_with_handle(reader, tokio::runtime::Handle::current());
    let tap = Tap::new(Box::new(bridge), matches!(kind, DumpKind::Mysql));
    let seen = tap.seen.clone();
    let source = StreamSource::new(path.clone(), Box::new(tap));
    // A dump has no useful parent: it is one new file each time, deduplicated by chunks.
    let mut options = BackupOptions::default();
    options.parent_opts.force = true;
    let archived = tokio::task::block_in_place(|| {
        repo.archive(&options, &source, snap, std::slice::from_ref(&path))
    });
    let (code, stderr) = exec
        .await
        .unwrap_or_else(|e| (Err(task_failed(container, e)), Vec::new()));
    let failed = String::from_utf8_lossy(&stderr).contains(DumpKind::FAILED);
    let failure = match code {
        Ok(0) if !failed => None,
        Ok(code) => Some(BackupError::Command {
            service: service.to_string(),
            what: kind.dump_tool(),
            code: if code == 0 { 1 } else { code },
            stderr: tail(&stderr),
        }),
        Err(e) => Some(BackupError::Engine(e)),
    };
    match (archived, failure) {
        (Ok(snap), None) => {
            let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
            let recorded = kind.record(
                &String::from_utf8_lossy(&stderr),
                seen.hasher.finalize().to_hex().to_string(),
                seen.rows.map(RowCounter::finish),
            );
            finish_dump(config, snap, &path, seen.bytes, &recorded)
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

/// Streams the dump file `node` of the repository into `script` (a load script of `kind`) in
/// `container`, and returns the blake3 of the bytes it streamed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn load<S: IndexedFull>(
    engine: &Engine,
    repo: &Repository<S>,
    config: &RepoConfig,
    kind: &DumpKind,
    script: &str,
    container: &str,
    service: &str,
    node: &rustic_core::repofile::Node,
) -> Result<String, BackupError> {
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let exec = {
        let engine = engine.clone();
        let container = container.to_string();
        let mut options = shell(script);
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
    let bridge = SyncIoBridge::new_with_handle(writer, tokio::runtime::Handle::current());
    let mut hashing = HashingWriter {
        inner: bridge,
        hasher: blake3::Hasher::new(),
    };
    let dumped = tokio::task::block_in_place(|| {
        let result = repo.dump(node, &mut hashing);
        // Closing the pipe is what tells the loader the dump is complete.
        let _ = std::io::Write::flush(&mut hashing.inner);
        let _ = hashing.inner.shutdown();
        result
    });
    let read = hashing.hasher.finalize().to_hex().to_string();
    drop(hashing);
    let (code, stderr) = exec
        .await
        .unwrap_or_else(|e| (Err(task_failed(container, e)), Vec::new()));
    // A damaged dump ends the pipe early and the loader fails too: the damage is the cause.
    dumped.map_err(|e| rustic_error(config, "reading the dump", &e))?;
    match code? {
        0 => Ok(read),
        code => Err(BackupError::Command {
            service: service.to_string(),
            what: kind.load_tool(),
            code,
            stderr: tail(&stderr),
        }),
    }
}

/// blake3 of the dump file `node` as the repository gives it back.
pub(crate) fn hash_of<S: IndexedFull>(
    repo: &Repository<S>,
    node: &rustic_core::repofile::Node,
) -> RusticResult<String> {
    let mut hasher = blake3::Hasher::new();
    repo.dump(node, &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Runs `script` in `container` and returns its standard output; a non-zero exit is an
/// error naming `what`.
pub(crate) async fn output(
    engine: &Engine,
    container: &str,
    service: &str,
    what: &'static str,
    script: &str,
) -> Result<String, BackupError> {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = engine
        .exec(
            container,
            &shell(script),
            None::<tokio::io::Empty>,
            &mut stdout,
            &mut stderr,
        )
        .await?;
    if code != 0 {
        return Err(BackupError::Command {
            service: service.to_string(),
            what,
            code,
            stderr: tail(&stderr),
        });
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// Whether `script` succeeds in `container`: a readiness probe.
pub(crate) async fn succeeds(engine: &Engine, container: &str, script: &str) -> bool {
    let mut out = Vec::new();
    let mut err = Vec::new();
    matches!(
        engine
            .exec(
                container,
                &shell(script),
                None::<tokio::io::Empty>,
                &mut out,
                &mut err
            )
            .await,
        Ok(0)
    )
}

fn task_failed(container: &str, e: tokio::task::JoinError) -> berth_engine::EngineError {
    berth_engine::EngineError::Stream {
        container: container.to_string(),
        reason: format!("the exec task ended early: {e}"),
    }
}

/// The last lines of a command's error output, enough to say what went wrong.
pub(crate) fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains(DumpKind::FAILED))
        .collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join("; ");
    if joined.is_empty() {
        "no error output".to_string()
    } else {
        joined
    }
}

/// A writer that hashes every byte it passes on.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a [`Tap`] saw of the bytes that passed it.
#[derive(Default)]
struct Seen {
    hasher: blake3::Hasher,
    bytes: u64,
    rows: Option<RowCounter>,
}

/// A reader that hashes every byte it passes on (and counts a MySQL dump's rows), so what
/// is recorded of a dump is what was stored, without reading it twice.
struct Tap {
    inner: Box<dyn Read + Send>,
    seen: Arc<Mutex<Seen>>,
}

impl Tap {
    fn new(inner: Box<dyn Read + Send>, count_rows: bool) -> Tap {
        let seen = Seen {
            hasher: blake3::Hasher::new(),
            bytes: 0,
            rows: count_rows.then(RowCounter::default),
        };
        Tap {
            inner,
            seen: Arc::new(Mutex::new(seen)),
        }
    }
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.hasher.update(&buf[..n]);
        seen.bytes += n as u64;
        if let Some(rows) = seen.rows.as_mut() {
            rows.feed(&buf[..n]);
        }
        Ok(n)
    }
}

/// A source of one file read from a stream, as rustic's stdin source is, but from any
/// reader (here: the engine's exec output), of a size known or not.
pub(crate) struct StreamSource {
    path: PathBuf,
    reader: Mutex<Option<Box<dyn Read + Send>>>,
    size: Option<u64>,
}

impl StreamSource {
    fn new(path: PathBuf, reader: Box<dyn Read + Send>) -> Self {
        StreamSource {
            path,
            reader: Mutex::new(Some(reader)),
            size: None,
        }
    }

    /// A stream whose size is known, so the file's node carries it.
    pub(crate) fn sized(path: PathBuf, reader: Box<dyn Read + Send>, size: u64) -> Self {
        StreamSource {
            path,
            reader: Mutex::new(Some(reader)),
            size: Some(size),
        }
    }
}

impl ReadSource for StreamSource {
    type Open = Box<dyn Read + Send>;
    type Iter = std::option::IntoIter<RusticResult<ReadSourceEntry<Self::Open>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(self.size)
    }

    fn entries(&self) -> Self::Iter {
        let reader = self.reader.lock().map(|mut r| r.take()).unwrap_or(None);
        let name = self.path.file_name().unwrap_or_default();
        let meta = rustic_core::repofile::Metadata {
            mode: Some(0o600),
            mtime: Some(rustic_core::jiff::Timestamp::now()),
            size: self.size.unwrap_or(0),
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
