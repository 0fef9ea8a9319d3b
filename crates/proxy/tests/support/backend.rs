//! A backend that names itself in every answer: `/` (its name), `/up` (200, or 503 when
//! made unhealthy), `/slow?ms=N`, `/echo` (request headers and body as JSON), `/stream`
//! (two chunks 500 ms apart) and `/ws` (WebSocket echo).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    state: Arc<State>,
    tasks: Option<tokio::sync::oneshot::Sender<()>>,
}

struct State {
    name: String,
    healthy: AtomicBool,
    requests: AtomicU64,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        Backend::start_on("127.0.0.1:0".parse().unwrap(), name).await
    }

    pub async fn start_on(addr: SocketAddr, name: &str) -> Backend {
        let listener = TcpListener::bind(addr).await.expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            name: name.to_string(),
            healthy: AtomicBool::new(true),
            requests: AtomicU64::new(0),
        });
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let accept_state = state.clone();
        tokio::spawn(async move {
            // Every connection lives in this set, so killing the backend closes them all
            // at once, as a crashed process's sockets would be.
            let mut connections = JoinSet::new();
            let accept = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = accept_state.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(answer(state, req).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = accept => {}
                _ = killed => {}
            }
        });
        Backend {
            addr,
            name: name.to_string(),
            state,
            tasks: Some(kill),
        }
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Closes the listener and every open connection at once.
    pub fn kill(&mut self) {
        if let Some(kill) = self.tasks.take() {
            let _ = kill.send(());
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

fn full(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(text.into()).boxed_unsync());
    *response.status_mut() = status;
    response
}

async fn answer(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path != "/up" {
        state.requests.fetch_add(1, Ordering::SeqCst);
    }
    match path.as_str() {
        "/up" => {
            if state.healthy.load(Ordering::SeqCst) {
                full(StatusCode::OK, "ok")
            } else {
                full(StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
            }
        }
        "/slow" => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            full(StatusCode::OK, state.name.clone())
        }
        "/echo" => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                .collect();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let json = serde_json::json!({
                "name": state.name,
                "headers": headers,
                "body_len": body.len(),
            });
            full(StatusCode::OK, json.to_string())
        }
        "/stream" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"first\n"))))
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"second\n"))))
                    .await;
            });
            let stream = tokio_stream_from(rx);
            let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
            response
                .headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            response
        }
        "/ws" => websocket(state, req),
        _ => full(StatusCode::OK, state.name.clone()),
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Accepts a WebSocket and echoes every text message prefixed with the backend's name.
fn websocket(state: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return full(StatusCode::BAD_REQUEST, "not a websocket request");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        while let Some(Ok(message)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let reply = format!("{}: {}", state.name, text.as_str());
                if ws.send(reply.into()).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut response = full(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
    let headers = response.headers_mut();
    headers.insert("upgrade", "websocket".parse().unwrap());
    headers.insert("connection", "upgrade".parse().unwrap());
    headers.insert("sec-websocket-accept", accept.parse().unwrap());
    response
}
