//! The reverse proxy: routes, weighted targets, health checks and drain (issue 4).
//!
//! This crate knows routes, addresses and health. It knows nothing of Compose.

pub mod tls;
