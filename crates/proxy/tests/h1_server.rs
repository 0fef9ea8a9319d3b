//! berth's own HTTP/1.1 server (requests without a body) on raw client sockets: keep-alive
//! and pipelining, the handoff to hyper in the middle of a connection, HEAD, `Connection:
//! close`, HTTP/1.0, answers without a length, and the headers it writes itself.

mod support;

use std::time::Duration;
use support::backend::Backend;
use support::{proxy_with_backend, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn setup(dir: &std::path::Path) -> (TestProxy, Backend) {
    proxy_with_backend(dir, |_| {}).await
}

/// Sends `request` on a fresh connection and returns all the proxy answers before it closes
/// the connection, which it must do within 5 s.
async fn until_closed(proxy: &TestProxy, request: &[u8], what: &str) -> String {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all))
        .await
        .expect(what)
        .unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

/// Reads answers from `stream` until `count` complete ones (by Content-Length or chunked
/// framing; HEAD answers by head only) have arrived or 5 s pass.
async fn read_answers(stream: &mut TcpStream, count: usize, heads_only: &[bool]) -> Vec<String> {
    let mut data = Vec::new();
    let mut answers = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while answers.len() < count {
        if let Some((len, answer)) = complete_answer(&data, heads_only[answers.len()]) {
            answers.push(answer);
            data.drain(..len);
            continue;
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("answers within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed after {answers:?}");
        data.extend_from_slice(&chunk[..n]);
    }
    answers
}

fn complete_answer(data: &[u8], head_only: bool) -> Option<(usize, String)> {
    let head_end = data.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    if head_only {
        return Some((
            head_end,
            String::from_utf8_lossy(&data[..head_end]).into_owned(),
        ));
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let len = match length {
        Some(n) => head_end + n,
        None if head.contains("transfer-encoding: chunked") => {
            head_end
                + data[head_end..]
                    .windows(5)
                    .position(|w| w == b"0\r\n\r\n")?
                + 5
        }
        None => return None,
    };
    (data.len() >= len).then(|| (len, String::from_utf8_lossy(&data[..len]).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, backend) = setup(dir.path()).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // Three requests in one write: answered one after another on the same connection.
    stream
        .write_all(
            b"GET /one HTTP/1.1\r\nHost: web.test\r\n\r\n\
              HEAD /two HTTP/1.1\r\nHost: web.test\r\n\r\n\
              GET /three HTTP/1.1\r\nHost: web.test\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    let answers = read_answers(&mut stream, 3, &[false, true, false]).await;
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.to_lowercase().contains("x-request-id: "), "{answer}");
    }
    assert!(
        answers[0].ends_with("\r\n\r\na"),
        "GET has the body: {:?}",
        answers[0]
    );
    assert!(
        answers[1].ends_with("\r\n\r\n"),
        "HEAD has none: {:?}",
        answers[1]
    );
    // And the connection stays usable.
    stream
        .write_all(b"GET /four HTTP/1.1\r\nHost: web.test\r\n\r\n")
        .await
        .unwrap();
    let answers = read_answers(&mut stream, 1, &[false]).await;
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
    assert!(backend.requests() >= 4);
    proxy.stop().await;
}

/// A request with a body in the middle of a keep-alive connection moves the connection to
/// hyper, which answers it and every request after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_a_body_hands_the_connection_to_hyper_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _backend) = setup(dir.path()).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /before HTTP/1.1\r\nHost: web.test\r\n\r\n")
        .await
        .unwrap();
    let before = read_answers(&mut stream, 1, &[false]).await;
    assert!(before[0].starts_with("HTTP/1.1 200"), "{}", before[0]);
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\n\r\nhello\
              GET /after HTTP/1.1\r\nHost: web.test\r\n\r\n",
        )
        .await
        .unwrap();
    let answers = read_answers(&mut stream, 2, &[false, false]).await;
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
    assert!(answers[1].starts_with("HTTP/1.1 200"), "{}", answers[1]);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_http10_and_the_proxys_own_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _backend) = setup(dir.path()).await;

    // `Connection: close` from the client: answered, then closed.
    let all = until_closed(
        &proxy,
        b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
        "the proxy closes after the answer",
    )
    .await
    .to_lowercase();
    assert!(all.starts_with("http/1.1 200"), "{all}");
    assert!(all.contains("connection: close"), "{all}");

    // HTTP/1.0 goes to hyper, which answers in kind and closes.
    let all = until_closed(
        &proxy,
        b"GET / HTTP/1.0\r\nHost: web.test\r\n\r\n",
        "HTTP/1.0 closes after the answer",
    )
    .await;
    assert!(all.starts_with("HTTP/1.0 200"), "{all}");

    // A page berth makes itself (no route) has a length and a Date, as hyper's had, and
    // HEAD gets its head only.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\nHEAD / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n",
        )
        .await
        .unwrap();
    let answers = read_answers(&mut stream, 2, &[false, true]).await;
    let page = answers[0].to_lowercase();
    assert!(page.starts_with("http/1.1 404"), "{page}");
    assert!(page.contains("content-length: "), "{page}");
    assert!(
        page.contains("\r\ndate: ") && page.contains(" gmt\r\n"),
        "{page}"
    );
    assert!(answers[1].to_lowercase().starts_with("http/1.1 404"));
    assert!(answers[1].ends_with("\r\n\r\n"), "{:?}", answers[1]);

    // An idle keep-alive connection stays open between requests well within the timeout.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            .await
            .unwrap();
        let answers = read_answers(&mut stream, 1, &[false]).await;
        assert!(answers[0].starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    proxy.stop().await;
}

