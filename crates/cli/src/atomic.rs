//! Atomic file writes: every file berth writes goes through here.

use std::io::Write;

/// Temp file in the same directory, fsync, rename: readers see the old file or the new one.
pub fn write(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    write_file(path, data, None)
}

/// As `write`, with the file's permission bits set to exactly `mode` (whatever the umask).
pub fn write_mode(path: &std::path::Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    write_file(path, data, Some(mode))
}

fn write_file(path: &std::path::Path, data: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        if let Some(mode) = mode {
            options.mode(mode);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(data)?;
        if let Some(mode) = mode {
            // The umask may have narrowed the mode given at creation.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
