//! The request guard against the walk-arounds a probe of 129 hostile requests found
//! (issue #14 item 10): each hostile request goes on a raw socket to the real proxy, in
//! front of a backend that records every byte it receives. A refused request is answered
//! at once and none of it reaches the backend; an accepted one reaches it whole.

mod support;

use std::time::Duration;
use support::recorder::Recorder;
use support::{proxy_with_recorder, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the proxy sent back on one connection.
struct Exchanged {
    text: String,
    /// Whether the proxy closed the connection before the test's deadline.
    closed: bool,
}

impl Exchanged {
    /// The status line of every answer in the text, in order (no body here holds
    /// `HTTP/1.`, and an answer's body is not followed by a line ending).
    fn statuses(&self) -> Vec<&str> {
        self.text
            .match_indices("HTTP/1.")
            .map(|(at, _)| {
                let line = &self.text[at..];
                &line[..line.find("\r\n").unwrap_or(line.len())]
            })
            .collect()
    }
}

/// Sends `bytes` on a fresh connection (then ends the client's sending side when
/// `half_close`) and reads until the proxy closes the connection. The 5 s deadline only
/// keeps a broken proxy from hanging the test; every case here closes well before it.
async fn exchange(proxy: &TestProxy, bytes: &[u8], half_close: bool) -> Exchanged {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if half_close {
        stream.shutdown().await.unwrap();
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
    };
    Exchanged {
        text: String::from_utf8_lossy(&answer).into_owned(),
        closed,
    }
}

/// Asserts that the backend received nothing of a refused request: no request parsed
/// and not one byte of the marker `/smuggled`, whatever the backend's own parser made of
/// what it got.
fn assert_nothing_reached(recorder: &Recorder, case: &str) {
    let requests = recorder.requests();
    assert!(
        requests.is_empty(),
        "{case}: the backend received {requests:?}"
    );
    assert!(
        !recorder.raw().contains("/smuggled"),
        "{case}: the backend received bytes of the refused request: {:?}",
        recorder.raw()
    );
}

/// issue #14 item 10: a request with two `Host` lines was forwarded with both (routed on
/// the first), which opens a backend that reads the other one to host-header poisoning.
/// nginx and HAProxy answer 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_lines_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    let cases: [(&str, &[u8]); 2] = [
        (
            "two host lines",
            b"GET /smuggled HTTP/1.1\r\nHost: web.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
        ),
        (
            "two host lines after a served request",
            b"GET /first HTTP/1.1\r\nHost: web.test\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: web.test\r\nHOST: web.test\r\n\r\n",
        ),
    ];
    for (case, bytes) in cases {
        recorder.clear();
        let got = exchange(&proxy, bytes, false).await;
        assert!(got.closed, "{case}: not answered at once: {:?}", got.text);
        let expected: &[&str] = if case.contains("after") {
            &["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]
        } else {
            &["HTTP/1.1 400 Bad Request"]
        };
        assert_eq!(got.statuses(), expected, "{case}: {:?}", got.text);
        let targets: Vec<String> = recorder.requests().into_iter().map(|r| r.target).collect();
        let served: &[&str] = if case.contains("after") {
            &["/first"]
        } else {
            &[]
        };
        assert_eq!(targets, served, "{case}: the backend received {targets:?}");
        assert!(
            !recorder.raw().contains("/smuggled"),
            "{case}: {:?}",
            recorder.raw()
        );
    }
    proxy.stop().await;
}

/// issue #14 item 10: `Transfer-Encoding` with a coding besides `chunked`, or on two
/// lines, was accepted and the other coding silently dropped. nginx answers 501 for a
/// coding it does not implement and 400 for a repeated line; so does berth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_codings_other_than_chunked_alone_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    let body = "5\r\nhello\r\n0\r\n\r\n";
    let cases = [
        (
            "identity, chunked",
            "Transfer-Encoding: identity, chunked\r\n",
            "501",
        ),
        (
            "gzip, chunked",
            "Transfer-Encoding: gzip, chunked\r\n",
            "501",
        ),
        ("foo, chunked", "Transfer-Encoding: foo, chunked\r\n", "501"),
        ("gzip alone", "Transfer-Encoding: gzip\r\n", "501"),
        (
            "two transfer-encoding lines",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "400",
        ),
        (
            "gzip then chunked on two lines",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            "400",
        ),
    ];
    for (case, te, status) in cases {
        recorder.clear();
        let request = format!(
            "POST /smuggled HTTP/1.1\r\nHost: web.test\r\n{te}Connection: close\r\n\r\n{body}"
        );
        let got = exchange(&proxy, request.as_bytes(), false).await;
        assert!(got.closed, "{case}: not answered at once: {:?}", got.text);
        let statuses = got.statuses();
        assert!(
            statuses.len() == 1 && statuses[0].starts_with(&format!("HTTP/1.1 {status} ")),
            "{case}: expected one {status}, got {:?}",
            got.text
        );
        assert_nothing_reached(&recorder, case);
    }
    proxy.stop().await;
}

