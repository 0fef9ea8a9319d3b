//! Certificates from an ACME CA (Let's Encrypt, or pebble in tests) through http-01
//! challenges that the proxy's plain-HTTP listener answers from [`Challenges`].

use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, Order, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use super::{host_name, CertStore, Challenges, TlsError};
use berth_base::atomic::write_mode as write_atomic;

/// Renew certificates this long before they expire, as Let's Encrypt recommends for its
/// 90-day certificates.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Limit for one request to the ACME server; the HTTP client has none of its own.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit for the CA to validate all challenges of an order.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(90);
/// Limit for the CA to sign the certificate after finalization.
const SIGNING_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to obtain certificates.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The ACME directory, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory_url: String,
    /// Contact address the CA sends expiry and policy mail to.
    pub contact_email: Option<String>,
    /// Directory holding the account credentials (created with mode 0700).
    pub account_dir: PathBuf,
    /// A PEM CA certificate to trust for the ACME server's own HTTPS endpoint, for test CAs
    /// such as pebble. When set, it is the only root trusted for talking to the CA; when
    /// unset, the platform's roots are.
    pub extra_root_pem: Option<PathBuf>,
    /// Renew a certificate when it expires within this period.
    pub renew_before: Duration,
}

impl AcmeConfig {
    /// A configuration with no contact address, the platform roots and
    /// [`DEFAULT_RENEW_BEFORE`].
    pub fn new(directory_url: impl Into<String>, account_dir: impl Into<PathBuf>) -> Self {
        AcmeConfig {
            directory_url: directory_url.into(),
            contact_email: None,
            account_dir: account_dir.into(),
            extra_root_pem: None,
            renew_before: DEFAULT_RENEW_BEFORE,
        }
    }
}

/// The account file's contents. The directory URL is kept next to the credentials so that a
/// file can be matched to its CA when reading it by eye.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory_url: String,
    credentials: AccountCredentials,
}

/// An ACME client bound to one account, issuing into a [`CertStore`].
pub struct Acme {
    account: Account,
    config: AcmeConfig,
    account_file: PathBuf,
    challenges: Challenges,
    store: Arc<CertStore>,
    /// One issuance at a time: concurrent orders for the same host would race on the store
    /// and double the load on the CA's rate limits.
    issuing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("directory_url", &self.config.directory_url)
            .field("account_file", &self.account_file)
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// Loads the account for `cfg.directory_url` from `cfg.account_dir`, or registers a new
    /// one and stores its credentials there (atomically, mode 0600) for the next start.
    pub async fn new(
        cfg: AcmeConfig,
        challenges: Challenges,
        store: Arc<CertStore>,
    ) -> Result<Acme, TlsError> {
        // instant-acme builds its HTTPS client from the process-wide rustls provider. Install
        // ring explicitly so that this keeps working should another crate in the binary
        // enable a second provider; an error only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.account_dir)
            .map_err(|source| TlsError::CreateDir {
                path: cfg.account_dir.clone(),
                source,
            })?;
        let account_file = cfg.account_dir.join(account_file_name(&cfg.directory_url));

        let existing =
            match std::fs::read(&account_file) {
                Ok(bytes) => Some(serde_json::from_slice::<StoredAccount>(&bytes).map_err(
                    |e| TlsError::AccountFile {
                        path: account_file.clone(),
                        reason: e.to_string(),
                    },
                )?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(TlsError::ReadFile {
                        path: account_file,
                        source,
                    })
                }
            };

        let registration_err = |source| TlsError::AccountRegistration {
            directory_url: cfg.directory_url.clone(),
            source,
        };
        let account = match existing {
            Some(stored) => {
                // Restoring fetches the directory, so it is a request like any other.
                let restore = builder(&cfg)?.from_credentials(stored.credentials);
                with_timeout(REQUEST_TIMEOUT, restore)
                    .await
                    .ok_or_else(|| registration_err(instant_acme::Error::Timeout(None)))?
                    .map_err(registration_err)?
            }
            None => {
                let contact = cfg.contact_email.as_ref().map(|e| format!("mailto:{e}"));
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new_account = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let create = builder(&cfg)?.create(&new_account, cfg.directory_url.clone(), None);
                let (account, credentials) = with_timeout(REQUEST_TIMEOUT, create)
                    .await
                    .ok_or_else(|| registration_err(instant_acme::Error::Timeout(None)))?
                    .map_err(registration_err)?;
                let stored = StoredAccount {
                    directory_url: cfg.directory_url.clone(),
                    credentials,
                };
                let json =
                    serde_json::to_vec_pretty(&stored).map_err(|e| TlsError::AccountFile {
                        path: account_file.clone(),
                        reason: e.to_string(),
                    })?;
                write_atomic(&account_file, &json, 0o600).map_err(|source| {
                    TlsError::WriteFile {
                        path: account_file.clone(),
                        source,
                    }
                })?;
                tracing::info!(directory_url = %cfg.directory_url, account = account.id(), "registered a new ACME account");
                account
            }
        };

        Ok(Acme {
            account,
            config: cfg,
            account_file,
            challenges,
            store,
            issuing: tokio::sync::Mutex::new(()),
        })
    }

