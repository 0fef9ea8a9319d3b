//! The control plane on real sockets: a target swap under load, drain of long requests and
//! WebSockets, a deploy that never gets healthy, and state restored across a restart.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use support::backend::Backend;
use support::load::{get, Load};
use support::{route, serve_web, set_of, wait_route_healthy, TestProxy};

/// Issue #4 acceptance: a swap under continuous load fails no request; a 5 s request in
/// flight on the old target completes; a WebSocket opened before the swap keeps echoing
/// until `drain_timeout`, then closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_load_fails_nothing_and_drains_long_requests_and_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let old = Backend::start("old").await;
    let new = Backend::start("new").await;
    serve_web(&proxy, "v1", &[old.addr]).await;

    let load = Load::start(proxy.addr, "web.test", "/", 8);
    let addr = proxy.addr;
    let slow = tokio::spawn(async move { get(addr, "web.test", "/slow?ms=5000").await });
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            proxy.addr
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("host", "web.test".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send("before".into()).await.unwrap();
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "old: before"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let drain_timeout = Duration::from_secs(6);
    let admin = berth_proxy_api::AdminClient::new(proxy.admin.socket());
    let deploy_started = Instant::now();
    let deploy = tokio::spawn(async move {
        admin
            .deploy(
                "web",
                set_of("v2", 100, &[new.addr]),
                Duration::from_secs(10),
                drain_timeout,
            )
            .await
            .map(|report| (report, new))
    });

    // Traffic moves to the new set well before the drain ends.
    support::eventually(Duration::from_secs(5), "traffic on the new set", || async {
        load.snapshot().by_body.contains_key("new")
    })
    .await;
    let switched_at = Instant::now();

    // The WebSocket opened before the swap still echoes from the old target during the drain.
    let mut echoes = 0;
    while deploy_started.elapsed() < drain_timeout - Duration::from_millis(1500) {
        ws.send("during".into()).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), "old: during");
        echoes += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The 5 s request in flight on the old target completes.
    let (status, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "old"));

    let (report, _new) = deploy.await.unwrap().expect("deploy succeeds");
    let deploy_took = deploy_started.elapsed();
    // At the drain deadline the WebSocket is closed, cleanly.
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                None
                | Some(Err(_))
                | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the websocket stayed open after the drain deadline"
    );

    let after_switch = load.snapshot();
    let report_load = load.stop().await;
    let late_old = report_load
        .timeline
        .iter()
        .filter(|(at, body)| *at > switched_at + Duration::from_millis(50) && body == "old")
        .count();
    println!(
        "deploy {report:?} in {deploy_took:?}; load ok {} failed {} {:?}; websocket echoes during drain {echoes}",
        report_load.ok, report_load.failed, report_load.by_body
    );
    assert_eq!(
        report_load.failed, 0,
        "failed requests: {:?}",
        report_load.errors
    );
    assert_eq!(late_old, 0, "requests reached the old set after the switch");
    assert!(echoes >= 3);
    assert!(after_switch.ok > 100);
    assert_eq!(
        report.closed_at_deadline, 1,
        "the websocket was open at the deadline"
    );
    assert!(
        deploy_took >= drain_timeout,
        "the deploy answered before the drain ended"
    );
    let status = proxy.admin.status().await.unwrap();
    assert_eq!(status.routes[0].sets.len(), 1);
    assert_eq!(status.routes[0].sets[0].id, "v2");
    assert!(status.routes[0].draining.is_empty());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_that_never_gets_healthy_leaves_traffic_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let old = Backend::start("old").await;
    let bad = Backend::start("bad").await;
    bad.set_healthy(false);
    serve_web(&proxy, "v1", &[old.addr]).await;
    let load = Load::start(proxy.addr, "web.test", "/", 4);
    let err = proxy
        .admin
        .deploy(
            "web",
            set_of("v2", 100, &[bad.addr]),
            Duration::from_millis(800),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    let report = load.stop().await;
    assert!(
        err.to_string()
            .contains("did not become healthy within 800 ms"),
        "{err}"
    );
    assert_eq!(report.failed, 0);
    assert_eq!(report.by_body.keys().collect::<Vec<_>>(), vec!["old"]);
    assert_eq!(bad.requests(), 0, "an unhealthy set got traffic");
    let status = proxy.admin.status().await.unwrap();
    assert_eq!(status.routes[0].sets.len(), 1);
    assert!(!status.routes[0].deploying);
    proxy.stop().await;
}

