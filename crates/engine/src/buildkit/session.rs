//! A BuildKit session: the engine's `/session` endpoint upgraded to HTTP/2, on which berth is
//! the gRPC server and BuildKit the client. BuildKit asks it for the build's secrets
//! (`RUN --mount=type=secret`) and for the SSH agent (`RUN --mount=type=ssh`); the health
//! service is what BuildKit polls to know the session is alive.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;

use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse,
    HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard_buildkit_proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use bollard_buildkit_proto::moby::sshforward::v1::{
    BytesMessage, CheckAgentRequest, CheckAgentResponse,
};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status};

use super::wire::{Body, Socket};

/// The gRPC methods the session serves. The engine forwards only the methods named in the
/// upgrade request, so this list and the services added in `open` go together.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];

/// An open session. Dropping it closes the connection, which ends BuildKit's use of it.
pub(crate) struct Session {
    pub(crate) id: String,
    server: tokio::task::JoinHandle<()>,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.abort();
        self.connection.abort();
    }
}

/// Why a session could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The engine has no session endpoint: an engine older than API 1.39 or one built
    /// without BuildKit. The caller builds with the classic builder instead.
    Unsupported(String),
    /// The connection failed.
    Io(std::io::Error),
}

impl Session {
    /// Opens a session on `socket` serving `secrets` (id → contents) and `agents`
    /// (id → agent socket path).
    pub(crate) async fn open(
        socket: &Socket,
        api_version: &str,
        secrets: BTreeMap<String, Vec<u8>>,
        agents: BTreeMap<String, PathBuf>,
    ) -> Result<Session, OpenError> {
        let id = super::new_id();
        let mut request = hyper::Request::post(format!("/v{api_version}/session"))
            .header("Host", "docker")
            .header("Connection", "Upgrade")
            .header("Upgrade", "h2c")
            .header("X-Docker-Expose-Session-Uuid", &id)
            .header("X-Docker-Expose-Session-Name", "berth")
            .header("X-Docker-Expose-Session-Sharedkey", "");
        for method in METHODS {
            request = request.header("X-Docker-Expose-Session-Grpc-Method", *method);
        }
        let request = request
            .body(empty())
            .expect("a request built from valid parts");
        let (response, connection) = socket.send(request).await.map_err(OpenError::Io)?;
        if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
                .unwrap_or_default();
            connection.abort();
            return Err(OpenError::Unsupported(format!("{status} {body}")));
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|err| OpenError::Io(std::io::Error::other(err)))?;
        let routes = tonic::service::Routes::new(HealthServer::new(Alive))
            .add_service(SecretsServer::new(SecretStore(secrets)))
            .add_service(SshServer::new(Agents(agents)));
        let server = tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(routes);
            // The engine closes the connection when the build is done; that ends this.
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(upgraded, service)
                .await;
        });
        Ok(Session {
            id,
            server,
            connection,
        })
    }
}

pub(crate) fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The session is alive for as long as it answers.
struct Alive;

#[tonic::async_trait]
impl Health for Alive {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Ok(Response::new(HealthListResponse::default()))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("berth's session answers Check only"))
    }
}

/// The build's secrets, read before the build started (so a missing file fails before
/// anything is sent) and held only in this process's memory.
struct SecretStore(BTreeMap<String, Vec<u8>>);

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.0.get(id) {
            Some(data) => Ok(Response::new(GetSecretResponse { data: data.clone() })),
            None => Err(Status::not_found(format!(
                "secret {id} is not in the service's build.secrets"
            ))),
        }
    }
}

/// SSH agents the build may use, by id (`default` is `$SSH_AUTH_SOCK`).
struct Agents(BTreeMap<String, PathBuf>);

#[tonic::async_trait]
impl Ssh for Agents {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        let id = agent_id(&request.get_ref().id);
        match self.0.contains_key(id) {
            true => Ok(Response::new(CheckAgentResponse {})),
            false => Err(Status::not_found(format!(
                "ssh agent {id} is not in the service's build.ssh"
            ))),
        }
    }

    type ForwardAgentStream =
        Pin<Box<dyn Stream<Item = Result<BytesMessage, Status>> + Send + 'static>>;

    /// Pipes one agent conversation: BuildKit's messages to the agent's socket, and the
    /// agent's answers back, until either side closes.
    async fn forward_agent(
        &self,
        request: Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        // BuildKit names the agent in the call's metadata; no name means the default one.
        let id = request
            .metadata()
            .get("id")
            .and_then(|v| v.to_str().ok())
            .map(agent_id)
            .unwrap_or("default")
            .to_string();
        let path = self
            .0
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("ssh agent {id} is not configured")))?;
        let socket = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|err| Status::unavailable(format!("ssh agent {}: {err}", path.display())))?;
        let (read, mut write) = socket.into_split();
        let mut inbound = request.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(message)) = inbound.next().await {
                if write.write_all(&message.data).await.is_err() {
                    break;
                }
            }
            let _ = write.shutdown().await;
        });
        let outbound = tokio_util::io::ReaderStream::new(read).map(|chunk| {
            chunk
                .map(|data| BytesMessage {
                    data: data.to_vec(),
                })
                .map_err(|err| Status::unavailable(err.to_string()))
        });
        Ok(Response::new(Box::pin(outbound)))
    }
}

fn agent_id(id: &str) -> &str {
    if id.is_empty() {
        "default"
    } else {
        id
    }
}

/// Unused by the session itself but kept beside it: BuildKit's ids for the session's
/// services, for the tests that check the METHODS list.
#[cfg(test)]
fn served() -> std::collections::HashMap<&'static str, &'static str> {
    use tonic::server::NamedService;
    std::collections::HashMap::from([
        (HealthServer::<Alive>::NAME, "Health"),
        (SecretsServer::<SecretStore>::NAME, "Secrets"),
        (SshServer::<Agents>::NAME, "SSH"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_service_has_its_methods_named_in_the_upgrade() {
        for service in served().keys() {
            assert!(
                METHODS
                    .iter()
                    .any(|m| m.starts_with(&format!("/{service}/"))),
                "{service} is served but none of its methods is exposed"
            );
        }
        for method in METHODS {
            let service = method.trim_start_matches('/').split('/').next().unwrap();
            assert!(
                served().contains_key(service),
                "{method} is exposed but not served"
            );
        }
    }
}
