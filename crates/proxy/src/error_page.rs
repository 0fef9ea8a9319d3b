//! The pages the proxy answers with itself when it cannot pass a request on.

use crate::body::{full, ProxyBody};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// A short plain-text page: clients and scripts read the first line, people read the rest.
pub fn page(status: StatusCode, detail: &str) -> Response<ProxyBody> {
    let reason = status.canonical_reason().unwrap_or("error");
    let text = format!("{} {reason}\n{detail}\n", status.as_u16());
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("server", HeaderValue::from_static("berth"));
    response
}

pub fn no_route(host: &str) -> Response<ProxyBody> {
    page(
        StatusCode::NOT_FOUND,
        &format!("no route for host `{host}`"),
    )
}

pub fn no_target(route: &str) -> Response<ProxyBody> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("no healthy target for `{route}`; try again shortly"),
    )
}

pub fn maintenance(message: &str) -> Response<ProxyBody> {
    let mut response = page(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("30"));
    response
}

pub fn bad_gateway(detail: &str) -> Response<ProxyBody> {
    page(StatusCode::BAD_GATEWAY, detail)
}

pub fn gateway_timeout(detail: &str) -> Response<ProxyBody> {
    page(StatusCode::GATEWAY_TIMEOUT, detail)
}

pub fn bad_request(detail: &str) -> Response<ProxyBody> {
    page(StatusCode::BAD_REQUEST, detail)
}

pub fn too_large(limit: u64) -> Response<ProxyBody> {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body over the proxy's limit of {limit} bytes"),
    )
}
