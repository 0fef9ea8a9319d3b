//! TLS for `berth proxy run`: certificates from files (`--cert`) and from ACME
//! (`--acme-directory`, http-01 answered by the proxy's plain listener).

use super::CliError;
use crate::args::ProxyRunArgs;
use berth_proxy::tls::{Acme, AcmeConfig, CertStore, Challenges};
use berth_proxy::{Plugins, ProxyConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often certificates are checked for renewal; each is renewed 30 days before expiry.
const RENEW_CHECK: Duration = Duration::from_secs(12 * 3600);
/// After a failed issuance, the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(60);

pub async fn plugins(config: &ProxyConfig, r: &ProxyRunArgs) -> Result<Plugins, CliError> {
    let wants_tls =
        !config.tls_listen.is_empty() || !r.cert.is_empty() || r.acme_directory.is_some();
    if !wants_tls {
        return Ok(Plugins::default());
    }
    if config.tls_listen.is_empty() {
        return Err(CliError::Usage(
            "--cert and --acme-directory need a --tls-listen address to serve the certificates on"
                .into(),
        ));
    }
    let store =
        Arc::new(CertStore::open(&config.cert_dir).map_err(|e| CliError::Usage(e.to_string()))?);
    for spec in &r.cert {
        let (host, cert, key) = spec
            .split_once('=')
            .and_then(|(h, files)| files.split_once(':').map(|(c, k)| (h, c, k)))
            .ok_or_else(|| {
                CliError::Usage(format!("--cert `{spec}` is not HOST=CERT.pem:KEY.pem"))
            })?;
        store
            .add_files(host, &PathBuf::from(cert), &PathBuf::from(key))
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    let challenges = Challenges::default();
    if let Some(directory) = &r.acme_directory {
        if r.acme_hosts.is_empty() {
            return Err(CliError::Usage(
                "--acme-directory needs at least one --acme-host".into(),
            ));
        }
        if config.listen.is_empty() {
            return Err(CliError::Usage(
                "ACME http-01 needs a plain --listen address (port 80 as the CA sees it)".into(),
            ));
        }
        let mut acme_config = AcmeConfig::new(directory.clone(), config.cert_dir.join("acme"));
        acme_config.contact_email = r.acme_email.clone();
        acme_config.extra_root_pem = r.acme_ca.clone();
        let acme = Acme::new(acme_config, challenges.clone(), store.clone())
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let hosts = r.acme_hosts.clone();
        tokio::spawn(async move {
            // Give the listeners a moment to open; the CA connects back to them.
            tokio::time::sleep(Duration::from_millis(500)).await;
            loop {
                let wait = match acme.renew_due(&hosts).await {
                    Ok(renewed) => {
                        if !renewed.is_empty() {
                            tracing::info!(hosts = ?renewed, "certificates issued");
                        }
                        RENEW_CHECK
                    }
                    Err(e) => {
                        tracing::error!("ACME: {e}");
                        RETRY_AFTER
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
    Ok(Plugins {
        tls: Some(berth_proxy::tls::server_config(&store)),
        challenges: Some(Arc::new(challenges)),
    })
}
