//! A proxied backend and a proxy process guard for the `berth proxy` tests.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Child;

/// A backend on 127.0.0.1 answering `body` on every path (so also 200 on `/up`).
pub async fn backend(body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        body.as_bytes(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A `berth proxy run` process, killed on drop if still running.
pub struct ProxyProcess(pub Child);

impl ProxyProcess {
    /// Starts `berth proxy --admin-socket SOCKET run --listen LISTEN --access-log off
    /// --state-file STATE EXTRA…`, its output discarded. The caller waits for it to answer.
    pub fn spawn(
        socket: &std::path::Path,
        listen: SocketAddr,
        state: &std::path::Path,
        extra: &[&str],
    ) -> ProxyProcess {
        ProxyProcess(
            std::process::Command::new(assert_cmd::cargo::cargo_bin("berth"))
                .arg("proxy")
                .arg("--admin-socket")
                .arg(socket)
                .args([
                    "run",
                    "--listen",
                    &listen.to_string(),
                    "--access-log",
                    "off",
                ])
                .arg("--state-file")
                .arg(state)
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
