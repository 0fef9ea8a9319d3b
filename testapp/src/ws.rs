//! `GET /ws`: a WebSocket echo endpoint.
//!
//! The HTTP upgrade handshake is done by hand on top of `hyper::upgrade`, and the framing
//! after it by `tokio-tungstenite`: hyper owns the connection until the 101 response, and
//! tungstenite's protocol code handles masking, fragmentation, ping/pong and close for us.

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::routes::{text, Body};
use crate::server::{stopping, TaskGuard};

/// Answers the handshake and spawns the echo loop on the upgraded connection.
pub fn upgrade(
    mut req: Request<Incoming>,
    shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) -> Response<Body> {
    let wants_websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return text(StatusCode::BAD_REQUEST, "expected a WebSocket handshake\n");
    };
    if !wants_websocket {
        return text(StatusCode::BAD_REQUEST, "expected Upgrade: websocket\n");
    }

    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let stream =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                echo(stream, shutdown).await;
            }
            Err(err) => eprintln!("testapp: WebSocket upgrade failed: {err}"),
        }
        // The guard lives until the socket is done, so shutdown waits for the close frame.
        drop(guard);
    });

    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, "Upgrade".parse().unwrap());
    headers.insert(UPGRADE, "websocket".parse().unwrap());
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        derive_accept_key(key.as_bytes()).parse().unwrap(),
    );
    response
}

/// Sends every text and binary message back. Pings are answered by tungstenite itself.
/// On shutdown the server says "going away" so clients know to reconnect elsewhere.
async fn echo<S>(mut stream: WebSocketStream<S>, shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let stop = stopping(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if stream.send(message).await.is_err() {
                        return;
                    }
                }
                // Ping, pong and close are handled inside tungstenite; keep reading so it
                // can flush its replies and finish the closing handshake.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            () = &mut stop => {
                let frame = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                let _ = stream.close(Some(frame)).await;
                return;
            }
        }
    }
}
