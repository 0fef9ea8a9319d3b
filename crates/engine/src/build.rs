//! Building images: BuildKit through the engine's session API by default (buildkit/), the
//! classic builder for engines without it or when asked. Both send the same context
//! stream (context.rs) and end the same way: every tag applied, the image inspected and
//! its history read for the report.

use std::collections::HashMap;
use std::time::Instant;

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, TagImageOptions};
use futures_util::StreamExt;

use crate::context::{self, ContextSummary, INLINE_DOCKERFILE_NAME};
use crate::labels::hash_map;
use crate::{
    BuildEvent, BuildSpec, Builder, BuiltImage, Engine, EngineError, LayerRecord, StepRecord,
    StepStatus,
};

impl Engine {
    /// Builds `spec` and tags it with all of `spec.tags`, calling `on_event` as steps start,
    /// print and finish. With `Builder::BuildKit` an engine without BuildKit builds with the
    /// classic builder instead, after a `Notice`.
    pub async fn build_image(
        &self,
        spec: &BuildSpec,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let dockerfile = dockerfile_name(spec);
        if spec.builder == Builder::BuildKit {
            match self
                .buildkit_build(spec, &dockerfile, Vec::new(), &mut on_event)
                .await
            {
                Err(EngineError::BuildKitUnavailable { reason, .. }) => {
                    on_event(BuildEvent::Notice(format!(
                        "the engine offers no BuildKit ({reason}); building with the classic builder, which has no RUN --mount or build secrets"
                    )));
                }
                other => return other,
            }
        }
        classic_check(spec)?;
        self.classic_build(spec, dockerfile, Vec::new(), &mut on_event)
            .await
    }

    /// Builds an image whose whole context is `files` (path inside the context, contents,
    /// Unix mode), with `spec.dockerfile_inline` as the Dockerfile; `spec.context` is not
    /// read. berth builds its own proxy image this way, from its binary, without writing a
    /// context directory to disk. It uses the classic builder: one COPY of one file needs
    /// nothing BuildKit adds, and the proxy must build on every engine.
    pub async fn build_image_from_files(
        &self,
        spec: &BuildSpec,
        files: &[(String, Vec<u8>, u32)],
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let mut files = files.to_vec();
        files.push((
            INLINE_DOCKERFILE_NAME.to_string(),
            spec.dockerfile_inline
                .clone()
                .unwrap_or_default()
                .into_bytes(),
            0o644,
        ));
        self.classic_build(
            spec,
            INLINE_DOCKERFILE_NAME.to_string(),
            files,
            &mut on_event,
        )
        .await
    }

    /// Sends the context to the classic builder and follows its output.
    async fn classic_build(
        &self,
        spec: &BuildSpec,
        dockerfile: String,
        files: Vec<(String, Vec<u8>, u32)>,
        on_event: &mut impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let image = display_name(spec);
        let options = BuildImageOptions {
            dockerfile: dockerfile.clone(),
            t: spec.tags.first().cloned(),
            nocache: spec.no_cache,
            pull: spec.pull.then(|| "1".to_string()),
            rm: true,
            forcerm: true,
            buildargs: Some(hash_map(&spec.args)),
            labels: Some(hash_map(&spec.labels)),
            target: spec.target.clone().unwrap_or_default(),
            cachefrom: (!spec.cache_from.is_empty()).then(|| spec.cache_from.clone()),
            networkmode: spec.network.clone(),
            shmsize: spec.shm_size.map(|s| s as i32),
            extrahosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.join(",")),
            platform: spec.platform.clone().unwrap_or_default(),
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let (chunks, writer) = context::stream(spec, &dockerfile, files);
        let body = bollard::body_stream(tokio_stream_of(chunks));
        let mut stream = self.docker.build_image(
            options,
            None::<HashMap<String, bollard::auth::DockerCredentials>>,
            Some(body),
        );
        let mut steps: Vec<StepRecord> = Vec::new();
        let mut started = Instant::now();
        let mut image_id = None;
        let mut failure = None;
        while let Some(message) = stream.next().await {
            let message = match message {
                Ok(message) => message,
                Err(bollard::errors::Error::DockerStreamError { error })
                | Err(bollard::errors::Error::DockerResponseServerError {
                    message: error, ..
                }) => {
                    failure = Some(error.trim().to_string());
                    break;
                }
                Err(other) => return Err(self.api_error("build an image", other)),
            };
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
                    finish_step(&mut steps, started, on_event);
                    started = Instant::now();
                    steps.push(StepRecord {
                        name: line.to_string(),
                        cached: false,
                        elapsed: Default::default(),
                    });
                    on_event(BuildEvent::Step {
                        name: line.to_string(),
                        status: StepStatus::Running,
                    });
                } else if line.trim() == "---> Using cache" {
                    if let Some(step) = steps.last_mut() {
                        step.cached = true;
                    }
                } else if let Some(id) = line.strip_prefix("Successfully built ") {
                    image_id.get_or_insert_with(|| id.trim().to_string());
                } else if let Some(step) = steps.last() {
                    on_event(BuildEvent::Output {
                        step: step.name.clone(),
                        line: line.to_string(),
                    });
                }
            }
        }
        drop(stream);
        let context = writer.await.map_err(|err| EngineError::BuildContext {
            path: spec.context.display().to_string(),
            reason: err.to_string(),
        });
        if let Some(message) = failure {
            // A context that could not be read is the cause of whatever the builder said.
            if let Ok(Err(err @ EngineError::BuildContext { .. })) = context {
                if !err.to_string().contains("stopped reading") {
                    return Err(err);
                }
            }
            let step = steps.last().map(|s| s.name.clone());
            return Err(EngineError::BuildFailed {
                image,
                message: match step {
                    Some(step) => format!("{step}: {message}"),
                    None => message,
                },
            });
        }
        finish_step(&mut steps, started, on_event);
        let context = context??;
        let image_id = image_id.ok_or_else(|| EngineError::BuildFailed {
            image: image.clone(),
            message: "the builder finished without reporting an image".into(),
        })?;
        for tag in spec.tags.iter().skip(1) {
            self.tag(&image_id, tag).await?;
        }
        self.built(image_id, steps, context, Builder::Classic).await
    }

    /// Tags `image_id` as `reference`.
    pub(crate) async fn tag(&self, image_id: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag_part) = split_reference(reference);
        let options = TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag_part.to_string()),
        };
        self.docker
            .tag_image(image_id, Some(options))
            .await
            .map_err(|err| self.api_error("tag an image", err))
    }

    /// The finished image: inspected for its size and id, its history read for the layers.
    pub(crate) async fn built(
        &self,
        image_id: String,
        steps: Vec<StepRecord>,
        context: ContextSummary,
        builder: Builder,
    ) -> Result<BuiltImage, EngineError> {
        let inspect = self
            .docker
            .inspect_image(&image_id)
            .await
            .map_err(|err| self.api_error("inspect an image", err))?;
        let history = self
            .docker
            .image_history(&image_id)
            .await
            .map_err(|err| self.api_error("read an image's history", err))?;
        // The engine lists history newest first.
        let layers = history
            .into_iter()
            .rev()
            .map(|item| LayerRecord {
                created_by: item.created_by,
                size_bytes: item.size,
            })
            .collect();
        Ok(BuiltImage {
            id: inspect.id.unwrap_or(image_id),
            size_bytes: inspect.size.unwrap_or(0),
            layers,
            steps,
            context,
            builder,
        })
    }
}

