//! TLS termination for the proxy: certificates by host name (user files and ACME-issued),
//! SNI selection for rustls, and an ACME http-01 client.
//!
//! The server wires these together: it opens a [`CertStore`], hands
//! [`server_config`] to its TLS listener, answers `/.well-known/acme-challenge/{token}` on
//! its plain-HTTP listener from a shared [`Challenges`], and runs [`Acme::renew_due`]
//! periodically.

mod acme;
mod cert_store;
mod challenge;
mod error;
mod host_name;
mod resolver;
mod validity;

pub use acme::{Acme, AcmeConfig, DEFAULT_RENEW_BEFORE};
pub use cert_store::{CertInfo, CertSource, CertStore};
pub use challenge::{Challenges, CHALLENGE_PATH_PREFIX};
pub use error::TlsError;
pub use resolver::server_config;
