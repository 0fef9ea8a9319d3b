//! Crash-safe file replacement: a reader sees either the old or the new contents, never a
//! torn write, even if the machine loses power mid-way. Every file berth replaces as a whole
//! (the proxy's state file, certificates and keys, the ACME account, `berth config -o`,
//! systemd units) is written here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How the names of temporary files start, so that what a crash left behind can be
/// recognised (see `is_leftover`) and removed.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The permission bits of a file written without a mode, before the umask narrows them (as
/// `File::create` does).
const DEFAULT_MODE: u32 = 0o666;

/// Replaces `path` with `contents`, with the mode a new file gets from the umask.
pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_file(path, contents, None)
}

/// Replaces `path` with `contents`, whose permission bits are exactly `mode` whatever the
/// umask (0o600 for private keys).
pub fn write_mode(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    write_file(path, contents, Some(mode))
}

/// Whether `file_name` is a temporary file of this module, which only a crash leaves behind.
pub fn is_leftover(file_name: &str) -> bool {
    file_name.starts_with(TEMP_PREFIX)
}

/// Writes a temporary file in the same directory (so that the rename cannot cross file
/// systems), fsyncs it, renames it over `path` and fsyncs the directory so that the rename
/// itself survives a crash.
fn write_file(path: &Path, contents: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    // The process id and a counter keep two writers (processes or threads) from sharing
    // one temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let result = (|| {
        // The mode is given at creation so that a private key is never readable by others,
        // not even between create and chmod.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.unwrap_or(DEFAULT_MODE))
            .open(&temp)?;
        file.write_all(contents)?;
        if let Some(mode) = mode {
            // The umask may have narrowed the mode given at creation.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temporary file is garbage whatever happened, and the original
        // error is the one worth reporting.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop; this
    /// crate has no dependencies, so no `tempfile`.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "berth-base-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = TempDir::new("replace");
        let path = dir.0.join("state.json");
        write(&path, b"old").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(&dir.0), ["state.json"]);
    }

    #[test]
    fn the_mode_is_exactly_as_asked() {
        let dir = TempDir::new("mode");
        let key = dir.0.join("key.pem");
        write_mode(&key, b"secret", 0o600).unwrap();
        assert_eq!(mode_of(&key), 0o600);
        // Wider than a usual umask (022) lets through: set explicitly after creation.
        let shared = dir.0.join("shared");
        write_mode(&shared, b"x", 0o666).unwrap();
        assert_eq!(mode_of(&shared), 0o666);
        // Replacing a file takes the new mode, not the old file's.
        write_mode(&shared, b"y", 0o640).unwrap();
        assert_eq!(mode_of(&shared), 0o640);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_intact() {
        let dir = TempDir::new("fail");
        // A name of 250 bytes is valid, but the temporary file's name (prefix, process id
        // and counter added) is longer than a file name may be, so creating it fails; unlike
        // a read-only directory this fails for root too.
        let path = dir.0.join("s".repeat(250));
        fs::write(&path, b"old").unwrap();
        assert!(write(&path, b"new").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(&dir.0), ["s".repeat(250)]);
    }

    #[test]
    fn a_failed_rename_leaves_the_old_file_intact_and_no_temporary_file() {
        let dir = TempDir::new("rename");
        // The target is a non-empty directory, which no file can be renamed over; this
        // fails for root too.
        let path = dir.0.join("target");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"old").unwrap();
        assert!(write(&path, b"new").is_err());
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"old");
        assert_eq!(names(&dir.0), ["target"]);
    }

    #[test]
    fn temporary_files_are_recognised() {
        assert!(is_leftover(".tmp-12-0-shop.test.key"));
        assert!(!is_leftover("shop.test.key"));
    }
}
