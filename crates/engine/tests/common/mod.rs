//! Shared set-up for the engine's Docker tests. Without an engine they fail.

#![allow(dead_code)]

use std::process::{Command, Stdio};

use berth_engine::Engine;

/// Connects to the machine's engine and makes sure the test images exist.
pub async fn engine() -> Engine {
    berth_test_support::ensure_test_images();
    Engine::connect()
        .await
        .unwrap_or_else(|err| panic!("these tests need a running Docker Engine: {err}"))
}

/// A network removed when dropped (after the containers using it, so declare it first).
pub struct Network(pub String);

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An image reference removed when dropped.
pub struct Image(pub String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
