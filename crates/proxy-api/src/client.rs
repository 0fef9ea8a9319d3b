//! The admin API's client: one request per connection on the proxy's unix socket.

use crate::answer::ErrorBody;
use crate::request::{
    AddSetRequest, DeployRequest, MaintenanceRequest, PauseRequest, RemoveSetRequest,
    WeightsRequest,
};
use crate::route::{RouteSpec, SetSpec};
use crate::status::{DeployReport, Status};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the proxy at {path}: {source}; start it with `berth proxy run` or `berth proxy boot`")]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the proxy's admin API failed: {0}")]
    Protocol(String),
    /// The proxy refused the request; the message is the proxy's own.
    #[error("{message}")]
    Refused { status: u16, message: String },
}

pub struct AdminClient {
    socket: PathBuf,
}

impl AdminClient {
    pub fn new(socket: impl Into<PathBuf>) -> AdminClient {
        AdminClient {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn status(&self) -> Result<Status, AdminError> {
        self.call(Method::GET, "/status", None::<&()>).await
    }

    pub async fn put_route(&self, spec: &RouteSpec) -> Result<(), AdminError> {
        self.unit(Method::PUT, &format!("/routes/{}", spec.name), Some(spec))
            .await
    }

    pub async fn remove_route(&self, name: &str) -> Result<(), AdminError> {
        self.unit(Method::DELETE, &format!("/routes/{name}"), None::<&()>)
            .await
    }

    pub async fn deploy(
        &self,
        route: &str,
        set: SetSpec,
        health_timeout: Duration,
        drain_timeout: Duration,
    ) -> Result<DeployReport, AdminError> {
        let request = DeployRequest {
            set,
            health_timeout,
            drain_timeout,
        };
        self.call(
            Method::POST,
            &format!("/routes/{route}/deploy"),
            Some(&request),
        )
        .await
    }

    pub async fn add_set(
        &self,
        route: &str,
        set: SetSpec,
        health_timeout: Duration,
    ) -> Result<(), AdminError> {
        let request = AddSetRequest {
            set,
            health_timeout,
        };
        self.unit(
            Method::POST,
            &format!("/routes/{route}/sets"),
            Some(&request),
        )
        .await
    }

    pub async fn remove_set(
        &self,
        route: &str,
        id: &str,
        drain_timeout: Duration,
    ) -> Result<(), AdminError> {
        let request = RemoveSetRequest { drain_timeout };
        self.unit(
            Method::POST,
            &format!("/routes/{route}/sets/{id}/remove"),
            Some(&request),
        )
        .await
    }

    pub async fn set_weights(
        &self,
        route: &str,
        weights: BTreeMap<String, u32>,
    ) -> Result<(), AdminError> {
        self.unit(
            Method::POST,
            &format!("/routes/{route}/weights"),
            Some(&WeightsRequest { weights }),
        )
        .await
    }

    pub async fn pause(&self, route: &str, hold: Duration) -> Result<(), AdminError> {
        let request = PauseRequest { timeout: hold };
        self.unit(
            Method::POST,
            &format!("/routes/{route}/pause"),
            Some(&request),
        )
        .await
    }

    pub async fn resume(&self, route: &str) -> Result<(), AdminError> {
        self.unit(
            Method::POST,
            &format!("/routes/{route}/resume"),
            None::<&()>,
        )
        .await
    }

    pub async fn maintenance(
        &self,
        route: &str,
        message: Option<String>,
    ) -> Result<(), AdminError> {
        match message {
            Some(message) => {
                self.unit(
                    Method::POST,
                    &format!("/routes/{route}/maintenance"),
                    Some(&MaintenanceRequest { message }),
                )
                .await
            }
            None => {
                self.unit(
                    Method::DELETE,
                    &format!("/routes/{route}/maintenance"),
                    None::<&()>,
                )
                .await
            }
        }
    }

    async fn unit<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), AdminError> {
        let _: serde_json::Value = self.call(method, path, body).await?;
        Ok(())
    }

    /// Sends one request on a fresh connection: admin calls are rare, and a deploy can
    /// hold its connection for the whole drain.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, AdminError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| AdminError::Unreachable {
                    path: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| AdminError::Protocol(e.to_string()))?;
        tokio::spawn(connection);
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| AdminError::Protocol(e.to_string()))?,
            None => Vec::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "berth-proxy")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| AdminError::Protocol(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| AdminError::Protocol(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| AdminError::Protocol(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|body| body.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(AdminError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| AdminError::Protocol(format!("unexpected answer: {e}")))
    }
}
