//! Errors of the TLS layer: stored and user-supplied certificates, and ACME issuance.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while loading, storing or issuing certificates.
///
/// Messages are lowercase without a trailing period, name the file or host concerned and
/// say what to do, because they end up in front of an operator in `berth` output.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not create certificate directory {path}: {source}; check that its parent exists and is writable")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("could not read {path}: {source}; check that the file exists and is readable")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("could not write {path}: {source}; check free space and permissions of its directory")]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not valid PEM: {reason}; expected a file with -----BEGIN ...----- blocks")]
    BadPem { path: PathBuf, reason: String },

    #[error("{path} contains no certificate; expected at least one -----BEGIN CERTIFICATE----- block, the server certificate first")]
    NoCertificate { path: PathBuf },

    #[error("{path} contains no private key; expected a -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block")]
    NoPrivateKey { path: PathBuf },

    #[error("{path} holds a private key that cannot be used: {reason}; use an RSA, ECDSA P-256/P-384 or Ed25519 key")]
    UnsupportedKey { path: PathBuf, reason: String },

    #[error("the private key in {key} does not belong to the certificate in {cert}; pass the key that was generated together with this certificate")]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    #[error("{path} holds a certificate that cannot be read: {reason}; pass a DER X.509 certificate in PEM form")]
    BadCertificate { path: PathBuf, reason: String },

    #[error("invalid host name {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    #[error(
        "{path} is not a usable ACME account file: {reason}; delete it to register a new account"
    )]
    AccountFile { path: PathBuf, reason: String },

    #[error("could not register an ACME account at {directory_url}: {source}; check the directory URL and that the ACME server is reachable")]
    AccountRegistration {
        directory_url: String,
        source: instant_acme::Error,
    },

    #[error("could not trust the ACME root {path}: {reason}; pass a PEM file holding the CA certificate of the ACME server")]
    AcmeRoot { path: PathBuf, reason: String },

    #[error("acme {step} for {hosts} failed: {source}; check that the ACME server is reachable")]
    Acme {
        step: &'static str,
        hosts: String,
        source: instant_acme::Error,
    },

    #[error("acme {step} for {hosts} did not finish within {after:?}; the ACME server may be overloaded, try again later")]
    Timeout {
        step: &'static str,
        hosts: String,
        after: Duration,
    },

    #[error("the ACME server could not validate {host}: {detail}; check that DNS for {host} points at this machine and that port 80 reaches the proxy")]
    Validation { host: String, detail: String },

    #[error("the ACME server offered no http-01 challenge for {host}; this server only supports http-01, use a certificate file for this host")]
    NoHttp01 { host: String },

    #[error("could not create a key and signing request for {hosts}: {reason}")]
    Csr { hosts: String, reason: String },

    #[error("the certificate issued for {host} is unusable: {reason}; this is a bug in the ACME server, try again later")]
    IssuedCertificate { host: String, reason: String },

    #[error("renewal failed for {}; renewed {}", list_failures(.failed), list_or_none(.renewed))]
    Renewal {
        /// Hosts whose renewal failed, each with the error's message.
        failed: Vec<(String, String)>,
        /// Hosts that were renewed before or after the failures.
        renewed: Vec<String>,
    },
}

fn list_failures(failed: &[(String, String)]) -> String {
    failed
        .iter()
        .map(|(host, error)| format!("{host} ({error})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_or_none(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "none".to_owned()
    } else {
        hosts.join(", ")
    }
}
