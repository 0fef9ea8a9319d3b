//! BuildKit builds through the engine's API: a session (session.rs) that serves the build's
//! secrets and SSH agents, and a `/build` request with `version=2` that names it, whose
//! response carries BuildKit's status stream (trace.rs). The engine's own BuildKit runs the
//! Dockerfile frontend, so every Dockerfile feature of the engine's BuildKit works:
//! `RUN --mount=type=cache|bind|secret|ssh`, `COPY --link`, `--from` stages, targets.

mod session;
mod trace;
mod wire;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::build::{display_name, tokio_stream_of};
use crate::context;
use crate::{BuildEvent, BuildSpec, Builder, BuiltImage, Engine, EngineError, SecretSource};
use session::{OpenError, Session};
use wire::Socket;

/// BuildKit refuses secrets larger than this (its own limit, 500 KiB); checked here first
/// so that the error names the secret.
const MAX_SECRET_BYTES: u64 = 500 * 1024;

/// A random id for a session or a build, as BuildKit expects: 25 lowercase letters and
/// digits.
pub(crate) fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < 25 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        let mut value = hasher.finish();
        while value > 0 && out.len() < 25 {
            let digit = (value % 36) as u32;
            out.push(char::from_digit(digit, 36).expect("below 36"));
            value /= 36;
        }
    }
    out
}

/// Cancels the build on the engine and closes its connections when the build is dropped
/// before it finished (Ctrl-C): BuildKit stops, and the image is never tagged, because the
/// exporter tags only a finished build.
struct Cancel {
    socket: Socket,
    api: String,
    build_id: String,
    connection: tokio::task::JoinHandle<()>,
    finished: bool,
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.connection.abort();
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let socket = self.socket.clone();
        let uri = format!(
            "/v{}/build/cancel?{}",
            self.api,
            wire::query(&[("id", self.build_id.clone())])
        );
        runtime.spawn(async move {
            let request = hyper::Request::post(uri)
                .header("Host", "docker")
                .body(session::empty())
                .expect("a request built from valid parts");
            if let Ok((_, connection)) = socket.send(request).await {
                connection.abort();
            }
        });
    }
}

impl Engine {
    /// Builds `spec` with the engine's BuildKit. `files`, when given, is the whole context.
    /// An engine that cannot serve a session answers `BuildKitUnavailable`, for the caller
    /// to fall back on the classic builder.
    pub(crate) async fn buildkit_build(
        &self,
        spec: &BuildSpec,
        dockerfile: &str,
        files: Vec<(String, Vec<u8>, u32)>,
        on_event: &mut impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, EngineError> {
        let image = display_name(spec);
        let unavailable = |reason: String| EngineError::BuildKitUnavailable {
            host: self.host.clone(),
            reason,
        };
        let Some(socket) = Socket::of_host(&self.host) else {
            return Err(unavailable(format!(
                "berth opens BuildKit sessions over unix and tcp sockets only, and the engine is at {}",
                self.host
            )));
        };
        // Secrets are read before anything is sent, so a missing one fails the build here.
        let secrets = read_secrets(spec)?;
        let client = self.docker.client_version();
        let api = format!("{}.{}", client.major_version, client.minor_version);
        let unreachable = |err: std::io::Error| EngineError::Unreachable {
            host: self.host.clone(),
            reason: err.to_string(),
        };

        // Open the session the build's secret and ssh mounts are served from.
        let session = match Session::open(&socket, &api, secrets, spec.ssh.clone()).await {
            Ok(session) => session,
            Err(OpenError::Unsupported(reason)) => return Err(unavailable(reason)),
            Err(OpenError::Io(err)) => return Err(unreachable(err)),
        };

        // Send the build request with the context streaming behind it.
        let build_id = new_id();
        let query = build_query(spec, dockerfile, &session.id, &build_id);
        let (chunks, writer) = context::stream(spec, dockerfile, files);
        let body = http_body_util::StreamBody::new(
            tokio_stream_of(chunks).map(|chunk| Ok::<_, std::io::Error>(Frame::data(chunk))),
        );
        let body = BodyExt::boxed(body);
        let request = hyper::Request::post(format!("/v{api}/build?{query}"))
            .header("Host", "docker")
            .header("Content-Type", "application/x-tar")
            .body(body)
            .expect("a request built from valid parts");
        let (response, connection) = socket.send(request).await.map_err(unreachable)?;
        let mut cancel = Cancel {
            socket: socket.clone(),
            api: api.clone(),
            build_id,
            connection,
            finished: false,
        };
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let text = body
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).to_string())
                .unwrap_or_default();
            cancel.finished = true;
            return Err(EngineError::BuildFailed {
                image,
                message: engine_message(&text),
            });
        }

        // Follow the status stream until the engine reports the image or an error.
        let mut trace = trace::Trace::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut image_id = None;
        let mut error = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| unreachable(std::io::Error::other(err)))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=at).collect();
                let Ok(message) = serde_json::from_slice::<Message>(&line) else {
                    continue;
                };
                match (message.id.as_deref(), message.aux) {
                    (Some("moby.buildkit.trace"), Some(serde_json::Value::String(encoded))) => {
                        trace.apply(&encoded, on_event).map_err(|reason| {
                            EngineError::BuildFailed {
                                image: image.clone(),
                                message: reason,
                            }
                        })?;
                    }
                    (Some("moby.image.id"), Some(aux)) => {
                        image_id = aux.get("ID").and_then(|v| v.as_str()).map(String::from);
                    }
                    _ => {}
                }
                if let Some(text) = message
                    .error_detail
                    .and_then(|d| d.message)
                    .or(message.error)
                {
                    error = Some(text);
                }
            }
        }
        cancel.finished = true;
        drop(session);
        let context = writer.await.map_err(|err| EngineError::BuildContext {
            path: spec.context.display().to_string(),
            reason: err.to_string(),
        })?;
        if let Some(message) = error {
            if let Err(err) = context {
                if !err.to_string().contains("stopped reading") {
                    return Err(err);
                }
            }
            return Err(match trace.failure() {
                Some(failure) => EngineError::StepFailed {
                    image,
                    step: failure.step,
                    error: failure.error,
                    output: failure.lines,
                },
                None => EngineError::BuildFailed {
                    image,
                    message: message.trim().to_string(),
                },
            });
        }
        let context = context?;
        let image_id = image_id.ok_or_else(|| EngineError::BuildFailed {
            image: image.clone(),
            message: "BuildKit finished without reporting an image".into(),
        })?;
        self.built(image_id, trace.steps(), context, Builder::BuildKit)
            .await
    }
}