/// A second deploy while one runs is refused, and the first still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_of_one_route_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let old = Backend::start("old").await;
    let new = Backend::start("new").await;
    let other = Backend::start("other").await;
    serve_web(&proxy, "v1", &[old.addr]).await;
    // The new set starts unhealthy so that the first deploy is still waiting on it.
    new.set_healthy(false);
    let admin = berth_proxy_api::AdminClient::new(proxy.admin.socket());
    let new_addr = new.addr;
    let first = tokio::spawn(async move {
        admin
            .deploy(
                "web",
                set_of("v2", 100, &[new_addr]),
                Duration::from_secs(5),
                Duration::from_secs(1),
            )
            .await
    });
    until_deploying(&proxy).await;
    let err = proxy
        .admin
        .deploy(
            "web",
            set_of("v3", 100, &[other.addr]),
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("in progress"), "{err}");
    new.set_healthy(true);
    first.await.unwrap().expect("the first deploy completes");
    assert_eq!(
        get(proxy.addr, "web.test", "/").await,
        (200, "new".to_string())
    );
    proxy.stop().await;
}

/// A deploy whose client goes away mid-wait (a `berth deploy` killed with -9) is finished
/// by the proxy on its own: the set is added once healthy and the route is free again, never
/// left busy for good. Regression test for issue #4's kill -9 deploy test, which hit a route
/// still marked busy after the client that started the change had died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_client_disconnects_still_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let old = Backend::start("old").await;
    let new = Backend::start("new").await;
    serve_web(&proxy, "v1", &[old.addr]).await;
    new.set_healthy(false);
    let admin = berth_proxy_api::AdminClient::new(proxy.admin.socket());
    let new_addr = new.addr;
    let client = tokio::spawn(async move {
        admin
            .add_set(
                "web",
                set_of("v2", 100, &[new_addr]),
                Duration::from_secs(30),
            )
            .await
    });
    until_deploying(&proxy).await;
    // Aborting the task drops its admin connection, as the death of its process would.
    client.abort();
    let _ = client.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    new.set_healthy(true);
    support::eventually(Duration::from_secs(10), "the add finished", || async {
        let route = &proxy.admin.status().await.unwrap().routes[0];
        !route.deploying && route.sets.iter().any(|s| s.id == "v2" && !s.pending)
    })
    .await;
    // The route takes changes again.
    proxy
        .admin
        .remove_set("web", "v2", Duration::from_secs(1))
        .await
        .expect("the route is free once the abandoned add finished");
    proxy.stop().await;
}

