//! TLS for `berth proxy run`: certificates from files and ACME.

use super::CliError;
use crate::args::ProxyRunArgs;
use berth_proxy::{Plugins, ProxyConfig};

pub async fn plugins(config: &ProxyConfig, r: &ProxyRunArgs) -> Result<Plugins, CliError> {
    if !config.tls_listen.is_empty() || !r.cert.is_empty() || r.acme_directory.is_some() {
        return Err(CliError::Usage(
            "TLS options need the TLS module, not merged yet".into(),
        ));
    }
    Ok(Plugins::default())
}
