//! berth's own HTTP/1.1 client (requests without a body) against a target that answers
//! from a script on a raw socket: every framing a target may use, interim answers,
//! connection reuse, targets that close idle connections, and answers that break the
//! protocol.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::load::get;
use support::{route, wait_route_healthy, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A target that answers each request by its path, from `answer`.
struct ScriptedTarget {
    addr: SocketAddr,
    /// Connections that carried at least one request other than the health check.
    app_connections: Arc<AtomicUsize>,
}

/// The raw answer for `path`, and whether the target closes the connection after it
/// (`Some(delay)`: that long after answering).
fn answer(path: &str) -> (&'static [u8], Option<Duration>) {
    match path {
        "/up" | "/length" | "/slow" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-app: yes\r\n\r\nhello",
            None,
        ),
        "/chunked" => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
            None,
        ),
        "/until-close" => (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", Some(Duration::ZERO)),
        "/interim" => (
            b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            None,
        ),
        "/no-content" => (b"HTTP/1.1 204 No Content\r\n\r\n", None),
        "/hop" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: x-secret\r\nx-secret: 1\r\nkeep-alive: timeout=5\r\n\r\nok",
            None,
        ),
        "/own-id" => (
            b"HTTP/1.1 200 OK\r\nX-Request-Id: target-id\r\nContent-Length: 2\r\nX-App: yes\r\n\r\nok",
            None,
        ),
        "/close" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            Some(Duration::ZERO),
        ),
        // Answers, then closes the idle connection soon after, as gunicorn's 2 s
        // keep-alive or Node's 5 s do.
        "/then-idle-close" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Some(Duration::from_millis(50)),
        ),
        "/garbage" => (b"NOT HTTP AT ALL\r\n\r\n", Some(Duration::ZERO)),
        "/bad-length" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\nok",
            Some(Duration::ZERO),
        ),
        "/two-lengths" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            Some(Duration::ZERO),
        ),
        _ => (
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            None,
        ),
    }
}

impl ScriptedTarget {
    async fn start() -> ScriptedTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app_connections = Arc::new(AtomicUsize::new(0));
        let counter = app_connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, counter.clone()));
            }
        });
        ScriptedTarget {
            addr,
            app_connections,
        }
    }
}

async fn serve(mut stream: TcpStream, app_connections: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut counted = false;
    loop {
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        if path != "/up" && !counted {
            counted = true;
            app_connections.fetch_add(1, Ordering::SeqCst);
        }
        match path.as_str() {
            // Answers well within the proxy's response timeout, but late enough that a
            // few of these in a row on one connection outlast it.
            "/slow" => tokio::time::sleep(Duration::from_millis(150)).await,
            // Takes the request and never answers.
            "/hang" => tokio::time::sleep(Duration::from_secs(30)).await,
            _ => {}
        }
        let (bytes, close) = answer(&path);
        if stream.write_all(bytes).await.is_err() {
            return;
        }
        if let Some(delay) = close {
            tokio::time::sleep(delay).await;
            return;
        }
    }
}

async fn setup(dir: &std::path::Path) -> (TestProxy, ScriptedTarget) {
    setup_with(support::config(dir)).await
}

