//! WebSocket and other `Upgrade` requests: a 101 from the target turns the exchange into
//! a byte tunnel that stays open until either side closes it or the target's drain ends.

use crate::body::{empty, BoxError, ProxyBody};
use crate::error_page;
use crate::forward::{set_forwarding_headers, strip_hop_headers, ConnInfo};
use crate::target::Target;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

pub fn is_upgrade(req: &hyper::http::request::Parts) -> bool {
    req.version == Version::HTTP_11
        && req.headers.contains_key(header::UPGRADE)
        && req
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Sends the upgrade request to `target` on a connection of its own (an upgraded
/// connection never goes back to a pool) and, on 101, joins the two sides.
pub async fn open(
    mut req: Request<Incoming>,
    target: &Arc<Target>,
    host: &str,
    conn: ConnInfo,
    request_id: &HeaderValue,
    connect_timeout: Duration,
) -> Response<ProxyBody> {
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(target.addr)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return error_page::bad_gateway(&format!(
                "target {} refused the connection: {e}",
                target.authority
            ))
        }
        Err(_) => {
            return error_page::bad_gateway(&format!(
                "target {} did not accept a connection in time",
                target.authority
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return error_page::bad_gateway(&format!("target {}: {e}", target.authority)),
        };
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });

    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut headers = req.headers().clone();
    let upgrade = headers.get(header::UPGRADE).cloned();
    strip_hop_headers(&mut headers);
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    set_forwarding_headers(&mut headers, host, request_id, conn);
    let mut upstream = Request::new(empty());
    *upstream.method_mut() = req.method().clone();
    *upstream.uri_mut() = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .unwrap_or_default();
    *upstream.headers_mut() = headers;

    let guard = target.begin();
    let mut response = match sender.send_request(upstream).await {
        Ok(response) => response,
        Err(e) => {
            return error_page::bad_gateway(&format!(
                "target {} failed the upgrade: {e}",
                target.authority
            ))
        }
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The target declined; its answer goes back as it is.
        let (parts, body) = response.into_parts();
        return Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync());
    }
    let target_upgrade = hyper::upgrade::on(&mut response);
    let mut close = target.watch_close();
    tokio::spawn(async move {
        // The guard keeps the target counted as busy while the tunnel is open, so a drain
        // waits for it up to its deadline.
        let _guard = guard;
        let (Ok(client), Ok(upstream)) = (client_upgrade.await, target_upgrade.await) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            _ = async { let _ = close.wait_for(|closing| *closing).await; } => {
                // The drain deadline passed: close both ends cleanly (FIN, not RST).
                use tokio::io::AsyncWriteExt;
                let _ = client.shutdown().await;
                let _ = upstream.shutdown().await;
            }
        }
    });
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, empty())
}
