//! The reverse proxy: routes, weighted targets, health checks and drain (issue 4).
//!
//! This crate knows routes, addresses and health. It knows nothing of Compose: berth's
//! deploy code turns services into routes and containers into target addresses, and talks
//! to a running proxy through the admin API, whose vocabulary and client live in
//! `berth-proxy-api` so that callers need not link the data plane.
//!
//! Data plane: `server` accepts connections (HTTP/1.1 behind `framing_guard`, h2c, TLS
//! with ALPN), `forward` routes each request through the `router` snapshot to a target the
//! `load_balancer` picks, streaming both ways; `tunnel` joins upgraded connections.
//! Control plane: `admin` (JSON on a unix socket) drives `control`, which rebuilds the
//! router snapshot and swaps it in atomically, persists `state`, and starts
//! `health_check`s. `handover` passes the listening sockets to a new process.

// Only the CLI prints (ARCHITECTURE.md, invariants): a library reports through return values,
// events and the writers it is given, so that output stays the CLI's to shape and to pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod access_log;
pub mod admin;
mod balance;
pub mod body;
pub mod config;
pub mod control;
pub mod error_page;
pub mod forward;
pub mod framing_guard;
mod h1_client;
mod h1_server;
pub mod handover;
pub mod health_check;
mod http_date;
pub mod listener;
pub mod load_balancer;
pub mod metrics;
mod pool;
pub mod request_head;
pub mod request_id;
mod response_body;
pub mod router;
pub mod server;
pub mod service;
pub mod state;
pub mod target;
pub mod tls;
pub mod tunnel;
pub mod upstream;

pub use config::{AccessLog, HealthIntervals, ProxyConfig, Timeouts};
pub use server::{run, Exit, Plugins, ServeError};
