//! The two requests a BuildKit build needs that bollard cannot make for berth: the `/session`
//! upgrade, whose hijacked connection berth serves gRPC on, and the `/build` request that
//! names that session. Both go over a connection of their own to the engine's socket.
//!
//! bollard's own BuildKit session (its `buildkit_providerless` feature) registers only an
//! auth provider, so a `RUN --mount=type=secret` or `--mount=type=ssh` step would find
//! nothing; docs/decisions.md says why berth serves the session itself.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Where the engine listens, for the connections berth opens itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Socket {
    Unix(PathBuf),
    Tcp(String),
}

/// A request body: empty for the session, the context's tar stream for a build.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

impl Socket {
    /// The socket behind a DOCKER_HOST value, or None for one berth cannot open by hand
    /// (TLS, SSH, named pipes); those engines build with the classic builder.
    pub(crate) fn of_host(host: &str) -> Option<Socket> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Some(Socket::Unix(PathBuf::from(path)));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(address) = host.strip_prefix(scheme) {
                return Some(Socket::Tcp(address.trim_end_matches('/').to_string()));
            }
        }
        None
    }

    /// Sends `request` on a new HTTP/1.1 connection that may be upgraded. The connection
    /// lives in `driver`, which the caller keeps (and aborts) for as long as it needs it.
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
    ) -> std::io::Result<(Response<Incoming>, tokio::task::JoinHandle<()>)> {
        match self {
            Socket::Unix(path) => {
                send_on(tokio::net::UnixStream::connect(path).await?, request).await
            }
            Socket::Tcp(address) => {
                send_on(tokio::net::TcpStream::connect(address).await?, request).await
            }
        }
    }
}

async fn send_on<S>(
    stream: S,
    request: Request<Body>,
) -> std::io::Result<(Response<Incoming>, tokio::task::JoinHandle<()>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    let driver = tokio::spawn(async move {
        // The connection's own errors surface as the response's; nothing to add here.
        let _ = connection.with_upgrades().await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    Ok((response, driver))
}

/// `key=value&…` with each value percent-encoded, for the engine's query strings.
pub(crate) fn query(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        for byte in value.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(byte as char)
                }
                other => out.push_str(&format!("%{other:02X}")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_map_to_sockets_berth_can_open() {
        assert_eq!(
            Socket::of_host("unix:///var/run/docker.sock"),
            Some(Socket::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Socket::of_host("tcp://127.0.0.1:2375"),
            Some(Socket::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(Socket::of_host("ssh://me@host"), None);
        assert_eq!(Socket::of_host("npipe:////./pipe/docker_engine"), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query(&[
                ("t", "a/b:1".into()),
                ("buildargs", "{\"A\":\"x y\"}".into())
            ]),
            "t=a%2Fb%3A1&buildargs=%7B%22A%22%3A%22x%20y%22%7D"
        );
    }
}
