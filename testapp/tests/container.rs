//! testapp's behaviour, checked over real sockets against the `berth/testapp` image.
//!
//! These tests need a running Docker Engine and fail without one.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use berth_test_support::{
    ensure_test_images, http_get, run_container, wait_for, Container, Volume, TESTAPP_IMAGE,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Starts testapp with `extra` options (before the image) and waits until it answers.
fn start(extra: &[&str]) -> (Container, SocketAddr) {
    ensure_test_images();
    let mut args = vec!["-p", "127.0.0.1::8080"];
    args.extend_from_slice(extra);
    args.push(TESTAPP_IMAGE);
    let container = run_container("berth-test-testapp", &args);
    let addr = container.addr(8080);
    wait_for(
        &format!("{} to answer on {addr}", container.name),
        Duration::from_secs(20),
        || http_get(addr, "/up").is_ok(),
    );
    (container, addr)
}

#[test]
fn root_answers_the_app_version() {
    let (_c, addr) = start(&["-e", "APP_VERSION=v42"]);
    let response = http_get(addr, "/").unwrap();
    assert_eq!((response.status, response.body.as_str()), (200, "v42"));
}

#[test]
fn up_is_200_and_503_with_health_fail() {
    let (_ok, addr) = start(&[]);
    assert_eq!(http_get(addr, "/up").unwrap().status, 200);
    assert_eq!(http_get(addr, "/up").unwrap().body, "ok");

    let (_failing, addr) = start(&["-e", "HEALTH=fail"]);
    assert_eq!(http_get(addr, "/up").unwrap().status, 503);
}

#[test]
fn slow_waits_for_the_requested_time() {
    let (_c, addr) = start(&[]);
    let started = Instant::now();
    let response = http_get(addr, "/slow?ms=300").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status, 200);
    assert!(response.body.contains("300"), "{}", response.body);
}

#[tokio::test]
async fn ws_echoes_text_and_binary() {
    let (_c, addr) = start(&[]);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    socket.send(Message::text("hello berth")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("hello berth")
    );
    socket.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    socket.close(None).await.unwrap();
}

#[test]
fn count_persists_in_a_named_volume_across_containers() {
    let volume = Volume::create("berth-test-count");
    let mount = format!("{}:/data", volume.name);
    {
        let (_first, addr) = start(&["-v", &mount]);
        assert_eq!(http_get(addr, "/count").unwrap().body, "1");
        assert_eq!(http_get(addr, "/count").unwrap().body, "2");
    } // The first container is removed here.
    let (_second, addr) = start(&["-v", &mount]);
    assert_eq!(http_get(addr, "/count").unwrap().body, "3");
}

#[test]
fn crash_exits_with_code_1() {
    ensure_test_images();
    let container = run_container("berth-test-crash", &["-e", "CRASH=1", TESTAPP_IMAGE]);
    wait_for("the container to exit", Duration::from_secs(20), || {
        container.inspect("{{.State.Status}}") == "exited"
    });
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "1");
    assert!(container.logs().contains("CRASH=1"), "{}", container.logs());
}

#[test]
fn fail_root_breaks_root_but_not_health() {
    let (_c, addr) = start(&["-e", "FAIL_ROOT=1"]);
    assert_eq!(http_get(addr, "/").unwrap().status, 500);
    assert_eq!(http_get(addr, "/up").unwrap().status, 200);
}

#[test]
fn image_healthcheck_turns_healthy() {
    // The image's HEALTHCHECK runs `/testapp health`; only its interval is shortened here.
    let (container, _addr) = start(&["--health-interval", "1s"]);
    wait_for(
        "the container to be healthy",
        Duration::from_secs(30),
        || container.inspect("{{.State.Health.Status}}") == "healthy",
    );
}

#[test]
fn image_healthcheck_turns_unhealthy_when_up_fails() {
    let (container, _addr) = start(&["--health-interval", "1s", "-e", "HEALTH=fail"]);
    wait_for(
        "the container to be unhealthy",
        Duration::from_secs(30),
        || container.inspect("{{.State.Health.Status}}") == "unhealthy",
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let (container, addr) = start(&[]);
    let request = thread::spawn(move || http_get(addr, "/slow?ms=2000"));
    // Give the request time to reach the server before the stop signal does.
    thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    berth_test_support::docker(&["stop", "-t", "10", &container.name]);
    let stop_took = started.elapsed();

    let response = request
        .join()
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status, 200);
    assert!(response.body.contains("2000"), "{}", response.body);
    // Exit code 0 within the grace period means testapp drained and left on its own;
    // a SIGKILL after the timeout would show as 137 and a 10s stop.
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0");
    assert!(
        stop_took < Duration::from_secs(9),
        "stop took {stop_took:?}"
    );
    let logs = container.logs();
    assert!(logs.contains("got SIGTERM"), "{logs}");
}
