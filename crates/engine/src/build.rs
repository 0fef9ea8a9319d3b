//! Building images with the engine's classic builder.
//!
//! BuildKit needs its gRPC session protocol, which bollard only offers with its `buildkit`
//! feature (tonic and friends) and which this engine (20.10, API 1.41) does not serve
//! through the plain `/build` endpoint; the classic builder runs the same Dockerfiles,
//! caches by layer and reports each step, which is what `berth build` shows.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, TagImageOptions};
use futures_util::StreamExt;

use crate::dockerignore::DockerIgnore;
use crate::labels::hash_map;
use crate::{BuildEvent, BuildSpec, BuiltImage, Engine, EngineError};

/// The name under which an inline Dockerfile is put into the build context. It is unusual
/// enough not to clash with a file of the user's.
pub const INLINE_DOCKERFILE_NAME: &str = ".berth-inline.Dockerfile";

impl Engine {
    /// Builds `spec` and tags it with all of `spec.tags`, calling `on_event` with each
    /// line of builder output as it arrives.
    pub async fn build_image(
        &self,
        spec: &BuildSpec,
        on_event: impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let image = spec
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| spec.context.display().to_string());
        let dockerfile = match &spec.dockerfile_inline {
            Some(_) => INLINE_DOCKERFILE_NAME.to_string(),
            None if spec.dockerfile.is_empty() => "Dockerfile".to_string(),
            None => spec.dockerfile.clone(),
        };
        let context = {
            let owned = spec.clone();
            let dockerfile = dockerfile.clone();
            // Reading the context is blocking file I/O; keep it off the async workers.
            tokio::task::spawn_blocking(move || context_tar(&owned, &dockerfile))
                .await
                .map_err(|err| EngineError::BuildContext {
                    path: spec.context.display().to_string(),
                    reason: err.to_string(),
                })??
        };
        self.build_from_tar(spec, image, dockerfile, context, on_event)
            .await
    }

    /// Builds an image whose whole context is `files` (path inside the context, contents,
    /// Unix mode), with `spec.dockerfile_inline` as the Dockerfile; `spec.context` is not
    /// read. berth builds its own proxy image this way, from its binary, without writing a
    /// context directory to disk.
    pub async fn build_image_from_files(
        &self,
        spec: &BuildSpec,
        files: &[(String, Vec<u8>, u32)],
        on_event: impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let image = spec.tags.first().cloned().unwrap_or_default();
        let dockerfile_text = spec.dockerfile_inline.clone().unwrap_or_default();
        let mut builder = tar::Builder::new(Vec::new());
        let failed = |err: std::io::Error| EngineError::BuildContext {
            path: "(in memory)".to_string(),
            reason: err.to_string(),
        };
        let entries = files
            .iter()
            .map(|(path, bytes, mode)| (path.as_str(), bytes.as_slice(), *mode))
            .chain(std::iter::once((
                INLINE_DOCKERFILE_NAME,
                dockerfile_text.as_bytes(),
                0o644,
            )));
        for (path, bytes, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(mode);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, bytes)
                .map_err(failed)?;
        }
        let context = builder.into_inner().map_err(failed)?;
        self.build_from_tar(
            spec,
            image,
            INLINE_DOCKERFILE_NAME.to_string(),
            context,
            on_event,
        )
        .await
    }

    /// Sends a ready context archive to the builder and follows its output.
    async fn build_from_tar(
        &self,
        spec: &BuildSpec,
        image: String,
        dockerfile: String,
        context: Vec<u8>,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let options = BuildImageOptions {
            dockerfile,
            t: spec.tags.first().cloned(),
            nocache: spec.no_cache,
            pull: spec.pull.then(|| "1".to_string()),
            rm: true,
            forcerm: true,
            buildargs: Some(hash_map(&spec.args)),
            labels: Some(hash_map(&spec.labels)),
            target: spec.target.clone().unwrap_or_default(),
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let mut stream = self.docker.build_image(
            options,
            None::<HashMap<String, bollard::auth::DockerCredentials>>,
            Some(bollard::body_full(context.into())),
        );
        let mut steps = 0;
        let mut cached_steps = 0;
        let mut last_step = String::new();
        let mut image_id = None;
        while let Some(message) = stream.next().await {
            let message = message.map_err(|err| match err {
                bollard::errors::Error::DockerStreamError { error } => EngineError::BuildFailed {
                    image: image.clone(),
                    message: error.trim().to_string(),
                },
                bollard::errors::Error::DockerResponseServerError { message, .. } => {
                    EngineError::BuildFailed {
                        image: image.clone(),
                        message: message.trim().to_string(),
                    }
                }
                other => self.api_error("build an image", other),
            })?;
            if let Some(id) = message.aux.and_then(|aux| aux.id) {
                image_id = Some(id);
            }
            let Some(text) = message.stream.or(message.status) else {
                continue;
            };
            for line in text
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
            {
                if line.starts_with("Step ") {
                    steps += 1;
                    last_step = line.to_string();
                }
                if line.trim() == "---> Using cache" {
                    cached_steps += 1;
                    on_event(BuildEvent::CacheHit(last_step.clone()));
                } else {
                    on_event(BuildEvent::Output(line.to_string()));
                }
                if let Some(id) = line.strip_prefix("Successfully built ") {
                    image_id.get_or_insert_with(|| id.trim().to_string());
                }
            }
        }
        let image_id = image_id.ok_or_else(|| EngineError::BuildFailed {
            image: image.clone(),
            message: "the builder finished without reporting an image".into(),
        })?;
        for tag in spec.tags.iter().skip(1) {
            let (repo, tag_part) = split_reference(tag);
            let options = TagImageOptions {
                repo: Some(repo.to_string()),
                tag: Some(tag_part.to_string()),
            };
            self.docker
                .tag_image(&image_id, Some(options))
                .await
                .map_err(|err| self.api_error("tag an image", err))?;
        }
        let inspect = self
            .docker
            .inspect_image(&image_id)
            .await
            .map_err(|err| self.api_error("inspect an image", err))?;
        Ok(BuiltImage {
            id: inspect.id.unwrap_or(image_id),
            size_bytes: inspect.size.unwrap_or(0),
            layers: inspect
                .root_fs
                .and_then(|root| root.layers)
                .map_or(0, |layers| layers.len()),
            steps,
            cached_steps,
        })
    }
}

