//! The proxy's admin vocabulary: what the admin API accepts and answers, the defaults it
//! applies when a request leaves a value out, and the client that speaks it.
//!
//! Both sides use these types: the proxy (`berth-proxy`, whose `admin` module serves them)
//! and berth's deploy code and CLI (which call it). Keeping them here lets a deploy talk to
//! the proxy without linking the proxy's data plane (TLS, ACME, metrics).

// Only the CLI prints (ARCHITECTURE.md, invariants): a library reports through return values,
// events and the writers it is given, so that output stays the CLI's to shape and to pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod answer;
pub mod client;
pub mod millis;
pub mod request;
pub mod route;
pub mod status;

pub use client::{AdminClient, AdminError};
pub use request::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEALTH_TIMEOUT};
pub use route::{RouteSpec, SetSpec};
pub use status::{DeployReport, Status};
