//! Request routing: one small handler per endpoint.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};

use crate::server::{AppState, TaskGuard};
use crate::ws;

pub type Body = Full<Bytes>;

/// The longest `/slow` will sleep, so a typo in a test cannot hang a container for hours.
const MAX_SLOW_MS: u64 = 120_000;

pub async fn handle(
    req: Request<Incoming>,
    state: Arc<AppState>,
    guard: TaskGuard,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = route(req, &state, guard).await;
    // One line per request on stdout, so `docker logs` shows the traffic a test sent.
    println!(
        "{method} {path} {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    Ok(response)
}

async fn route(req: Request<Incoming>, state: &AppState, guard: TaskGuard) -> Response<Body> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
    }
    match req.uri().path() {
        "/" if state.config.fail_root => {
            text(StatusCode::INTERNAL_SERVER_ERROR, "FAIL_ROOT=1 is set\n")
        }
        "/" => text(StatusCode::OK, state.config.version.clone()),
        "/up" if state.config.health_fail => {
            text(StatusCode::SERVICE_UNAVAILABLE, "HEALTH=fail is set\n")
        }
        "/up" => text(StatusCode::OK, "ok"),
        "/slow" => match slow_ms(req.uri().query()) {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("slept {ms} ms\n"))
            }
            None => text(
                StatusCode::BAD_REQUEST,
                format!("use /slow?ms=N with N at most {MAX_SLOW_MS}\n"),
            ),
        },
        "/count" => match state.counter.increment().await {
            Ok(count) => text(StatusCode::OK, count.to_string()),
            Err(err) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot update the counter: {err}\n"),
            ),
        },
        "/ws" => ws::upgrade(req, state.shutdown.clone(), guard),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Reads `ms` from a query string like `ms=300`; `None` when absent, malformed or too large.
pub fn slow_ms(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "ms")
        .and_then(|(_, value)| value.parse().ok())
        .filter(|ms| *ms <= MAX_SLOW_MS)
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_reads_the_ms_parameter() {
        assert_eq!(slow_ms(Some("ms=300")), Some(300));
        assert_eq!(slow_ms(Some("a=1&ms=5")), Some(5));
        assert_eq!(slow_ms(Some("ms=abc")), None);
        assert_eq!(slow_ms(Some("ms=999999999")), None);
        assert_eq!(slow_ms(None), None);
    }
}