/// A target whose set is being drained can be added back as a new set at once, as a
/// `berth deploy` reverting a killed one does with the replicas that deploy was draining; the
/// request in flight on the draining copy still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_target_can_come_back_as_a_new_set() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let old = Backend::start("old").await;
    let new = Backend::start("new").await;
    let mut spec = route("web", "web.test", "v1", &[old.addr]);
    spec.sets.push(set_of("v2", 100, &[new.addr]));
    proxy.admin.put_route(&spec).await.unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    // A slow request on the old target keeps its drain going.
    let addr = proxy.addr;
    let slow = tokio::spawn(async move {
        loop {
            let (status, body) = get(addr, "web.test", "/slow?ms=3000").await;
            if body.starts_with("old") {
                return status;
            }
        }
    });
    support::eventually(Duration::from_secs(5), "a slow request on old", || async {
        old.requests() > 0
    })
    .await;
    let admin = berth_proxy_api::AdminClient::new(proxy.admin.socket());
    let drain =
        tokio::spawn(async move { admin.remove_set("web", "v1", Duration::from_secs(10)).await });
    support::eventually(Duration::from_secs(5), "v1 draining", || async {
        !proxy.admin.status().await.unwrap().routes[0]
            .draining
            .is_empty()
    })
    .await;
    proxy
        .admin
        .add_set(
            "web",
            set_of("v1-back", 100, &[old.addr]),
            Duration::from_secs(5),
        )
        .await
        .expect("a draining address is accepted as a new set");
    assert_eq!(
        slow.await.unwrap(),
        200,
        "the request on the draining copy completes"
    );
    drain.await.unwrap().unwrap();
    let status = proxy.admin.status().await.unwrap();
    let ids: Vec<&str> = status.routes[0]
        .sets
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(ids, ["v2", "v1-back"]);
    proxy.stop().await;
}

/// Canary weights move in one swap, and removing a set drains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_set_added_weighted_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start(dir.path()).await;
    let stable = Backend::start("stable").await;
    let canary = Backend::start("canary").await;
    serve_web(&proxy, "stable", &[stable.addr]).await;
    proxy
        .admin
        .add_set(
            "web",
            set_of("canary", 0, &[canary.addr]),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(
            get(proxy.addr, "web.test", "/").await.1,
            "stable",
            "weight 0 gets nothing"
        );
    }
    proxy
        .admin
        .set_weights(
            "web",
            [("stable".to_string(), 50), ("canary".to_string(), 50)].into(),
        )
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..100 {
        *seen
            .entry(get(proxy.addr, "web.test", "/").await.1)
            .or_default() += 1;
    }
    assert_eq!(seen["canary"], 50, "{seen:?}");
    proxy
        .admin
        .remove_set("web", "canary", Duration::from_secs(2))
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(
            get(proxy.addr, "web.test", "/").await.1,
            "stable",
            "abort returns everything to stable"
        );
    }
    proxy.stop().await;
}

/// Issue #4 acceptance: state is restored after a restart, and restored targets are
/// checked before they get traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_restored_and_targets_rechecked_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start("a").await;
    let proxy = TestProxy::start(dir.path()).await;
    let mut spec = route("web", "web.test", "v1", &[backend.addr]);
    spec.maintenance = None;
    proxy.admin.put_route(&spec).await.unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
    assert_eq!(get(proxy.addr, "web.test", "/").await.0, 200);
    proxy.stop().await;

    // While the proxy is down, the target stops passing its health check (it still answers
    // other paths): a restored target must not be trusted on the old state's word.
    backend.set_healthy(false);
    let mut config = support::config(dir.path());
    config.listen = vec![support::free_addr()];
    let proxy = TestProxy::start_with(config, berth_proxy::Plugins::default()).await;
    let status = proxy.admin.status().await.unwrap();
    assert_eq!(status.routes.len(), 1, "the route was restored");
    assert_eq!(
        status.routes[0].sets[0].targets[0].addr,
        backend.addr.to_string()
    );
    let before = backend.requests();
    for _ in 0..5 {
        assert_eq!(get(proxy.addr, "web.test", "/").await.0, 503);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(
        backend.requests(),
        before,
        "an unchecked restored target got traffic"
    );
    backend.set_healthy(true);
    wait_route_healthy(&proxy.admin, "web").await;
    assert_eq!(
        get(proxy.addr, "web.test", "/").await,
        (200, "a".to_string())
    );
    proxy.stop().await;
}

/// Waits until a change of route `web` is running in the proxy.
async fn until_deploying(proxy: &TestProxy) {
    support::eventually(
        Duration::from_secs(5),
        "a change of `web` running",
        || async { proxy.admin.status().await.unwrap().routes[0].deploying },
    )
    .await;
}
