//! `berth proxy …` through the real binary: steering a running proxy, and bad input.

mod harness;

use bytes::Bytes;
use harness::proxy::{backend, ProxyProcess};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn berth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("proxy")
        .arg("--admin-socket")
        .arg(dir.join("admin.sock"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn get(proxy: SocketAddr, host: &str) -> Option<(u16, String)> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let request = hyper::Request::builder()
        .uri(format!("http://{proxy}/"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn wait_for_body(proxy: SocketAddr, host: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((200, body)) = get(proxy, host).await {
            if body == want {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never answered `{want}` for {host}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_commands_steer_a_running_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", harness::free_port())
        .parse()
        .unwrap();
    let _proxy = ProxyProcess::spawn(
        &dir.path().join("admin.sock"),
        listen,
        &dir.path().join("state.json"),
        &["--workers", "1"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while berth(dir.path(), &["status"]).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "the proxy did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let one = backend("one").await;
    let two = backend("two").await;

    let (code, out, err) = text(&berth(
        dir.path(),
        &[
            "route",
            "add",
            "web",
            "--host",
            "web.test",
            "--target",
            &one.to_string(),
        ],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("route web added"), "{out}");
    wait_for_body(listen, "web.test", "one").await;

    let (code, out, _) = text(&berth(dir.path(), &["status", "--format", "json"]));
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&out).expect("status is JSON");
    assert_eq!(status["routes"][0]["name"], "web");
    assert_eq!(
        status["routes"][0]["sets"][0]["targets"][0]["addr"],
        one.to_string()
    );
    assert_eq!(
        status["routes"][0]["sets"][0]["targets"][0]["health"],
        "healthy"
    );
    let (_, out, _) = text(&berth(dir.path(), &["status"]));
    assert!(out.contains("route web web.test/"), "{out}");

    let (code, out, err) = text(&berth(
        dir.path(),
        &[
            "deploy",
            "web",
            "--target",
            &two.to_string(),
            "--set",
            "v2",
            "--drain-timeout",
            "1s",
            "--format",
            "json",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("deploy report is JSON");
    assert_eq!(report["set"], "v2");
    assert_eq!(get(listen, "web.test").await, Some((200, "two".into())));

    let (code, _, err) = text(&berth(dir.path(), &["weights", "web", "nope=5"]));
    assert_eq!(code, 2);
    assert!(err.contains("no set `nope`"), "{err}");

    let (code, _, _) = text(&berth(
        dir.path(),
        &["maintenance", "web", "--message", "back soon"],
    ));
    assert_eq!(code, 0);
    let (status, body) = get(listen, "web.test").await.unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("back soon"), "{body}");
    assert_eq!(
        text(&berth(dir.path(), &["maintenance", "web", "--off"])).0,
        0
    );
    assert_eq!(get(listen, "web.test").await, Some((200, "two".into())));

    assert_eq!(text(&berth(dir.path(), &["route", "rm", "web"])).0, 0);
    assert_eq!(get(listen, "web.test").await.map(|r| r.0), Some(404));
}

#[test]
fn bad_proxy_input_is_exit_2_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["route", "add", "web", "--target", "web:80"], "IP:PORT"),
        (
            &["route", "add", "web web", "--target", "127.0.0.1:80"],
            "route name",
        ),
        (
            &["route", "add", "web", "--host", "bad host"],
            "not a host name",
        ),
        (
            &[
                "deploy",
                "web",
                "--target",
                "127.0.0.1:80",
                "--health-timeout",
                "5q",
            ],
            "not a duration",
        ),
        (&["weights", "web", "stable"], "SET=WEIGHT"),
        (&["run", "--listen", "nope"], "not an IP:PORT address"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = text(&berth(dir.path(), args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn an_unreachable_proxy_says_how_to_start_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = text(&berth(dir.path(), &["status"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("berth proxy run"), "{err}");
}
