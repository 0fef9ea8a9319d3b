//! The repository's password file: read it, or create it (0600) on first use.
//!
//! The password never appears in the compose file. restic reads the same file with
//! `--password-file` and trims surrounding whitespace from it; berth does the same, so one
//! file opens the repository from both.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::BackupError;

/// The password in `path`, and whether berth created the file just now.
pub fn read_or_create(path: &Path) -> Result<(String, bool), BackupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => return checked(path, text).map(|p| (p, false)),
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => {}
        Err(cause) => {
            return Err(BackupError::PasswordRead {
                path: path.to_path_buf(),
                cause,
            })
        }
    }
    let created = create(path).map_err(|cause| BackupError::PasswordCreate {
        path: path.to_path_buf(),
        cause,
    })?;
    // Another berth may have created the file between our read and our link; then its
    // password is the one, and ours was never visible.
    let text = std::fs::read_to_string(path).map_err(|cause| BackupError::PasswordRead {
        path: path.to_path_buf(),
        cause,
    })?;
    checked(path, text).map(|p| (p, created))
}

/// The password in `path`; a missing file is an error (restore and list never create one).
pub fn read(path: &Path) -> Result<String, BackupError> {
    let text = std::fs::read_to_string(path).map_err(|cause| BackupError::PasswordRead {
        path: path.to_path_buf(),
        cause,
    })?;
    checked(path, text)
}

fn checked(path: &Path, text: String) -> Result<String, BackupError> {
    let password = text.trim();
    if password.is_empty() {
        return Err(BackupError::PasswordEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(password.to_string())
}

/// Writes a new random password to a temporary file (0600, synced) and links it into
/// place, which fails rather than replaces when the file appeared meanwhile: a password
/// that may already encrypt a repository is never overwritten. False when it appeared.
fn create(path: &Path) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut random = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(format!("{hex}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_a_private_password_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth/backup-password");
        let (first, created) = read_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(first.len(), 64);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let (second, created) = read_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first, second);
    }

    #[test]
    fn an_empty_file_is_refused_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "\n").unwrap();
        let err = read_or_create(&path).unwrap_err();
        assert!(matches!(err, BackupError::PasswordEmpty { .. }), "{err}");
    }
}