async fn setup_with(config: berth_proxy::config::ProxyConfig) -> (TestProxy, ScriptedTarget) {
    let proxy = TestProxy::start_with(config, Default::default()).await;
    let target = ScriptedTarget::start().await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[target.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    (proxy, target)
}

/// Sends `request` on a fresh connection and returns the raw answer until the proxy closes
/// it (every request here says `Connection: close`) or 5 s pass.
async fn raw(proxy: &TestProxy, request: &str) -> String {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn request(method: &str, path: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_a_target_uses_reaches_the_client_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _target) = setup(dir.path()).await;

    assert_eq!(
        get(proxy.addr, "web.test", "/length").await,
        (200, "hello".into())
    );
    assert_eq!(
        get(proxy.addr, "web.test", "/chunked").await,
        (200, "hello world".into()),
        "chunk extensions and trailers are consumed, data passed on"
    );
    assert_eq!(
        get(proxy.addr, "web.test", "/until-close").await,
        (200, "until the end".into()),
        "a body without length ends when the target closes"
    );
    assert_eq!(
        get(proxy.addr, "web.test", "/interim").await,
        (200, "ok".into()),
        "a 103 before the answer is skipped"
    );
    assert_eq!(get(proxy.addr, "web.test", "/no-content").await.0, 204);

    let head = raw(&proxy, &request("HEAD", "/length")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("content-length: 5"),
        "HEAD keeps the length: {head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head:?}");

    // The proxy's request id replaces the target's; the other lines go on as they came.
    let own = raw(&proxy, &request("GET", "/own-id")).await;
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
    assert!(!own.contains("target-id"), "{own}");
    assert_eq!(
        own.to_ascii_lowercase().matches("x-request-id:").count(),
        1,
        "{own}"
    );
    assert!(own.contains("\r\nX-App: yes\r\n"), "{own}");
    assert!(own.ends_with("\r\n\r\nok"), "{own}");

    let hop = raw(&proxy, &request("GET", "/hop")).await;
    assert!(hop.starts_with("HTTP/1.1 200"), "{hop}");
    assert!(
        !hop.contains("x-secret") && !hop.contains("keep-alive"),
        "hop-by-hop headers, and those Connection names, stay with the target: {hop}"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_the_target_are_reused_unless_it_closes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, target) = setup(dir.path()).await;
    for _ in 0..30 {
        assert_eq!(get(proxy.addr, "web.test", "/length").await.0, 200);
    }
    // Sequential requests find a warm connection in the pool of the data-plane thread
    // that serves them: at most one per thread.
    let after_reuse = target.app_connections.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&after_reuse),
        "30 sequential requests used {after_reuse} connections"
    );

    // `Connection: close` and close-delimited answers are never put back in the pool: of
    // these 10 requests only the first on each thread may find a warm connection, every
    // other one needs a new connection.
    for _ in 0..5 {
        assert_eq!(
            get(proxy.addr, "web.test", "/close").await,
            (200, "ok".into())
        );
        assert_eq!(
            get(proxy.addr, "web.test", "/until-close").await,
            (200, "until the end".into())
        );
    }
    assert!(
        target.app_connections.load(Ordering::SeqCst) >= after_reuse + 8,
        "each closing answer needed a new connection"
    );
    proxy.stop().await;
}

/// A target that closes idle keep-alive connections (gunicorn after 2 s, Node after 5 s)
/// must not cost a client an error: the pool drops connections it has seen closed, and a
/// pooled connection that fails before any answer is replaced by a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_closing_idle_connections_costs_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, target) = setup(dir.path()).await;
    for round in 0..20 {
        let (status, body) = get(proxy.addr, "web.test", "/then-idle-close").await;
        assert_eq!((status, body.as_str()), (200, "ok"), "round {round}");
        // Vary the pause around the target's 50 ms close, so that some requests find the
        // connection already closed and others race with the close.
        tokio::time::sleep(Duration::from_millis(30 + (round % 5) * 10)).await;
    }
    assert!(target.app_connections.load(Ordering::SeqCst) >= 2);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_break_http_get_502() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _target) = setup(dir.path()).await;
    for path in ["/garbage", "/bad-length", "/two-lengths"] {
        let (status, body) = get(proxy.addr, "web.test", path).await;
        assert_eq!(status, 502, "{path}: {body}");
    }
    // The target is still used afterwards: a broken answer is not a refused connection.
    assert_eq!(get(proxy.addr, "web.test", "/length").await.0, 200);
    proxy.stop().await;
}

/// The response timeout (issue #4): a target that takes a request and never answers gets
/// the client a 504 once `timeouts.response` passes, while requests that each answer in
/// time never do, even when back to back on one kept-alive connection they take longer
/// than the timeout in total (the client keeps one timer per connection and moves it on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_does_not_answer_gets_504_after_the_response_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.timeouts.response = Duration::from_millis(600);
    let (proxy, target) = setup_with(config).await;
    for round in 0..12 {
        let (status, body) = get(proxy.addr, "web.test", "/slow").await;
        assert_eq!((status, body.as_str()), (200, "hello"), "round {round}");
    }
    assert!(
        target.app_connections.load(Ordering::SeqCst) <= 2,
        "the slow answers shared the pooled connections"
    );
    let started = std::time::Instant::now();
    let (status, body) = get(proxy.addr, "web.test", "/hang").await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("did not answer"), "{body}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_secs(5),
        "the 504 came after {waited:?}"
    );
    assert_eq!(get(proxy.addr, "web.test", "/length").await.0, 200);
    proxy.stop().await;
}
