//! Talks to the real Docker Engine of the machine. These tests fail
//! when no engine is running: a green run must mean the engine code was exercised.

use berth_engine::{Engine, EngineError};

#[tokio::test]
async fn connects_and_reports_the_version() {
    let engine = Engine::connect()
        .await
        .unwrap_or_else(|err| panic!("these tests need a running Docker Engine: {err}"));
    let version = engine.version().await.unwrap();
    assert!(!version.version.is_empty(), "{version:?}");
    assert_eq!(version.os, "linux");
    assert!(!version.arch.is_empty());
    // The negotiated version can never be newer than what the engine supports.
    let as_pair = |v: &str| -> (u32, u32) {
        let (major, minor) = v.split_once('.').unwrap();
        (major.parse().unwrap(), minor.parse().unwrap())
    };
    assert!(as_pair(&version.negotiated_api_version) <= as_pair(&version.api_version));
}

#[tokio::test]
async fn a_missing_socket_is_reported_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/docker.sock", dir.path().display());
    let err = Engine::connect_to(&host).await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach the Docker Engine at {host}: ")),
        "{text}"
    );
    assert!(
        text.ends_with("; start Docker or set DOCKER_HOST"),
        "{text}"
    );
}

#[tokio::test]
async fn a_closed_tcp_port_is_reported_as_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("tcp://127.0.0.1:{port}");
    let err = Engine::connect_to(&host).await.unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test]
async fn an_unknown_scheme_is_an_invalid_host() {
    let err = Engine::connect_to("ftp://example.invalid")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidHost { .. }), "{err:?}");
    assert!(err.to_string().contains("set DOCKER_HOST to"), "{err}");
}