    /// The file the account credentials are kept in.
    pub fn account_file(&self) -> &Path {
        &self.account_file
    }

    /// The account's URL at the CA.
    pub fn account_id(&self) -> &str {
        self.account.id()
    }

    /// Obtains one certificate covering all of `hosts` and stores it for each of them.
    ///
    /// Publishes the http-01 key authorizations in the shared [`Challenges`] (and withdraws
    /// them afterwards, also on failure), waits for the CA to validate them, finalizes with a
    /// fresh ECDSA P-256 key and signing request, and waits for the signed chain. Every wait
    /// is bounded.
    pub async fn issue(&self, hosts: &[String]) -> Result<(), TlsError> {
        let hosts = acme_hosts(hosts)?;
        let label = hosts.join(", ");
        let _issuing = self.issuing.lock().await;

        let identifiers: Vec<Identifier> =
            hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
        let mut order = request(
            "order",
            &label,
            self.account.new_order(&NewOrder::new(&identifiers)),
        )
        .await?;

        // Dropping the guard withdraws the tokens, whichever way this function returns.
        let mut published = PublishedTokens {
            challenges: self.challenges.clone(),
            tokens: Vec::new(),
        };
        self.publish_challenges(&mut order, &label, &mut published)
            .await?;

        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(200))
            .backoff(1.5)
            .timeout(VALIDATION_TIMEOUT);
        let status = poll(
            "validation",
            &label,
            VALIDATION_TIMEOUT,
            order.poll_ready(&retry),
        )
        .await;
        match status {
            Ok(OrderStatus::Ready) => {}
            Ok(_) | Err(TlsError::Acme { .. }) => {
                return Err(validation_failure(&mut order, &label, status.err()).await)
            }
            Err(other) => return Err(other),
        }
        drop(published);

