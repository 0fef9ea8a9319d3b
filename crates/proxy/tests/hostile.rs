//! Hostile clients on raw sockets: request smuggling, oversized and slow headers, bad
//! chunking, oversized bodies. Each is answered as issue #4 describes, and none reaches a
//! target.

mod support;

use std::time::{Duration, Instant};
use support::{proxy_with_backend, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and returns everything the proxy answers until it closes (or 5 s).
async fn raw(proxy: &TestProxy, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_get_400_and_reach_no_target() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, backend) = proxy_with_backend(dir.path(), |_| {}).await;
    let cases: [(&str, &[u8]); 4] = [
        (
            "content-length then transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: web.test\r\n\r\n",
        ),
        (
            "transfer-encoding then content-length",
            b"POST / HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
        ),
        (
            "duplicate content-length",
            b"POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "differing content-length",
            b"POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello",
        ),
    ];
    for (what, bytes) in cases {
        let answer = raw(&proxy, bytes).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: got {answer:?}");
        assert_eq!(
            answer.matches("HTTP/1.1").count(),
            1,
            "{what}: more than one answer: {answer:?}"
        );
    }
    // A smuggled message after a clean one on the same connection: the first is served,
    // the second refused.
    let answer = raw(
        &proxy,
        b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\nPOST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.contains("HTTP/1.1 400"), "{answer:?}");
    assert_eq!(
        backend.requests(),
        1,
        "a refused message reached the target"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunking_gets_400() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, backend) = proxy_with_backend(dir.path(), |_| {}).await;
    for (what, bytes) in [
        (
            "a chunk size that is not hex",
            &b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"[..],
        ),
        (
            "chunk data longer than its size",
            &b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"[..],
        ),
    ] {
        let answer = raw(&proxy, bytes).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: got {answer:?}");
    }
    println!("target saw {} requests", backend.requests());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, backend) = proxy_with_backend(dir.path(), |_| {}).await;
    let big = "x".repeat(100 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: web.test\r\nCookie: {big}\r\n\r\n");
    let answer = raw(&proxy, request.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "got {:?}",
        &answer[..answer.len().min(200)]
    );
    assert_eq!(backend.requests(), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, backend) = proxy_with_backend(dir.path(), |c| {
        c.timeouts.header_read = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web")
        .await
        .unwrap();
    // A slowloris client trickles a byte now and then and never finishes the head.
    let mut closed = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stream.write_all(b"e").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                // hyper may answer 408 before closing; the connection ends either way.
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    let after = started.elapsed();
    println!("slow client cut off after {after:?}");
    assert!(
        closed,
        "a client that never finished its headers was kept for {after:?}"
    );
    assert_eq!(backend.requests(), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, backend) = proxy_with_backend(dir.path(), |c| c.max_body = 1024).await;
    // Declared too large: refused before anything is read or sent on.
    let answer = raw(
        &proxy,
        format!(
            "POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4096\r\n\r\n{}",
            "a".repeat(4096)
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert_eq!(backend.requests(), 0);
    // Chunked, growing past the limit while streaming.
    let chunk = "b".repeat(1000);
    let body = format!("3e8\r\n{chunk}\r\n3e8\r\n{chunk}\r\n0\r\n\r\n");
    let answer = raw(
        &proxy,
        format!("POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    // Within the limit: passed on.
    let answer = raw(
        &proxy,
        b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("\"body_len\":5"),
        "{answer:?}"
    );
    proxy.stop().await;
}
