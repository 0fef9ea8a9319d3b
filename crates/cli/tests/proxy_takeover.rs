//! `berth proxy run --takeover` through the real binary: a new process takes the listening
//! sockets over while the old one drains, under continuous load (issue #4).

mod harness;

use berth_proxy_api::{AdminClient, RouteSpec, SetSpec};
use bytes::Bytes;
use harness::proxy::{backend, ProxyProcess};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start_proxy(dir: &Path, listen: SocketAddr, takeover: bool, log: &str) -> ProxyProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .arg("proxy")
        .arg("--admin-socket")
        .arg(dir.join("admin.sock"))
        .arg("run")
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--state-file")
        .arg(dir.join("state.json"))
        .args(["--access-log", "off"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap());
    if takeover {
        command.arg("--takeover");
    }
    ProxyProcess(command.spawn().expect("start berth proxy run"))
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_takes_over_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let target = backend("v1").await;
    let mut old = start_proxy(dir.path(), listen, false, "old.log");
    let admin = AdminClient::new(dir.path().join("admin.sock"));
    wait_until("the first proxy", Duration::from_secs(10), || async {
        admin.status().await.is_ok()
    })
    .await;
    admin
        .put_route(&RouteSpec {
            name: "web".into(),
            hosts: vec!["web.test".into()],
            path_prefix: "/".into(),
            health_path: Some("/up".into()),
            sets: vec![SetSpec {
                id: "v1".into(),
                weight: 100,
                targets: vec![target.to_string()],
            }],
            maintenance: None,
        })
        .await
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let get = move |client: hyper_util::client::legacy::Client<_, Empty<Bytes>>| async move {
        let request = hyper::Request::builder()
            .uri(format!("http://{listen}/"))
            .header("host", "web.test")
            .body(Empty::new())
            .unwrap();
        match client.request(request).await {
            Ok(r) if r.status() == 200 => r
                .into_body()
                .collect()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Ok(r) => Err(format!("status {}", r.status())),
            Err(e) => Err(format!("{e:?}")),
        }
    };
    wait_until("the route healthy", Duration::from_secs(10), || {
        let client = client.clone();
        async move { get(client).await.is_ok() }
    })
    .await;

    // Continuous load from keep-alive clients (new connections too, every 50th request).
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build_http::<Empty<Bytes>>();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                if n.is_multiple_of(50) {
                    client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .build_http::<Empty<Bytes>>();
                }
                match get(client.clone()).await {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => errors.lock().unwrap().push(e),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = ok.load(Ordering::SeqCst);
    let old_pid = admin.status().await.unwrap().pid;

    let new = start_proxy(dir.path(), listen, true, "new.log");
    let new_pid = new.0.id();
    wait_until(
        "the new process serving the admin socket",
        Duration::from_secs(15),
        || async { admin.status().await.is_ok_and(|s| s.pid == new_pid) },
    )
    .await;
    // The old process drains and exits by itself.
    let exited = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = old.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the old proxy did not exit after the handover"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let total = ok.load(Ordering::SeqCst);
    let errors = errors.lock().unwrap().clone();
    println!(
        "old pid {old_pid} -> new pid {new_pid}; {total} requests ok ({before} before the upgrade), {} failed",
        errors.len()
    );
    assert!(exited.success(), "the old proxy exited with {exited:?}");
    assert!(
        errors.is_empty(),
        "failed requests during the upgrade: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(
        total > before + 100,
        "too little load after the upgrade to judge: {total}"
    );
    let old_log = std::fs::read_to_string(dir.path().join("old.log")).unwrap();
    assert!(old_log.contains("handed its sockets"), "{old_log}");
    // The route and its health came across: the new process served at once.
    let status = admin.status().await.unwrap();
    assert_eq!(status.routes.len(), 1);
    drop(new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_proxy_on_the_same_socket_is_refused_and_says_how_to_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start_proxy(dir.path(), free_addr(), false, "first.log");
    let admin = AdminClient::new(dir.path().join("admin.sock"));
    wait_until("the first proxy", Duration::from_secs(10), || async {
        admin.status().await.is_ok()
    })
    .await;
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("proxy")
        .arg("--admin-socket")
        .arg(dir.path().join("admin.sock"))
        .arg("run")
        .args(["--listen", &free_addr().to_string()])
        .arg("--state-file")
        .arg(dir.path().join("state.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--takeover"), "{stderr}");
}