        let csr_err = |e: rcgen::Error| TlsError::Csr {
            hosts: label.clone(),
            reason: e.to_string(),
        };
        let key = rcgen::KeyPair::generate().map_err(csr_err)?;
        let mut params = rcgen::CertificateParams::new(hosts.clone()).map_err(csr_err)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key).map_err(csr_err)?;
        request("finalization", &label, order.finalize_csr(csr.der())).await?;

        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(200))
            .backoff(1.5)
            .timeout(SIGNING_TIMEOUT);
        let chain = poll(
            "certificate download",
            &label,
            SIGNING_TIMEOUT,
            order.poll_certificate(&retry),
        )
        .await?;

        let key_pem = key.serialize_pem();
        for host in &hosts {
            self.store
                .store(host, &chain, &key_pem)
                .map_err(|e| match e {
                    // A write error is the operator's to fix and says so; anything else means
                    // the CA sent something unusable.
                    TlsError::WriteFile { .. } => e,
                    other => TlsError::IssuedCertificate {
                        host: host.clone(),
                        reason: other.to_string(),
                    },
                })?;
        }
        tracing::info!(hosts = %label, "issued a certificate");
        Ok(())
    }

    /// Issues a certificate for each of `hosts` that has none or whose certificate expires
    /// within `renew_before`, one order per host so that one failing host does not hold up
    /// the others. Returns the hosts renewed; if any failed, the error lists both.
    pub async fn renew_due(&self, hosts: &[String]) -> Result<Vec<String>, TlsError> {
        let mut renewed = Vec::new();
        let mut failed = Vec::new();
        for host in hosts {
            if !self.store.expires_within(host, self.config.renew_before) {
                continue;
            }
            match self.issue(std::slice::from_ref(host)).await {
                Ok(()) => renewed.push(host.clone()),
                Err(error) => {
                    tracing::warn!(%host, %error, "certificate renewal failed");
                    failed.push((host.clone(), error.to_string()));
                }
            }
        }
        if failed.is_empty() {
            Ok(renewed)
        } else {
            Err(TlsError::Renewal { failed, renewed })
        }
    }

    /// Publishes the key authorization of every pending authorization's http-01 challenge
    /// and tells the CA to validate it.
    async fn publish_challenges(
        &self,
        order: &mut Order,
        label: &str,
        published: &mut PublishedTokens,
    ) -> Result<(), TlsError> {
        let mut authorizations = order.authorizations();
        loop {
            let Some(next) = with_timeout(REQUEST_TIMEOUT, authorizations.next())
                .await
                .ok_or_else(|| timeout("authorization", label, REQUEST_TIMEOUT))?
            else {
                return Ok(());
            };
            let mut authorization = next.map_err(|source| TlsError::Acme {
                step: "authorization",
                hosts: label.to_owned(),
                source,
            })?;
            let host = authorization.identifier().to_string();
            match authorization.status {
                // The CA remembers recent validations; nothing to prove again.
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(TlsError::Validation {
                        host,
                        detail: format!("the authorization is {other:?}").to_lowercase(),
                    })
                }
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| TlsError::NoHttp01 { host: host.clone() })?;
            let key_authorization = challenge.key_authorization();
            published.insert(
                challenge.token.clone(),
                key_authorization.as_str().to_owned(),
            );
            request("challenge", &host, challenge.set_ready()).await?;
        }
    }
}

/// The error for an order whose validation failed: the first challenge error the CA
/// reports, or `fallback`'s text.
async fn validation_failure(
    order: &mut Order,
    label: &str,
    fallback: Option<TlsError>,
) -> TlsError {
    let fallback_detail = match &fallback {
        Some(TlsError::Acme { source, .. }) => source.to_string(),
        _ => "the order became invalid".to_owned(),
    };
    // The order state was refreshed while polling, so the authorizations are fetched anew.
    let mut authorizations = order.authorizations();
    while let Some(Some(Ok(authorization))) =
        with_timeout(REQUEST_TIMEOUT, authorizations.next()).await
    {
        if authorization.status == AuthorizationStatus::Valid {
            continue;
        }
        let host = authorization.identifier().to_string();
        let detail = authorization
            .challenges
            .iter()
            .find_map(|c| c.error.as_ref())
            .map(|problem| {
                problem
                    .detail
                    .clone()
                    .unwrap_or_else(|| problem.to_string())
            })
            .unwrap_or_else(|| fallback_detail.clone());
        return TlsError::Validation { host, detail };
    }
    TlsError::Validation {
        host: label.to_owned(),
        detail: fallback_detail,
    }
}

/// Withdraws the tokens it holds from [`Challenges`] when dropped.
struct PublishedTokens {
    challenges: Challenges,
    tokens: Vec<String>,
}

impl PublishedTokens {
    fn insert(&mut self, token: String, key_authorization: String) {
        self.challenges.insert(token.clone(), key_authorization);
        self.tokens.push(token);
    }
}

impl Drop for PublishedTokens {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.challenges.remove(token);
        }
    }
}

