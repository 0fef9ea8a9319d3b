//! Helpers shared by berth's Docker tests.
//!
//! Tests observe Docker through the `docker` CLI: it is independent of the engine code under
//! test, so a bug in `berth-engine` cannot hide itself. None of these helpers skip a test
//! when Docker is missing; they panic with a message that says what is needed, because a
//! test that silently skips looks exactly like a test that passed.
//!
//! Containers are reached through ports published on 127.0.0.1 rather than their bridge
//! IPs, so tests only ever send traffic to the loopback address.

// Only the CLI prints (ARCHITECTURE.md, invariants): a library reports through return values,
// events and the writers it is given, so that output stays the CLI's to shape and to pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod docker;
mod http;
mod images;
mod load;
mod wait;

pub use docker::{
    docker, docker_output, inspect, published_addr, run_container, unique_name, Container, Volume,
};
pub use http::{http_get, http_get_host, HttpResponse};
pub use images::{
    ensure_test_images, static_berth_binary, workspace_root, MARIADB_IMAGE, POSTGRES_IMAGE,
    PYTHON_IMAGE, REDIS_IMAGE, TESTAPP_IMAGE,
};
pub use load::{Load, LoadReport, Sample};
pub use wait::{try_wait_for, wait_for};