/// `repo[:tag]` → (repo, tag); the colon of a registry port is not a tag separator.
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// The build context as a tar archive in memory, with `.dockerignore` applied. The
/// Dockerfile and `.dockerignore` are always sent, as the docker CLI does, because the
/// builder needs the one and uses the other. Ownership is reset to root, as the docker CLI
/// does, so that the cache does not depend on who checked the files out.
fn context_tar(spec: &BuildSpec, dockerfile: &str) -> Result<Vec<u8>, EngineError> {
    let root = &spec.context;
    let failed = |path: &Path, err: std::io::Error| EngineError::BuildContext {
        path: path.display().to_string(),
        reason: err.to_string(),
    };
    let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(err) => return Err(failed(&root.join(".dockerignore"), err)),
    };
    let always = |relative: &str| relative == dockerfile || relative == ".dockerignore";
    let mut builder = tar::Builder::new(Vec::new());
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
    builder.into_inner().map_err(|err| failed(root, err))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let archive = context_tar(&spec, "Dockerfile").unwrap();
        assert_eq!(
            names(&archive),
            vec![".dockerignore", "Dockerfile", "app.txt", "keep.log"]
        );
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
        let archive = context_tar(&spec, INLINE_DOCKERFILE_NAME).unwrap();
        assert_eq!(names(&archive), vec![INLINE_DOCKERFILE_NAME, "a"]);
    }

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(split_reference("shop-web:1.2"), ("shop-web", "1.2"));
        assert_eq!(split_reference("shop-web"), ("shop-web", "latest"));
        assert_eq!(
            split_reference("localhost:5000/shop-web"),
            ("localhost:5000/shop-web", "latest")
        );
    }
}