/// Normalised, deduplicated names to order; wildcards cannot be proven with http-01.
fn acme_hosts(hosts: &[String]) -> Result<Vec<String>, TlsError> {
    let mut names = Vec::with_capacity(hosts.len());
    for host in hosts {
        let name = host_name::normalize(host)?;
        if name.starts_with("*.") {
            return Err(TlsError::InvalidHost {
                host: host.clone(),
                reason: "wildcard certificates need a dns-01 challenge, which berth does not do; supply the certificate as files".to_owned(),
            });
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(TlsError::InvalidHost {
            host: String::new(),
            reason: "no host names given; pass at least one".to_owned(),
        });
    }
    Ok(names)
}

/// The HTTP client for the CA: platform roots, or only the configured test root.
fn builder(cfg: &AcmeConfig) -> Result<instant_acme::AccountBuilder, TlsError> {
    let registration_err = |source| TlsError::AccountRegistration {
        directory_url: cfg.directory_url.clone(),
        source,
    };
    match &cfg.extra_root_pem {
        None => Account::builder().map_err(registration_err),
        Some(path) => {
            // Check the file here: instant-acme's own error does not name it.
            let pem = std::fs::read(path).map_err(|source| TlsError::ReadFile {
                path: path.clone(),
                source,
            })?;
            let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(pem.as_slice()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::AcmeRoot {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsError::AcmeRoot {
                    path: path.clone(),
                    reason: "it contains no -----BEGIN CERTIFICATE----- block".to_owned(),
                });
            }
            Account::builder_with_root(path).map_err(|e| TlsError::AcmeRoot {
                path: path.clone(),
                reason: e.to_string(),
            })
        }
    }
}

/// `account-<directory url with punctuation as _>.json`: one account per CA, so that
/// switching between staging and production does not reuse an account the other CA does
/// not know.
fn account_file_name(directory_url: &str) -> String {
    let without_scheme = directory_url
        .split_once("://")
        .map_or(directory_url, |(_, rest)| rest);
    let name: String = without_scheme
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("account-{name}.json")
}

async fn with_timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(limit, future).await.ok()
}

fn timeout(step: &'static str, hosts: &str, after: Duration) -> TlsError {
    TlsError::Timeout {
        step,
        hosts: hosts.to_owned(),
        after,
    }
}

/// One request to the CA, bounded by [`REQUEST_TIMEOUT`].
async fn request<T>(
    step: &'static str,
    hosts: &str,
    future: impl Future<Output = Result<T, instant_acme::Error>>,
) -> Result<T, TlsError> {
    bounded(step, hosts, REQUEST_TIMEOUT, REQUEST_TIMEOUT, future).await
}

/// A polling loop whose retry policy gives up after `limit`. The hard limit adds one
/// request's time, because the request in flight when the policy's limit passes may hang.
async fn poll<T>(
    step: &'static str,
    hosts: &str,
    limit: Duration,
    future: impl Future<Output = Result<T, instant_acme::Error>>,
) -> Result<T, TlsError> {
    bounded(step, hosts, limit, limit + REQUEST_TIMEOUT, future).await
}

async fn bounded<T>(
    step: &'static str,
    hosts: &str,
    limit: Duration,
    hard_limit: Duration,
    future: impl Future<Output = Result<T, instant_acme::Error>>,
) -> Result<T, TlsError> {
    match with_timeout(hard_limit, future).await {
        None | Some(Err(instant_acme::Error::Timeout(_))) => Err(timeout(step, hosts, limit)),
        Some(Err(source)) => Err(TlsError::Acme {
            step,
            hosts: hosts.to_owned(),
            source,
        }),
        Some(Ok(value)) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_file_names() {
        assert_eq!(
            account_file_name("https://acme-v02.api.letsencrypt.org/directory"),
            "account-acme-v02.api.letsencrypt.org_directory.json"
        );
        assert_eq!(
            account_file_name("https://127.0.0.1:14000/dir"),
            "account-127.0.0.1_14000_dir.json"
        );
    }

    #[test]
    fn wildcards_and_empty_lists_are_refused() {
        let err = acme_hosts(&["*.example.com".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("dns-01"), "{err}");
        assert!(acme_hosts(&[]).is_err());
        assert_eq!(
            acme_hosts(&["A.test".to_owned(), "a.test".to_owned()]).ok(),
            Some(vec!["a.test".to_owned()])
        );
    }
}