/// The classic step that just ended: timed, and reported unless it came from the cache.
fn finish_step(steps: &mut [StepRecord], started: Instant, on_event: &mut impl FnMut(BuildEvent)) {
    if let Some(step) = steps.last_mut() {
        let status = if step.cached {
            StepStatus::Cached
        } else {
            step.elapsed = started.elapsed();
            StepStatus::Done(step.elapsed)
        };
        on_event(BuildEvent::Step {
            name: step.name.clone(),
            status,
        });
    }
}

/// The classic builder has no session: a build that needs one cannot run on it, and says so
/// before anything is sent.
fn classic_check(spec: &BuildSpec) -> Result<(), EngineError> {
    let needs = [
        (!spec.secrets.is_empty(), "build secrets"),
        (!spec.ssh.is_empty(), "ssh forwarding"),
    ];
    match needs.iter().find(|(needed, _)| *needed) {
        Some((_, what)) => Err(EngineError::BuildFailed {
            image: display_name(spec),
            message: format!("{what} need BuildKit, and this build uses the classic builder; drop `x-berth.builder: classic` or `--builder classic`"),
        }),
        None => Ok(()),
    }
}

/// The Dockerfile's name inside the context.
pub(crate) fn dockerfile_name(spec: &BuildSpec) -> String {
    match &spec.dockerfile_inline {
        Some(_) => INLINE_DOCKERFILE_NAME.to_string(),
        None if spec.dockerfile.is_empty() => "Dockerfile".to_string(),
        None => spec.dockerfile.clone(),
    }
}

/// How a build is named in messages: its first tag, else its context.
pub(crate) fn display_name(spec: &BuildSpec) -> String {
    spec.tags
        .first()
        .cloned()
        .unwrap_or_else(|| spec.context.display().to_string())
}

/// The context's chunks as a stream for a request body.
pub(crate) fn tokio_stream_of(
    mut chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx))
}

/// `repo[:tag]` → (repo, tag); the colon of a registry port is not a tag separator.
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(split_reference("shop-web:1.2"), ("shop-web", "1.2"));
        assert_eq!(split_reference("shop-web"), ("shop-web", "latest"));
        assert_eq!(
            split_reference("localhost:5000/shop-web"),
            ("localhost:5000/shop-web", "latest")
        );
    }

    #[test]
    fn the_classic_builder_refuses_what_needs_a_session() {
        let spec = BuildSpec {
            tags: vec!["a:1".into()],
            secrets: [("npm".to_string(), crate::SecretSource::Env("T".into()))].into(),
            ..Default::default()
        };
        let err = classic_check(&spec).unwrap_err().to_string();
        assert!(err.contains("build secrets need BuildKit"), "{err}");
    }
}
