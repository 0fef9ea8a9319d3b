//! A real proxy (`berth_proxy::run`) in this process, real backends and a load generator,
//! all on loopback sockets.

#![allow(dead_code)]

pub mod backend;
pub mod load;
pub mod recorder;

use berth_proxy::{Plugins, ProxyConfig};
use berth_proxy_api::AdminClient;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running proxy; stopped (gracefully) on `stop` or drop.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub admin: AdminClient,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<berth_proxy::Exit, berth_proxy::ServeError>>>,
}

/// A proxy's settings for tests: everything in `dir`, loopback listener on a free port,
/// health checks fast so tests don't wait on steady-state intervals.
pub fn config(dir: &Path) -> ProxyConfig {
    let mut config = ProxyConfig::in_dir(dir, vec![free_addr()]);
    config.health.fast = Duration::from_millis(50);
    config.health.steady = Duration::from_millis(500);
    config.handover_drain = Duration::from_secs(5);
    config
}

pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

impl TestProxy {
    pub async fn start(dir: &Path) -> TestProxy {
        TestProxy::start_with(config(dir), Plugins::default()).await
    }

    pub async fn start_with(config: ProxyConfig, plugins: Plugins) -> TestProxy {
        let addr = config.listen[0];
        let tls_addr = config.tls_listen.first().copied();
        let metrics_addr = config.metrics_listen;
        let dir = config.state_file.parent().expect("state dir").to_path_buf();
        let admin = AdminClient::new(&config.admin_socket);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(berth_proxy::run(config, plugins, false, async {
            let _ = stopped.await;
        }));
        // The admin socket answers once every listener is open.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if admin.status().await.is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the proxy did not start within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestProxy {
            addr,
            tls_addr,
            metrics_addr,
            admin,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let exit = tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the proxy stops within 15 s")
                .expect("proxy task")
                .expect("proxy run");
            assert_eq!(exit, berth_proxy::Exit::Shutdown);
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Polls until `check` is true, failing the test with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A route for `host` with one set of targets and health checks on `/up`.
pub fn route(
    name: &str,
    host: &str,
    set: &str,
    targets: &[SocketAddr],
) -> berth_proxy_api::RouteSpec {
    berth_proxy_api::RouteSpec {
        name: name.to_string(),
        hosts: vec![host.to_string()],
        path_prefix: "/".to_string(),
        health_path: Some("/up".to_string()),
        sets: vec![set_of(set, 100, targets)],
        maintenance: None,
    }
}

pub fn set_of(id: &str, weight: u32, targets: &[SocketAddr]) -> berth_proxy_api::SetSpec {
    berth_proxy_api::SetSpec {
        id: id.to_string(),
        weight,
        targets: targets.iter().map(|a| a.to_string()).collect(),
    }
}

/// Waits until every target of `route` is healthy.
pub async fn wait_route_healthy(admin: &AdminClient, route: &str) {
    eventually(Duration::from_secs(10), "route targets healthy", || async {
        let status = admin.status().await.expect("status");
        status.routes.iter().any(|r| {
            r.name == route
                && r.sets.iter().all(|s| {
                    s.targets
                        .iter()
                        .all(|t| t.health == berth_proxy_api::status::HealthName::Healthy)
                })
        })
    })
    .await;
}

/// A proxy (settings from `config`, changed by `tweak`) with route `web` for `web.test` to
/// one backend named `a`, its target already healthy.
pub async fn proxy_with_backend(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut berth_proxy::ProxyConfig),
) -> (TestProxy, backend::Backend) {
    let mut config = config(dir);
    tweak(&mut config);
    let proxy = TestProxy::start_with(config, berth_proxy::Plugins::default()).await;
    let backend = backend::Backend::start("a").await;
    serve_web(&proxy, "r1", &[backend.addr]).await;
    (proxy, backend)
}

/// Puts route `web` for `web.test` with one set `set` on `targets` and waits until they
/// are healthy.
pub async fn serve_web(proxy: &TestProxy, set: &str, targets: &[SocketAddr]) {
    proxy
        .admin
        .put_route(&route("web", "web.test", set, targets))
        .await
        .unwrap();
    wait_route_healthy(&proxy.admin, "web").await;
}

/// A proxy with route `web` for `web.test` to one backend that records everything it
/// receives (`recorder::Recorder`), its target already healthy.
pub async fn proxy_with_recorder(dir: &std::path::Path) -> (TestProxy, recorder::Recorder) {
    let proxy = TestProxy::start(dir).await;
    let recorder = recorder::Recorder::start().await;
    serve_web(&proxy, "r1", &[recorder.addr]).await;
    (proxy, recorder)
}
