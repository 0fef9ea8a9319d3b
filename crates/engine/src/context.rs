//! The build context: the context directory as a tar stream, with `.dockerignore` applied.
//! It is written by a blocking thread into a bounded channel that the request body reads
//! from, so a large context is sent as it is read instead of being held whole in memory.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::dockerignore::DockerIgnore;
use crate::{BuildSpec, EngineError};

/// The name under which an inline Dockerfile is put into the build context. It is unusual
/// enough not to clash with a file of the user's.
pub const INLINE_DOCKERFILE_NAME: &str = ".berth-inline.Dockerfile";

/// Paths that a context should almost never send: version control, dependency trees that
/// the build installs itself, build output and local secrets. `berth build` reports the
/// ones it sent.
const HEAVY: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".env",
    "__pycache__",
    ".venv",
];

/// What was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextSummary {
    /// Bytes of tar stream sent to the engine.
    pub bytes: u64,
    /// Files (of any kind) in it.
    pub entries: u64,
    /// The paths from [`HEAVY`] that were sent, relative to the context, in walk order.
    pub heavy: Vec<String>,
}

/// Chunks of the tar stream sent to the request body; a few in flight at most.
const CHUNK: usize = 256 * 1024;
const IN_FLIGHT: usize = 8;

/// Starts writing the context of `spec` (with `dockerfile` as the name the Dockerfile has
/// in it). The receiver gives the stream; the handle gives the summary, or the reason the
/// stream stopped early.
pub(crate) fn stream(
    spec: &BuildSpec,
    dockerfile: &str,
    extra: Vec<(String, Vec<u8>, u32)>,
) -> (
    mpsc::Receiver<Bytes>,
    tokio::task::JoinHandle<Result<ContextSummary, EngineError>>,
) {
    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
    let spec = spec.clone();
    let dockerfile = dockerfile.to_string();
    // Reading the context is blocking file I/O; keep it off the async workers.
    let handle = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK),
            sent: 0,
        };
        let mut summary = if extra.is_empty() {
            write_dir(&spec, &dockerfile, &mut writer)?
        } else {
            write_files(&extra, &mut writer)?
        };
        writer.flush().map_err(|err| failed(&spec.context, err))?;
        summary.bytes = writer.sent;
        Ok(summary)
    });
    (receiver, handle)
}

fn failed(path: &Path, err: std::io::Error) -> EngineError {
    EngineError::BuildContext {
        path: path.display().to_string(),
        reason: err.to_string(),
    }
}

