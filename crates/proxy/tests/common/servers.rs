//! Real servers and a real client on loopback sockets: the http-01 responder the proxy's
//! plain-HTTP listener will be, a TLS listener built from `server_config`, and an HTTPS
//! client that speaks HTTP/1.1 or HTTP/2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use berth_proxy::tls::Challenges;

/// A background server task, aborted on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers `/.well-known/acme-challenge/{token}` from `challenges` over plain HTTP on
/// 127.0.0.1, as the proxy's port-80 listener does.
pub async fn challenge_server(challenges: Challenges) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind http-01");
    let addr = listener.local_addr().expect("http-01 address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let challenges = challenges.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let answer = challenges.response_for_path(req.uri().path());
                    async move {
                        let response = match answer {
                            Some(key_authorization) => {
                                Response::new(Full::new(Bytes::from(key_authorization)))
                            }
                            None => {
                                let mut not_found = Response::new(Full::new(Bytes::new()));
                                *not_found.status_mut() = StatusCode::NOT_FOUND;
                                not_found
                            }
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { addr, task }
}

/// Serves HTTP/1.1 and HTTP/2 over TLS with `config`; every response is 200 with the
/// request's protocol version and Host (or :authority) in the body.
pub async fn tls_server(config: Arc<rustls::ServerConfig>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
    let addr = listener.local_addr().expect("tls address");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake (unknown SNI) just ends this connection.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let host = req
                        .uri()
                        .host()
                        .map(str::to_owned)
                        .or_else(|| {
                            req.headers()
                                .get(hyper::header::HOST)
                                .and_then(|h| h.to_str().ok())
                                .map(str::to_owned)
                        })
                        .unwrap_or_default();
                    let body = format!("{:?} {host}", req.version());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Server { addr, task }
}

/// What an HTTPS request returned.
#[derive(Debug)]
pub struct HttpsResponse {
    pub version: Version,
    pub status: u16,
    pub body: String,
}

/// GETs `path` from `addr` over TLS with SNI `server_name`, trusting only the CA in
/// `root_pem` and offering the single ALPN protocol `alpn` (`h2` or `http/1.1`).
/// Errors are returned as text so that tests can assert on failed handshakes.
pub async fn https_get(
    addr: SocketAddr,
    server_name: &str,
    root_pem: &str,
    alpn: &[u8],
    path: &str,
) -> Result<HttpsResponse, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut root_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| format!("root PEM: {e}"))?)
            .map_err(|e| format!("root certificate: {e}"))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];

    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls handshake: {e}"))?;
    let negotiated_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let io = TokioIo::new(tls);

    let request = Request::builder()
        .uri(format!("https://{server_name}{path}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = if negotiated_h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("http/1.1 handshake: {e}"))?;
        tokio::spawn(connection);
        // HTTP/1.1 requests carry the path only; the Host header names the site.
        let (mut parts, body) = request.into_parts();
        parts.uri = path.parse().map_err(|e| format!("path: {e}"))?;
        let host = server_name.parse().map_err(|e| format!("host: {e}"))?;
        parts.headers.insert(hyper::header::HOST, host);
        sender.send_request(Request::from_parts(parts, body)).await
    }
    .map_err(|e| format!("request: {e}"))?;

    let version = response.version();
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(HttpsResponse {
        version,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
