//! Helpers for the TLS integration tests: a pebble ACME server, an http-01 responder and a
//! small HTTPS client.

pub mod pebble;
pub mod servers;