/// issue #14 item 10: the Content-Length + Transfer-Encoding refusal was skipped after a
/// refused `Upgrade`, after a head that ended in `\r\n\n`, after leading empty lines, and
/// for bytes held when the client half-closed. Every request on every connection is judged,
/// with the parser's own rule for where a head ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_and_chunks_together_are_refused_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    const SMUGGLED: &str = "POST /smuggled HTTP/1.1\r\nHost: web.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    struct Case {
        name: &'static str,
        bytes: String,
        half_close: bool,
        /// The answers expected, by status line prefix.
        statuses: &'static [&'static str],
        /// The targets the backend may see.
        served: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "after an upgrade the backend refused",
            bytes: format!(
                "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n{SMUGGLED}"
            ),
            half_close: false,
            // A refused upgrade closes the connection: what the client sent after it is
            // never read as a request.
            statuses: &["HTTP/1.1 200"],
            served: &["/ws"],
        },
        Case {
            name: "after a head that ended in CR LF LF",
            bytes: format!("GET /first HTTP/1.1\r\nHost: web.test\r\n\n{SMUGGLED}"),
            half_close: false,
            statuses: &["HTTP/1.1 200", "HTTP/1.1 400"],
            served: &["/first"],
        },
        Case {
            name: "after leading empty lines",
            bytes: format!("\r\n\r\n{SMUGGLED}"),
            half_close: false,
            statuses: &["HTTP/1.1 400"],
            served: &[],
        },
        Case {
            name: "held when the client half-closes",
            // The first chunk alone: a parser that took this head would pass it on at once.
            bytes: "POST /smuggled HTTP/1.1\r\nHost: web.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\n5\r\nhello\r\n".to_string(),
            half_close: true,
            statuses: &["HTTP/1.1 400"],
            served: &[],
        },
        Case {
            name: "two lengths held when the client half-closes",
            bytes: "POST /smuggled HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\nhello".to_string(),
            half_close: true,
            statuses: &["HTTP/1.1 400"],
            served: &[],
        },
    ];
    for case in cases {
        recorder.clear();
        let got = exchange(&proxy, case.bytes.as_bytes(), case.half_close).await;
        let name = case.name;
        assert!(got.closed, "{name}: not answered at once: {:?}", got.text);
        let statuses = got.statuses();
        assert!(
            statuses.len() == case.statuses.len()
                && statuses
                    .iter()
                    .zip(case.statuses)
                    .all(|(got, want)| got.starts_with(want)),
            "{name}: expected {:?}, got {:?}",
            case.statuses,
            got.text
        );
        let targets: Vec<String> = recorder.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(
            targets, case.served,
            "{name}: the backend received {targets:?}"
        );
        assert!(
            !recorder.raw().contains("/smuggled"),
            "{name}: the backend received bytes of the refused request: {:?}",
            recorder.raw()
        );
    }
    proxy.stop().await;
}

/// issue #14 item 10: heads whose lines end in a bare `\n` stalled until the client
/// closed (then a false 400 after 10 s). They are answered at once, as nginx answers
/// them, and reach the backend with the same headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_ending_in_bare_line_feeds_are_answered_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    let cases: [(&str, &[u8], &str, &[u8]); 2] = [
        (
            "a request without a body",
            b"GET /lf HTTP/1.1\nHost: web.test\nX-Case: bare\nConnection: close\n\n",
            "/lf",
            b"",
        ),
        (
            "a request with a body",
            b"POST /lf-body HTTP/1.1\nHost: web.test\nX-Case: bare\nContent-Length: 5\nConnection: close\n\nhello",
            "/lf-body",
            b"hello",
        ),
    ];
    for (case, bytes, target, body) in cases {
        recorder.clear();
        let got = exchange(&proxy, bytes, false).await;
        assert!(got.closed, "{case}: not answered at once: {:?}", got.text);
        assert_eq!(
            got.statuses(),
            ["HTTP/1.1 200 OK"],
            "{case}: {:?}",
            got.text
        );
        let requests = recorder.requests();
        assert_eq!(
            requests.len(),
            1,
            "{case}: the backend received {requests:?}"
        );
        assert_eq!(requests[0].target, target, "{case}");
        assert_eq!(requests[0].values("host"), ["web.test"], "{case}");
        assert_eq!(requests[0].values("x-case"), ["bare"], "{case}");
        assert_eq!(requests[0].body, body, "{case}");
    }
    proxy.stop().await;
}

