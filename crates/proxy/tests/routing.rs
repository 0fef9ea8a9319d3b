//! The data plane on real sockets: weighted routing, passive failure detection, streaming,
//! forwarding headers, WebSockets, HTTP/2, TLS, pause and maintenance, metrics.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::backend::Backend;
use support::load::{get, Load};
use support::{route, set_of, wait_route_healthy, TestProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_is_within_three_percent_over_10000_requests() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let stable = Backend::start("stable").await;
    let canary = Backend::start("canary").await;
    let mut spec = route("web", "web.test", "stable", &[stable.addr]);
    spec.sets.push(set_of("canary", 10, &[canary.addr]));
    spec.sets[0].weight = 90;
    proxy.admin.put_route(&spec).await.unwrap();
    wait_route_healthy(&proxy.admin, "web").await;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let per_task = 10_000 / 8;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let uri: hyper::Uri = proxy.url("/").parse().unwrap();
        tasks.push(tokio::spawn(async move {
            let mut local: BTreeMap<String, u32> = BTreeMap::new();
            for _ in 0..per_task {
                let req = hyper::Request::builder()
                    .uri(uri.clone())
                    .header("host", "web.test")
                    .body(http_body_util::Empty::new())
                    .unwrap();
                let resp = client.request(req).await.expect("request");
                assert_eq!(resp.status(), 200);
                let body = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                *local
                    .entry(String::from_utf8_lossy(&body).into_owned())
                    .or_default() += 1;
            }
            local
        }));
    }
    for task in tasks {
        for (k, v) in task.await.unwrap() {
            *counts.entry(k).or_default() += v;
        }
    }
    let total: u32 = counts.values().sum();
    assert_eq!(total, 10_000);
    let canary_share = f64::from(counts["canary"]) / f64::from(total) * 100.0;
    println!("canary share {canary_share:.2}% of {total} ({counts:?})");
    assert!(
        (canary_share - 10.0).abs() <= 3.0,
        "canary got {canary_share:.2}%, want 10% ± 3"
    );
    proxy.stop().await;
}

