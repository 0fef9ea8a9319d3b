//! The `/count` counter, persisted in a file so tests can check that a named volume keeps
//! data across container restarts.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

/// A counter stored in `DIR/count`. The mutex serialises increments inside this process;
/// the file is replaced atomically so a crash never leaves a half-written number behind.
pub struct Counter {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Counter {
    pub fn new(dir: &Path) -> Counter {
        Counter {
            path: dir.join("count"),
            lock: Mutex::new(()),
        }
    }

    /// Adds one to the stored count and returns the new value.
    pub async fn increment(&self) -> io::Result<u64> {
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        // File I/O with fsync blocks, so it runs off the async worker threads.
        tokio::task::spawn_blocking(move || increment_file(&path))
            .await
            .map_err(io::Error::other)?
    }
}

fn increment_file(path: &Path) -> io::Result<u64> {
    let current = match fs::read_to_string(path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not hold a number: {err}", path.display()),
            )
        })?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => 0,
        Err(err) => return Err(err),
    };
    let next = current + 1;
    write_atomically(path, next.to_string().as_bytes())?;
    Ok(next)
}

/// Writes to a temporary file in the same directory, syncs it, renames it over the target
/// and syncs the directory, so readers see either the old or the new content, never a mix.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_up_from_one_and_persists_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let counter = Counter::new(dir.path());
        assert_eq!(counter.increment().await.unwrap(), 1);
        assert_eq!(counter.increment().await.unwrap(), 2);
        assert_eq!(fs::read_to_string(dir.path().join("count")).unwrap(), "2");
        assert!(!dir.path().join("count.tmp").exists());

        // A new counter over the same directory continues where the old one stopped.
        let again = Counter::new(dir.path());
        assert_eq!(again.increment().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn garbage_in_the_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("count"), "not a number").unwrap();
        let err = Counter::new(dir.path()).increment().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
