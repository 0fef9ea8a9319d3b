//! ACME end to end through the proxy (issue #4): pebble validates http-01 against the
//! proxy's own plain listener, and the certificate it issues is served over TLS with HTTP/2.

#[allow(dead_code)]
mod common;
mod support;

use berth_proxy::tls::{server_config, Acme, CertStore, Challenges};
use std::sync::Arc;
use support::backend::Backend;
use support::{route, wait_route_healthy, TestProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_answers_http01_and_serves_the_issued_certificate_over_h2() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.tls_listen = vec![support::free_addr()];
    let store = Arc::new(CertStore::open(&config.cert_dir).unwrap());
    let challenges = Challenges::default();
    let plugins = berth_proxy::Plugins {
        tls: Some(server_config(&store)),
        challenges: Some(Arc::new(challenges.clone())),
    };
    let proxy = TestProxy::start_with(config, plugins).await;
    // Pebble connects for http-01 to the proxy's plain listener, as a CA connects to port 80.
    let pebble = common::pebble::Pebble::start(proxy.addr.port());
    let backend = Backend::start("a").await;
    proxy
        .admin
        .put_route(&route("web", "shop.test", "r1", &[backend.addr]))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;

    let acme = Acme::new(
        pebble.acme_config(&dir.path().join("acme")),
        challenges.clone(),
        store.clone(),
    )
    .await
    .expect("register with pebble");
    acme.issue(&["shop.test".to_string()])
        .await
        .unwrap_or_else(|e| panic!("issuance through the proxy failed: {e}\n{}", pebble.logs()));
    assert!(store.hosts().iter().any(|c| c.host == "shop.test"));

    let root = pebble.issuing_root_pem().await;
    let response =
        common::servers::https_get(proxy.tls_addr.unwrap(), "shop.test", &root, b"h2", "/")
            .await
            .expect("an HTTPS request with the issued certificate");
    assert_eq!(response.version, hyper::Version::HTTP_2);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "a", "the request reached the route's target");
    proxy.stop().await;
}