/// Issue #4: a target killed mid-load gets no new requests after the first failure, and
/// requests without a body are retried on the surviving target so clients see no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_target_is_taken_out_at_its_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    let mut b = Backend::start("b").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr, b.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    let concurrency = 4;
    let load = Load::start(proxy.addr, "web.test", "/", concurrency);
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let report = load.stop().await;

    let status = proxy.admin.status().await.unwrap();
    let dead = status.routes[0].sets[0]
        .targets
        .iter()
        .find(|t| t.addr == b.addr.to_string())
        .unwrap();
    let after_kill = report
        .timeline
        .iter()
        .filter(|(at, body)| *at > killed_at + Duration::from_millis(50) && body == "b")
        .count();
    println!(
        "ok {} failed {} by target {:?}; dead target: {:?} failures {}",
        report.ok, report.failed, report.by_body, dead.health, dead.failures
    );
    assert_eq!(report.failed, 0, "failures: {:?}", report.errors);
    assert_eq!(
        after_kill, 0,
        "the killed target answered after it was killed"
    );
    assert_eq!(dead.health, berth_proxy_api::status::HealthName::Unhealthy);
    // Only requests already racing towards it when it died may have tried it: at most one
    // per concurrent client (each retried on `a`).
    assert!(
        dead.failures <= concurrency as u64 + 1,
        "the dead target was tried {} times after dying",
        dead.failures
    );
    assert!(report.by_body["a"] > 100);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_request_id_and_unknown_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;

    let (status, body) = get(proxy.addr, "Web.Test:8080", "/echo").await;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    let headers = &echo["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "Web.Test:8080");
    assert_eq!(headers["host"], "Web.Test:8080");
    assert!(headers["x-request-id"].as_str().unwrap().len() > 10);

    let (status, body) = get(proxy.addr, "other.test", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("no route for host `other.test`"), "{body}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_responses_are_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let started = Instant::now();
    let req = hyper::Request::builder()
        .uri(proxy.url("/stream"))
        .header("host", "web.test")
        .body(http_body_util::Empty::new())
        .unwrap();
    let mut body = client.request(req).await.unwrap().into_body();
    let first = http_body_util::BodyExt::frame(&mut body)
        .await
        .unwrap()
        .unwrap();
    let first_at = started.elapsed();
    assert_eq!(first.data_ref().unwrap().as_ref(), b"first\n");
    let second = http_body_util::BodyExt::frame(&mut body)
        .await
        .unwrap()
        .unwrap();
    let second_at = started.elapsed();
    assert_eq!(second.data_ref().unwrap().as_ref(), b"second\n");
    println!("first chunk after {first_at:?}, second after {second_at:?}");
    // The backend sends the second chunk 500 ms after the first; a buffering proxy would
    // deliver both together.
    assert!(
        second_at - first_at >= Duration::from_millis(300),
        "chunks arrived together"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_pass_through() {
    use futures_util::{SinkExt, StreamExt};
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            proxy.addr
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("host", "web.test".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket through the proxy");
    for i in 0..3 {
        ws.send(format!("hello {i}").into()).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("a: hello {i}"));
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_is_served_on_the_plain_listener() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let req = hyper::Request::builder()
        .uri(format!("http://web.test:{}/", proxy.addr.port()))
        .body(http_body_util::Empty::new())
        .unwrap();
    // The URI's host is the route's; connect to the proxy's address instead.
    let req = {
        let (mut parts, body) = req.into_parts();
        parts.uri = format!("http://{}/", proxy.addr).parse().unwrap();
        parts.headers.insert("host", "web.test".parse().unwrap());
        hyper::Request::from_parts(parts, body)
    };
    let resp = client.request(req).await.expect("h2c request");
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"a");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_sni_serves_http2_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["web.test".to_string()]).unwrap();
    let cert_pem = dir.path().join("web.crt");
    let key_pem = dir.path().join("web.key");
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let store = berth_proxy::tls::CertStore::open(&dir.path().join("certs")).unwrap();
    store.add_files("web.test", &cert_pem, &key_pem).unwrap();
    let mut config = support::config(dir.path());
    config.tls_listen = vec![support::free_addr()];
    let plugins = berth_proxy::Plugins {
        tls: Some(berth_proxy::tls::server_config(&store)),
        challenges: None,
    };
    let proxy = TestProxy::start_with(config, plugins).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(proxy.tls_addr.unwrap())
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(
            rustls::pki_types::ServerName::try_from("web.test").unwrap(),
            tcp,
        )
        .await
        .expect("tls handshake with SNI web.test");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri("https://web.test/echo")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["name"], "a");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    assert_eq!(echo["headers"]["host"], "web.test");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_requests_and_maintenance_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;

    proxy
        .admin
        .pause("web", Duration::from_secs(10))
        .await
        .unwrap();
    let addr = proxy.addr;
    let held = tokio::spawn(async move { get(addr, "web.test", "/").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "a paused route answered");
    assert!(proxy.admin.status().await.unwrap().routes[0].paused);
    proxy.admin.resume("web").await.unwrap();
    assert_eq!(held.await.unwrap(), (200, "a".to_string()));

    proxy
        .admin
        .pause("web", Duration::from_millis(200))
        .await
        .unwrap();
    let (status, _) = get(proxy.addr, "web.test", "/").await;
    assert_eq!(status, 503, "a request held past the pause bound gets 503");
    proxy.admin.resume("web").await.unwrap();

    proxy
        .admin
        .maintenance("web", Some("back at 10:00".into()))
        .await
        .unwrap();
    let (status, body) = get(proxy.addr, "web.test", "/").await;
    assert_eq!(status, 503);
    assert!(body.contains("back at 10:00"), "{body}");
    proxy.admin.maintenance("web", None).await.unwrap();
    assert_eq!(get(proxy.addr, "web.test", "/").await.0, 200);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_target_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.metrics_listen = Some(support::free_addr());
    let proxy = TestProxy::start_with(config, berth_proxy::Plugins::default()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    for _ in 0..3 {
        assert_eq!(get(proxy.addr, "web.test", "/").await.0, 200);
    }
    let (status, text) = get(proxy.metrics_addr.unwrap(), "metrics", "/metrics").await;
    assert_eq!(status, 200);
    let line = format!(
        "berth_proxy_requests_total{{route=\"web\",target=\"{}\",class=\"2xx\"}} 3",
        a.addr
    );
    assert!(text.contains(&line), "missing `{line}` in:\n{text}");
    assert!(text.contains("berth_proxy_request_duration_seconds_bucket"));
    assert!(text.contains("berth_proxy_health_transitions_total"));
    proxy.stop().await;
}

/// Issue #4 (the benchmark's tail at 64 connections): a burst of new connections is spread
/// evenly over the worker threads instead of landing mostly on whichever woke first, and
/// every connection, moved or not, is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connections_is_spread_evenly_over_the_workers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _a) = support::proxy_with_backend(dir.path(), |config| {
        config.metrics_listen = Some(support::free_addr());
        config.workers = 2;
    })
    .await;

    // Connect all at once, as a load balancer or a client pool does, then use each once and
    // keep it open so that the per-worker counts can be read.
    const CONNS: usize = 60;
    let connects = (0..CONNS).map(|_| tokio::net::TcpStream::connect(proxy.addr));
    let mut streams: Vec<tokio::net::TcpStream> =
        futures_util::future::try_join_all(connects).await.unwrap();
    for stream in &mut streams {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: web.test\r\n\r\n")
            .await
            .unwrap();
    }
    for stream in &mut streams {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.ends_with(b"a") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed before its answer");
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    let (_, text) = get(proxy.metrics_addr.unwrap(), "metrics", "/metrics").await;
    let count = |worker: &str| -> i64 {
        let prefix = format!("berth_proxy_worker_connections{{worker=\"{worker}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    // The metrics request itself is on another listener, so only the burst is counted.
    let (zero, one) = (count("0"), count("1"));
    assert_eq!(zero + one, CONNS as i64, "{text}");
    assert!(
        (zero - one).abs() <= 3,
        "workers hold {zero} and {one} connections"
    );
    drop(streams);
    proxy.stop().await;
}

/// A bad admin request gets a JSON error and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let a = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[a.addr]))
        .await
        .unwrap();
    let before = std::fs::read_to_string(dir.path().join("state.json")).unwrap();

    let mut bad = route("web", "web.test", "r2", &[a.addr]);
    bad.sets[0].targets = vec!["not-an-address".into()];
    let err = proxy.admin.put_route(&bad).await.unwrap_err();
    assert!(err.to_string().contains("IP:PORT"), "{err}");

    let err = proxy
        .admin
        .call::<_, serde_json::Value>(
            hyper::Method::PUT,
            "/routes/web",
            Some(&serde_json::json!({"name": "web", "sets": 3})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            berth_proxy_api::AdminError::Refused { status: 400, .. }
        ),
        "{err:?}"
    );
    let err = proxy
        .admin
        .set_weights("web", [("nope".to_string(), 5)].into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no set `nope`"), "{err}");
    let err = proxy.admin.remove_route("missing").await.unwrap_err();
    assert!(
        err.to_string().contains("no route named `missing`"),
        "{err}"
    );

    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json")).unwrap(),
        before
    );
    let status = proxy.admin.status().await.unwrap();
    assert_eq!(status.routes[0].sets[0].id, "r1");
    proxy.stop().await;
}

/// Issue #4: health checks name the route's host, as Django's ALLOWED_HOSTS and Rails' host
/// authorization require; a check sent to the bare IP would keep such a target out forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_send_the_routes_host() {
    use std::convert::Infallible;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let host_ok = req.headers().get("host").is_some_and(|h| h == "web.test");
                        let mut response = hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from_static(b"strict"),
                        ));
                        if !host_ok {
                            *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
                        }
                        Ok::<_, Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    proxy
        .admin
        .put_route(&route("web", "web.test", "r1", &[addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    assert_eq!(
        get(proxy.addr, "web.test", "/").await,
        (200, "strict".to_string())
    );
    proxy.stop().await;
}
