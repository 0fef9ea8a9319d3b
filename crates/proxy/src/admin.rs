//! The admin API: JSON over HTTP/1.1 on a unix socket that only its owner may open.

use crate::body::{full, ProxyBody};
use crate::control::{Control, ControlError};
use berth_proxy_api::answer::{Done, ErrorBody, Removed};
use berth_proxy_api::request::{
    AddSetRequest, DeployRequest, MaintenanceRequest, PauseRequest, RemoveSetRequest,
    WeightsRequest,
};
use berth_proxy_api::route::RouteSpec;
use berth_proxy_api::status::Status;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

/// Admin requests are small; anything larger is a mistake or an attack.
const MAX_ADMIN_BODY: usize = 1 << 20;

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
            Err((status, error)) => json(status, &ErrorBody { error }),
        }
    });
    match answer.await {
        Ok(response) => response,
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &ErrorBody {
                error: format!("the admin request failed: {e}"),
            },
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
                .deploy(name, r.set, r.health_timeout, r.drain_timeout)
                .await
                .map_err(err)?;
            Ok(json(StatusCode::OK, &report))
        }
        (&Method::POST, ["routes", name, "sets"]) => {
            let r: AddSetRequest = body(req).await?;
            control
                .add_set(name, r.set, r.health_timeout)
                .await
                .map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "sets", id, "remove"]) => {
            let r: RemoveSetRequest = body(req).await?;
            let closed_at_deadline = control
                .remove_set(name, id, r.drain_timeout)
                .await
                .map_err(err)?;
            Ok(json(StatusCode::OK, &Removed { closed_at_deadline }))
        }
        (&Method::POST, ["routes", name, "weights"]) => {
            let r: WeightsRequest = body(req).await?;
            control.set_weights(name, &r.weights).await.map_err(err)?;
            Ok(ok())
        }
        (&Method::POST, ["routes", name, "pause"]) => {
            let r: PauseRequest = body(req).await?;
            control.pause(name, r.timeout).await.map_err(err)?;
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
    json(StatusCode::OK, &Done::new())
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