/// A `Write` that hands full chunks to the request body. When the body is gone (the
/// engine refused the build, or the build was cancelled) writing fails and the walk stops.
struct ChannelWriter {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    sent: u64,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.sender.blocking_send(Bytes::from(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A context made of `files` only (path, contents, Unix mode): berth's own proxy image.
fn write_files(
    files: &[(String, Vec<u8>, u32)],
    out: &mut impl Write,
) -> Result<ContextSummary, EngineError> {
    let mut builder = tar::Builder::new(out);
    let memory = Path::new("(in memory)");
    for (path, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .map_err(|err| failed(memory, err))?;
    }
    builder.finish().map_err(|err| failed(memory, err))?;
    Ok(ContextSummary {
        entries: files.len() as u64,
        ..Default::default()
    })
}

/// The context directory with `.dockerignore` applied. The Dockerfile and `.dockerignore`
/// are always sent, as the docker CLI does, because the builder needs the one and uses the
/// other. Ownership is reset to root, as the docker CLI does, so that the cache does not
/// depend on who checked the files out.
fn write_dir(
    spec: &BuildSpec,
    dockerfile: &str,
    out: &mut impl Write,
) -> Result<ContextSummary, EngineError> {
    let root = &spec.context;
    let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(err) => return Err(failed(&root.join(".dockerignore"), err)),
    };
    let always = |relative: &str| relative == dockerfile || relative == ".dockerignore";
    let mut summary = ContextSummary::default();
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|err| failed(&dir, err))?
            .collect::<Result<_, _>>()
            .map_err(|err| failed(&dir, err))?;
        // A stable order makes the archive, and so the build, reproducible.
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("walked paths are inside the context")
                .to_string_lossy()
                .replace('\\', "/");
            let metadata = std::fs::symlink_metadata(&path).map_err(|err| failed(&path, err))?;
            let excluded = ignore.is_excluded(&relative) && !always(&relative);
            if metadata.is_dir() {
                // An excluded directory is still walked when a `!` pattern might bring
                // back something inside it.
                if !excluded || ignore.has_exceptions() {
                    pending.push(path.clone());
                }
                if excluded {
                    continue;
                }
            } else if excluded {
                continue;
            }
            if spec.dockerfile_inline.is_some() && relative == INLINE_DOCKERFILE_NAME {
                continue;
            }
            let name = entry.file_name();
            if HEAVY.iter().any(|h| name == *h) {
                summary.heavy.push(relative.clone());
            }
            summary.entries += 1;
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&metadata, tar::HeaderMode::Complete);
            header.set_uid(0);
            header.set_gid(0);
            let _ = header.set_username("");
            let _ = header.set_groupname("");
            if metadata.is_file() {
                let file = std::fs::File::open(&path).map_err(|err| failed(&path, err))?;
                builder
                    .append_data(&mut header, &relative, file)
                    .map_err(|err| failed(&path, err))?;
            } else if metadata.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(|err| failed(&path, err))?;
                builder
                    .append_link(&mut header, &relative, &target)
                    .map_err(|err| failed(&path, err))?;
            } else if metadata.is_dir() {
                builder
                    .append_data(&mut header, format!("{relative}/"), std::io::empty())
                    .map_err(|err| failed(&path, err))?;
            }
            // Sockets, pipes and devices cannot be part of an image build; skip them.
        }
    }
    if let Some(text) = &spec.dockerfile_inline {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, INLINE_DOCKERFILE_NAME, text.as_bytes())
            .map_err(|err| failed(root, err))?;
    }
    builder.finish().map_err(|err| failed(root, err))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(spec: &BuildSpec, dockerfile: &str) -> (Vec<u8>, ContextSummary) {
        let mut out = Vec::new();
        let summary = write_dir(spec, dockerfile, &mut out).unwrap();
        (out, summary)
    }

    fn names(archive: &[u8]) -> Vec<String> {
        let mut names: Vec<String> = tar::Archive::new(archive)
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_context_honours_dockerignore_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            root.join(".dockerignore"),
            "Dockerfile\nsecret.txt\n*.log\n!keep.log\nlogs\n",
        )
        .unwrap();
        for file in ["app.txt", "secret.txt", "debug.log", "keep.log"] {
            std::fs::write(root.join(file), file).unwrap();
        }
        std::fs::create_dir(root.join("logs")).unwrap();
        std::fs::write(root.join("logs/a.txt"), "a").unwrap();
        let spec = BuildSpec {
            context: root.to_path_buf(),
            dockerfile: "Dockerfile".into(),
            ..Default::default()
        };
        let (archive, summary) = archive(&spec, "Dockerfile");
        assert_eq!(
            names(&archive),
            vec![".dockerignore", "Dockerfile", "app.txt", "keep.log"]
        );
        assert!(summary.heavy.is_empty());
    }

    #[test]
    fn heavy_paths_sent_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::create_dir_all(root.join("web/node_modules/x")).unwrap();
        std::fs::write(root.join(".env"), "SECRET=1").unwrap();
        let spec = BuildSpec {
            context: root.to_path_buf(),
            ..Default::default()
        };
        let (_, summary) = archive(&spec, "Dockerfile");
        let mut heavy = summary.heavy.clone();
        heavy.sort();
        assert_eq!(heavy, vec![".env", ".git", "web/node_modules"]);
    }

    #[test]
    fn an_inline_dockerfile_is_added_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        let spec = BuildSpec {
            context: dir.path().to_path_buf(),
            dockerfile_inline: Some("FROM scratch\n".into()),
            ..Default::default()
        };
        let (archive, _) = archive(&spec, INLINE_DOCKERFILE_NAME);
        assert_eq!(names(&archive), vec![INLINE_DOCKERFILE_NAME, "a"]);
    }

    #[tokio::test]
    async fn a_large_context_streams_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("big"), vec![7u8; 3 * CHUNK]).unwrap();
        let spec = BuildSpec {
            context: dir.path().to_path_buf(),
            ..Default::default()
        };
        let (mut chunks, summary) = stream(&spec, "Dockerfile", Vec::new());
        let mut total = 0u64;
        let mut largest = 0usize;
        while let Some(chunk) = chunks.recv().await {
            total += chunk.len() as u64;
            largest = largest.max(chunk.len());
        }
        let summary = summary.await.unwrap().unwrap();
        assert_eq!(summary.bytes, total);
        assert!(total > 3 * CHUNK as u64);
        // Never more than a chunk (plus the tail of one write) is buffered.
        assert!(largest < 2 * CHUNK, "{largest}");
    }
}