/// An idle keep-alive connection is closed once the header timeout passes with no new
/// request, as hyper's server did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _backend) = proxy_with_backend(dir.path(), |config| {
        config.timeouts.header_read = Duration::from_millis(500);
    })
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // Requests 300 ms apart keep the connection open past several timeouts: the timeout
    // counts from the last request, not from when the connection opened (the server keeps
    // one timer per connection and moves it on when it fires early).
    for _ in 0..5 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            .await
            .unwrap();
        let answers = read_answers(&mut stream, 1, &[false]).await;
        assert!(answers[0].starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
        .await
        .unwrap();
    let answers = read_answers(&mut stream, 1, &[false]).await;
    assert!(answers[0].starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed")
        .unwrap();
    assert!(rest.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(400));
    proxy.stop().await;
}

/// The head berth's own server passes on is the client's, as it arrived, but for the
/// hop-by-hop headers (and those Connection names) and the forwarding headers, which the
/// proxy writes itself: X-Forwarded-For keeps the client's chain and adds the peer, the
/// client's X-Request-Id is kept and sent back (#4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_head_goes_on_without_its_hop_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _backend) = setup(dir.path()).await;
    let answer = until_closed(
        &proxy,
        b"GET /echo?x=1 HTTP/1.1\r\nHost: web.test\r\nConnection: close, X-Secret\r\n\
          X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\n\
          X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\
          X-Request-Id: client-id-1\r\nX-App: Kept\r\nAccept: */*\r\n\r\n",
        "the answer to a request with Connection: close",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // Every header line, the last one included, ends in CRLF here.
    let lower = format!("{}\r\n", head.to_ascii_lowercase());
    assert_eq!(
        lower.matches("x-request-id: client-id-1\r\n").count(),
        1,
        "the client's request id comes back once: {head}"
    );
    assert!(lower.contains("connection: close\r\n"), "{head}");
    let echo: serde_json::Value = serde_json::from_str(body).expect(body);
    let headers = echo["headers"].as_object().unwrap();
    for gone in [
        "x-secret",
        "keep-alive",
        "te",
        "proxy-connection",
        "connection",
    ] {
        assert!(
            !headers.contains_key(gone),
            "{gone} reached the target: {headers:?}"
        );
    }
    assert_eq!(headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "web.test");
    assert_eq!(headers["x-request-id"], "client-id-1");
    assert_eq!(headers["x-app"], "Kept");
    assert_eq!(headers["accept"], "*/*");
    assert_eq!(headers["host"], "web.test");
    proxy.stop().await;
}
