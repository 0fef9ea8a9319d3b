//! `berth proxy boot` through the real binary on the real engine: the proxy container comes
//! up, routes to a service on network `berth`, a second boot is a no-op, and an upgrade to
//! a different binary under load refuses nothing and keeps the container.
//!
//! The container is named by `BERTH_PROXY_CONTAINER` (unique per test) so that a test does
//! not touch an operator's `berth-proxy`; the network `berth` is shared and left in place.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_test_support::{
    docker_output, ensure_test_images, inspect, run_container, static_berth_binary, unique_name,
    Container, TESTAPP_IMAGE,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const VERSION: &str = "v-boot-test";

struct Proxy {
    container: String,
    socket: String,
}

impl Proxy {
    fn berth(&self, args: &[&str]) -> Output {
        Command::new(assert_cmd::cargo::cargo_bin("berth"))
            .env("BERTH_PROXY_CONTAINER", &self.container)
            .env_remove("BERTH_PROXY_SOCKET")
            .arg("proxy")
            .arg("--admin-socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("the berth binary runs")
    }

    fn boot(&self, port: u16, data: &Path, binary: &Path) -> Output {
        self.berth(&[
            "boot",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().unwrap(),
            "--binary",
            binary.to_str().unwrap(),
        ])
    }

    fn pid(&self) -> Option<u64> {
        let out = self.berth(&["status", "--format", "json"]);
        if !out.status.success() {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        json["pid"].as_u64()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// One GET of `/` for host web.test: Ok(body) on 200, Err(what happened) otherwise.
async fn get(client: &HttpClient, addr: SocketAddr) -> Result<String, String> {
    let request = hyper::Request::get(format!("http://{addr}/"))
        .header("host", "web.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "no answer within 10s".to_string())?
        .map_err(|e| format!("request failed: {e:?}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body failed: {e}"))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("status {status}: {body}"))
    }
}

#[test]
fn boot_refuses_a_dynamically_linked_binary() {
    // The test build of berth is dynamically linked, as every normal cargo build is.
    let dynamic = assert_cmd::cargo::cargo_bin("berth");
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy {
        container: unique_name("berth-proxy-dyn"),
        socket: dir.path().join("proxy.sock").display().to_string(),
    };
    let out = proxy.berth(&[
        "boot",
        "--binary",
        dynamic.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dynamically linked"), "{stderr}");
    assert!(
        stderr.contains("RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release"),
        "{stderr}"
    );
}

/// One test, because the phases build on each other: the upgrade needs a booted proxy with
/// a route, and booting a container is the slow part.
#[test]
fn boot_routes_is_idempotent_and_upgrades_under_load_without_a_failed_request() {
    ensure_test_images();
    let binary = static_berth_binary();
    assert!(
        binary.is_file(),
        "{} is missing; `cargo xtask test-images` builds it",
        binary.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let proxy = Proxy {
        container: unique_name("berth-proxy-test"),
        socket: tmp.path().join("run/proxy.sock").display().to_string(),
    };
    // The guards exist before anything is created; the proxy's is dropped last.
    let _proxy_guard = Container::adopt(proxy.container.clone());
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Boot.
    let started = Instant::now();
    let out = proxy.boot(port, &data, &binary);
    assert!(out.status.success(), "first boot failed: {}", text(&out));
    eprintln!("first boot took {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(
        inspect(&proxy.container, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    let networks = inspect(&proxy.container, "{{json .NetworkSettings.Networks}}");
    assert!(networks.contains("\"berth\""), "networks: {networks}");
    assert_eq!(
        inspect(&proxy.container, "{{index .Config.Labels \"berth.role\"}}"),
        "proxy"
    );
    let id = inspect(&proxy.container, "{{.Id}}");

    // A service on network `berth`, routed by host name.
    let app = run_container(
        "berth-boot-app",
        &[
            "--network",
            "berth",
            "-e",
            &format!("APP_VERSION={VERSION}"),
            TESTAPP_IMAGE,
        ],
    );
    let ip = app.inspect("{{(index .NetworkSettings.Networks \"berth\").IPAddress}}");
    assert!(!ip.is_empty(), "the app has no address on network berth");
    let out = proxy.berth(&[
        "route",
        "add",
        "web",
        "--host",
        "web.test",
        "--health-path",
        "/up",
        "--target",
        &format!("{ip}:8080"),
    ]);
    assert!(out.status.success(), "route add failed: {}", text(&out));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        match runtime.block_on(get(&client, addr)) {
            Ok(body) => break body,
            Err(e) if Instant::now() > deadline => {
                panic!(
                    "the proxy did not route web.test within 30s: {e}\n{}",
                    Container::adopt(proxy.container.clone()).logs()
                );
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_eq!(body, VERSION);

    // The same binary again: nothing to do.
    let out = proxy.boot(port, &data, &binary);
    assert!(out.status.success(), "second boot failed: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is current"),
        "{}",
        text(&out)
    );
    assert_eq!(inspect(&proxy.container, "{{.Id}}"), id);

    // A different binary: the same program with bytes appended, which the kernel ignores
    // but which changes the hash.
    let newer = tmp.path().join("berth-newer");
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"\nberth proxy boot upgrade test\n");
    std::fs::write(&newer, &bytes).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let old_pid = proxy.pid().expect("status answers before the upgrade");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failures, client) =
                (stop.clone(), ok.clone(), failures.clone(), client.clone());
            runtime.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match get(&client, addr).await {
                        Ok(body) if body == VERSION => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(body) => failures
                            .lock()
                            .unwrap()
                            .push(format!("unexpected body {body:?}")),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    let started = Instant::now();
    let out = proxy.boot(port, &data, &newer);
    assert!(out.status.success(), "upgrade boot failed: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("upgraded"),
        "{}",
        text(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_pid = loop {
        match proxy.pid() {
            Some(pid) if pid != old_pid => break pid,
            _ if Instant::now() > deadline => panic!("the proxy pid did not change within 30s"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    eprintln!(
        "upgrade took {:.1}s: pid {old_pid} -> {new_pid}",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        runtime.block_on(task).unwrap();
    }

    let ok = ok.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap();
    eprintln!("{ok} requests succeeded, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the upgrade, first ones: {:#?}",
        failures.len(),
        ok as usize + failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(ok > 100, "only {ok} requests were sent during the upgrade");
    assert_eq!(inspect(&proxy.container, "{{.Id}}"), id);
    let current = std::fs::read_to_string(data.join("bin/current")).unwrap();
    assert!(current.trim().starts_with("berth-"), "{current}");
    let logs = docker_output(&["logs", &proxy.container]);
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(logs.contains("takeover done"), "supervisor log:\n{logs}");

    drop(app);
}