/// One message of the `/build` response stream.
#[derive(serde::Deserialize)]
struct Message {
    id: Option<String>,
    aux: Option<serde_json::Value>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// The engine's `{"message": …}` error body, or the body as it is.
fn engine_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| text.trim().to_string())
}

/// The `/build` query for a BuildKit build of `spec`.
fn build_query(spec: &BuildSpec, dockerfile: &str, session: &str, build_id: &str) -> String {
    let json = |map: &BTreeMap<String, String>| {
        serde_json::to_string(map).expect("a string map serializes")
    };
    let mut pairs: Vec<(&str, String)> = vec![
        ("version", "2".into()),
        ("session", session.into()),
        ("buildid", build_id.into()),
        ("dockerfile", dockerfile.into()),
        ("buildargs", json(&spec.args)),
        ("labels", json(&spec.labels)),
        ("rm", "1".into()),
        ("forcerm", "1".into()),
    ];
    for tag in &spec.tags {
        pairs.push(("t", tag.clone()));
    }
    if let Some(target) = &spec.target {
        pairs.push(("target", target.clone()));
    }
    if spec.no_cache {
        pairs.push(("nocache", "1".into()));
    }
    if spec.pull {
        pairs.push(("pull", "1".into()));
    }
    if !spec.cache_from.is_empty() {
        pairs.push((
            "cachefrom",
            serde_json::to_string(&spec.cache_from).expect("strings serialize"),
        ));
    }
    if let Some(network) = &spec.network {
        pairs.push(("networkmode", network.clone()));
    }
    if let Some(size) = spec.shm_size {
        pairs.push(("shmsize", size.to_string()));
    }
    if !spec.extra_hosts.is_empty() {
        pairs.push(("extrahosts", spec.extra_hosts.join(",")));
    }
    if let Some(platform) = &spec.platform {
        pairs.push(("platform", platform.clone()));
    }
    wire::query(&pairs)
}

/// Each secret's contents, read now; a missing file or variable is an error naming it.
fn read_secrets(spec: &BuildSpec) -> Result<BTreeMap<String, Vec<u8>>, EngineError> {
    let mut out = BTreeMap::new();
    for (id, source) in &spec.secrets {
        let failed = |reason: String| EngineError::BuildSecret {
            id: id.clone(),
            reason,
        };
        let data = match source {
            SecretSource::File(path) => {
                let len = std::fs::metadata(path)
                    .map_err(|err| failed(format!("{}: {err}", path.display())))?
                    .len();
                if len > MAX_SECRET_BYTES {
                    return Err(failed(format!(
                        "{} is {len} bytes and BuildKit takes secrets up to {MAX_SECRET_BYTES}",
                        path.display()
                    )));
                }
                std::fs::read(path).map_err(|err| failed(format!("{}: {err}", path.display())))?
            }
            SecretSource::Env(name) => std::env::var_os(name)
                .ok_or_else(|| failed(format!("the environment variable {name} is not set")))?
                .into_encoded_bytes(),
        };
        out.insert(id.clone(), data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_characters_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 25);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_query_carries_every_option() {
        let spec = BuildSpec {
            tags: vec!["a:1".into(), "b:2".into()],
            target: Some("prod".into()),
            no_cache: true,
            cache_from: vec!["a:0".into()],
            network: Some("none".into()),
            shm_size: Some(1024),
            extra_hosts: vec!["db:10.0.0.2".into()],
            args: [("A".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        let q = build_query(&spec, "Dockerfile", "sess", "bid");
        for part in [
            "version=2",
            "session=sess",
            "buildid=bid",
            "t=a%3A1",
            "t=b%3A2",
            "target=prod",
            "nocache=1",
            "cachefrom=%5B%22a%3A0%22%5D",
            "networkmode=none",
            "shmsize=1024",
            "extrahosts=db%3A10.0.0.2",
            "buildargs=%7B%22A%22%3A%221%22%7D",
        ] {
            assert!(q.split('&').any(|p| p == part), "{part} missing from {q}");
        }
    }

    #[test]
    fn a_missing_secret_is_named() {
        let spec = BuildSpec {
            secrets: [(
                "npm".to_string(),
                SecretSource::File("/nonexistent/berth-secret".into()),
            )]
            .into(),
            ..Default::default()
        };
        let err = read_secrets(&spec).unwrap_err().to_string();
        assert!(
            err.contains("npm") && err.contains("/nonexistent/berth-secret"),
            "{err}"
        );
    }
}
