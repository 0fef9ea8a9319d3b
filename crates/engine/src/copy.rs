//! Putting host files into a container and taking paths out of it, for `berth up --watch`.
//!
//! Files travel as one in-memory tar per call through the engine's archive endpoint (what
//! `docker cp` uses), so a batch of changes costs one request per container. Deleting has
//! no such endpoint: it runs `rm -rf` inside the container, which only works when the image
//! has `rm`. Images built `FROM scratch` do not; there, deletions are reported as
//! [`EngineError::CannotDelete`] and the caller decides to warn and go on.

use std::path::{Path, PathBuf};

use bollard::query_parameters::UploadToContainerOptions;

use crate::error::server_error;
use crate::{Engine, EngineError, ExecOptions};

impl Engine {
    /// Copies each host file (or directory, recursively) to its absolute path in the
    /// container, keeping the file mode and modification time. Missing parent directories
    /// in the container are created by the engine while it unpacks the archive.
    pub async fn copy_into(
        &self,
        container: &str,
        files: &[(PathBuf, String)],
    ) -> Result<(), EngineError> {
        if files.is_empty() {
            return Ok(());
        }
        let owned = files.to_vec();
        // Reading the files is blocking I/O; keep it off the async workers.
        let archive = tokio::task::spawn_blocking(move || archive(&owned))
            .await
            .map_err(|err| EngineError::CopySource {
                path: files[0].0.display().to_string(),
                reason: err.to_string(),
            })??;
        let options = UploadToContainerOptions {
            // Entries carry their full path below `/`, so one upload serves every target.
            path: "/".to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(|err| match server_error(&err) {
                Some((404, message)) if message.contains("No such container") => {
                    EngineError::NotFound {
                        what: "container",
                        name: container.to_string(),
                    }
                }
                _ => self.api_error("copy files into a container", err),
            })
    }

    /// Removes `paths` (absolute, in the container) with `rm -rf`. A container without
    /// `rm` (an image built `FROM scratch`) cannot delete anything: that, and any failure
    /// of `rm` itself, is [`EngineError::CannotDelete`], which callers may treat as a
    /// warning, since the rest of the container is unaffected.
    pub async fn delete_paths(&self, container: &str, paths: &[String]) -> Result<(), EngineError> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut cmd = vec!["rm".to_string(), "-rf".to_string(), "--".to_string()];
        cmd.extend(paths.iter().cloned());
        let opts = ExecOptions {
            cmd,
            ..Default::default()
        };
        let mut stderr = Vec::new();
        let code = self
            .exec(
                container,
                &opts,
                None::<tokio::io::Empty>,
                tokio::io::sink(),
                &mut stderr,
            )
            .await?;
        if code == 0 {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&stderr).trim().to_string();
        // 126 and 127 are the runtime's "cannot execute" and "not found": there is no `rm`.
        let reason = if code == 126 || code == 127 || message.contains("executable file not found")
        {
            "the image has no `rm` (it is probably built FROM scratch)".to_string()
        } else if message.is_empty() {
            format!("`rm` exited with code {code}")
        } else {
            message
        };
        Err(EngineError::CannotDelete {
            container: container.to_string(),
            reason,
        })
    }
}

/// The tar of `files`, each entry named by its container path without the leading `/`.
fn archive(files: &[(PathBuf, String)]) -> Result<Vec<u8>, EngineError> {
    let failed = |path: &Path, err: std::io::Error| EngineError::CopySource {
        path: path.display().to_string(),
        reason: err.to_string(),
    };
    let mut builder = tar::Builder::new(Vec::new());
    // A symlink is copied as a symlink, as `docker cp` does, rather than as its target.
    builder.follow_symlinks(false);
    for (host, target) in files {
        let name = target.trim_start_matches('/');
        if name.is_empty() || !target.starts_with('/') {
            return Err(EngineError::CopySource {
                path: host.display().to_string(),
                reason: format!("the container path {target:?} is not an absolute file path"),
            });
        }
        let metadata = std::fs::symlink_metadata(host).map_err(|err| failed(host, err))?;
        if metadata.is_dir() {
            builder
                .append_dir_all(name, host)
                .map_err(|err| failed(host, err))?;
        } else {
            builder
                .append_path_with_name(host, name)
                .map_err(|err| failed(host, err))?;
        }
    }
    builder.into_inner().map_err(|err| EngineError::CopySource {
        path: files[0].0.display().to_string(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_by_container_path_and_keep_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.sh");
        std::fs::write(&file, "echo hi").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o751)).unwrap();
        }
        let bytes = archive(&[(file, "/app/bin/run.sh".to_string())]).unwrap();
        let mut tar = tar::Archive::new(&bytes[..]);
        let entries: Vec<_> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap() & 0o777,
                )
            })
            .collect();
        #[cfg(unix)]
        assert_eq!(entries, vec![("app/bin/run.sh".to_string(), 0o751)]);
        #[cfg(not(unix))]
        assert_eq!(entries[0].0, "app/bin/run.sh");
    }

    #[test]
    fn a_relative_container_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "x").unwrap();
        let err = archive(&[(file, "app/a".to_string())]).unwrap_err();
        assert!(
            err.to_string().contains("not an absolute file path"),
            "{err}"
        );
    }
}
