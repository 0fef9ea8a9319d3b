//! SNI certificate selection and the rustls server configuration built on it.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::cert_store::Shared;
use super::{host_name, CertStore};

/// Picks a certificate by SNI from the live state of a [`CertStore`].
#[derive(Debug)]
pub(crate) struct SniResolver {
    shared: Arc<Shared>,
}

impl SniResolver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SniResolver { shared }
    }

    /// The certificate for `server_name`: exact match, then the wildcard one label up, then
    /// the default certificate.
    pub(crate) fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let certs = self.shared.certs.load();
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(entry) = certs.get(&name) {
                return Some(Arc::clone(&entry.key));
            }
            if let Some(entry) = host_name::wildcard_for(&name).and_then(|w| certs.get(&w)) {
                return Some(Arc::clone(&entry.key));
            }
        }
        let default = self.shared.default_host.load();
        let entry = certs.get(default.as_deref()?.as_str())?;
        Some(Arc::clone(&entry.key))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = self.lookup(client_hello.server_name());
        if found.is_none() {
            // Returning `None` aborts the handshake; say why, since the client only sees an
            // alert.
            tracing::debug!(
                server_name = client_hello.server_name().unwrap_or("<none>"),
                "no certificate for this server name"
            );
        }
        found
    }
}

/// The rustls server configuration for the proxy's TLS listener: certificates from `store`
/// chosen by SNI, ring as the crypto provider, and ALPN offering HTTP/2 before HTTP/1.1.
pub fn server_config(store: &CertStore) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    // The ring provider supports both TLS 1.2 and 1.3, so choosing its default versions
    // cannot fail; this is a constant property of the build, not a runtime condition.
    .expect("the ring provider supports the default TLS versions")
    .with_no_client_auth()
    .with_cert_resolver(store.resolver());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
