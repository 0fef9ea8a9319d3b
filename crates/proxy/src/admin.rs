//! The admin API: JSON over HTTP/1.1 on a unix socket that only its owner may open.

use crate::body::{full, ProxyBody};
use crate::control::{Control, ControlError};
use crate::route::{RouteSpec, SetSpec};
use crate::status::Status;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Admin requests are small; anything larger is a mistake or an attack.
const MAX_ADMIN_BODY: usize = 1 << 20;

pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub set: SetSpec,
    #[serde(default = "default_health_timeout")]
    pub health_timeout_ms: u64,
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSetRequest {
    pub set: SetSpec,
    #[serde(default = "default_health_timeout")]
    pub health_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveSetRequest {
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsRequest {
    pub weights: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// How long each request may be held before it gets a 503.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    pub message: String,
}

fn default_health_timeout() -> u64 {
    DEFAULT_HEALTH_TIMEOUT_MS
}

fn default_drain_timeout() -> u64 {
    DEFAULT_DRAIN_TIMEOUT_MS
}

/// What the admin API needs besides the control plane.
pub struct AdminContext {
    pub control: Arc<Control>,
    pub listen: Vec<String>,
    pub tls_listen: Vec<String>,
}

pub async fn handle(ctx: Arc<AdminContext>, req: Request<Incoming>) -> Response<ProxyBody> {
    // A change runs in its own task so that it finishes even when its client goes away: hyper
    // drops a request's future when the connection closes, and a deploy dropped during its
    // health wait would leave its route marked busy with a pending set for good. A killed
    // `berth deploy` thus leaves a change the proxy completes, which the next run waits for.
    let answer = tokio::spawn(async move {
        match route(&ctx, req).await {
            Ok(response) => response,
            Err((status, message)) => json(status, &serde_json::json!({ "error": message })),
        }
    });
    match answer.await {
        Ok(response) => response,
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": format!("the admin request failed: {e}") }),
        ),
    }
}

type AdminResult = Result<Response<ProxyBody>, (StatusCode, String)>;

async fn route(ctx: &AdminContext, req: Request<Incoming>) -> AdminResult {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let control = &ctx.control;
    match (&method, segments.as_slice()) {
        (&Method::GET, ["status"]) => {
            let status = Status {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                listen: ctx.listen.clone(),
                tls_listen: ctx.tls_listen.clone(),
                routes: control.routes().await,
            };
            Ok(json(StatusCode::OK, &status))
        }
        (&Method::PUT, ["routes", name]) => {
            let spec: RouteSpec = body(req).await?;
            if spec.name != *name {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body names route `{}` but the path says `{name}`",
                        spec.name
                    ),
                ));
            }
            control.put_route(spec).await.map_err(err)?;
            Ok(ok())
        }
        (&Method::DELETE, ["routes", name]) => {
            control.remove_route(name).await.map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "deploy"]) => {
            let r: DeployRequest = body(req).await?;
            let report = control
                .deploy(
                    name,
                    r.set,
                    Duration::from_millis(r.health_timeout_ms),
                    Duration::from_millis(r.drain_timeout_ms),
                )
                .await
                .map_err(err)?;
            Ok(json(StatusCode::OK, &report))
        }
        (&Method::POST, ["routes", name, "sets"]) => {
            let r: AddSetRequest = body(req).await?;
            control
                .add_set(name, r.set, Duration::from_millis(r.health_timeout_ms))
                .await
                .map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "sets", id, "remove"]) => {
            let r: RemoveSetRequest = body(req).await?;
            let closed = control
                .remove_set(name, id, Duration::from_millis(r.drain_timeout_ms))
                .await
                .map_err(err)?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "closed_at_deadline": closed }),
            ))
        }
        (&Method::POST, ["routes", name, "weights"]) => {
            let r: WeightsRequest = body(req).await?;
            control.set_weights(name, &r.weights).await.map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "pause"]) => {
            let r: PauseRequest = body(req).await?;
            control
                .pause(name, Duration::from_millis(r.timeout_ms))
                .await
                .map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "resume"]) => {
            control.resume(name).await.map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "maintenance"]) => {
            let r: MaintenanceRequest = body(req).await?;
            control
                .maintenance(name, Some(r.message))
                .await
                .map_err(err)?;
            Ok(ok())
        }
        (&Method::DELETE, ["routes", name, "maintenance"]) => {
            control.maintenance(name, None).await.map_err(err)?;
            Ok(ok())
        }
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("no admin endpoint {method} {path}; see `berth proxy --help`"),
        )),
    }
}

async fn body<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, (StatusCode, String)> {
    let bytes = Limited::new(req.into_body(), MAX_ADMIN_BODY)
        .collect()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid: {e}"),
        )
    })
}

fn err(e: ControlError) -> (StatusCode, String) {
    (
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        e.to_string(),
    )
}

fn ok() -> Response<ProxyBody> {
    json(StatusCode::OK, &serde_json::json!({ "ok": true }))
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<ProxyBody> {
    let text = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