/// issue #14 item 10: a `GET` with a chunked body had the body silently dropped on its
/// way to the backend. It is forwarded whole, as nginx and HAProxy forward it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_a_chunked_body_reaches_the_backend_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    for method in ["GET", "DELETE", "OPTIONS"] {
        recorder.clear();
        let request = format!(
            "{method} /body HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        );
        let got = exchange(&proxy, request.as_bytes(), false).await;
        assert!(got.closed, "{method}: not answered at once: {:?}", got.text);
        assert_eq!(
            got.statuses(),
            ["HTTP/1.1 200 OK"],
            "{method}: {:?}",
            got.text
        );
        let requests = recorder.requests();
        assert_eq!(
            requests.len(),
            1,
            "{method}: the backend received {requests:?}"
        );
        assert_eq!(requests[0].method, method);
        assert_eq!(
            String::from_utf8_lossy(&requests[0].body),
            "hello world",
            "{method}: the body was not passed on whole"
        );
    }
    proxy.stop().await;
}

/// issue #14 item 10: `CONNECT` was forwarded with its target rewritten to `/` and
/// nothing answered. A reverse proxy opens no tunnels to where a client names: 501.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    let cases: [(&str, &[u8]); 3] = [
        (
            "authority form",
            b"CONNECT web.test:80 HTTP/1.1\r\nHost: web.test\r\nX-Marker: /smuggled\r\n\r\n",
        ),
        (
            "origin form",
            b"CONNECT /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n",
        ),
        (
            "after a served request",
            b"GET /first HTTP/1.1\r\nHost: web.test\r\n\r\nCONNECT web.test:80 HTTP/1.1\r\nHost: web.test\r\nX-Marker: /smuggled\r\n\r\n",
        ),
    ];
    for (case, bytes) in cases {
        recorder.clear();
        let got = exchange(&proxy, bytes, false).await;
        assert!(got.closed, "{case}: not answered at once: {:?}", got.text);
        let statuses = got.statuses();
        assert_eq!(
            statuses.last().copied(),
            Some("HTTP/1.1 501 Not Implemented"),
            "{case}: {:?}",
            got.text
        );
        let targets: Vec<String> = recorder.requests().into_iter().map(|r| r.target).collect();
        let served: &[&str] = if case.contains("after") {
            &["/first"]
        } else {
            &[]
        };
        assert_eq!(targets, served, "{case}: the backend received {targets:?}");
        assert!(
            !recorder.raw().contains("/smuggled"),
            "{case}: {:?}",
            recorder.raw()
        );
        assert!(
            !recorder.raw().contains("CONNECT"),
            "{case}: {:?}",
            recorder.raw()
        );
    }
    proxy.stop().await;
}

/// issue #14 item 10: `PRI * HTTP/2.0` after an HTTP/1.1 request switched the connection
/// to HTTP/2 mid-stream. The HTTP/2 preface is taken only as a connection's first bytes;
/// anywhere else it is a bad request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http2_preface_after_a_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    // The preface, then an empty SETTINGS frame, as an HTTP/2 client sends them.
    let mut bytes =
        b"GET /first HTTP/1.1\r\nHost: web.test\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let got = exchange(&proxy, &bytes, false).await;
    assert!(got.closed, "not answered at once: {:?}", got.text);
    assert_eq!(
        got.statuses(),
        ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"],
        "{:?}",
        got.text
    );
    let targets: Vec<String> = recorder.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/first"]);
    // A connection that starts with the preface still speaks HTTP/2.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut frame))
        .await
        .expect("a SETTINGS frame within 5 s")
        .unwrap();
    assert_eq!(frame[3], 4, "the first frame is SETTINGS: {frame:?}");
    // Closed first: an open HTTP/2 connection would hold the proxy's stop to its drain.
    drop(stream);
    proxy.stop().await;
}

/// issue #14 item 10: `CONNECT` over HTTP/2 (prior knowledge, where no request guard reads
/// the bytes) is refused the same way, and reaches no backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_over_http2_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, recorder) = proxy_with_recorder(dir.path()).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("an HTTP/2 connection");
    let driver = tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .uri("web.test:80")
        .header("x-marker", "/smuggled")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
        .await
        .expect("an answer within 5 s")
        .expect("an answer");
    assert_eq!(response.status(), 501);
    assert_nothing_reached(&recorder, "connect over http/2");
    drop(sender);
    driver.abort();
    proxy.stop().await;
}
