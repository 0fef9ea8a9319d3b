//! Certificates by host name: on disk (ACME-issued ones) and in memory (all of them).
//!
//! Layout of the store directory, which is created with mode 0700:
//!
//! ```text
//! shop.example.com.crt   certificate chain, PEM, server certificate first
//! shop.example.com.key   private key, PEM, mode 0600
//! _.example.com.crt      the wildcard `*.example.com` (`*` is spelled `_` in file names)
//! ```
//!
//! Certificates given as user files (`add_files`) are only held in memory: the user's files
//! stay the source of truth and are read again on the next start.

use std::collections::HashMap;
use std::fs::{self, DirBuilder};
use std::io::BufReader;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;

use super::resolver::SniResolver;
use super::{host_name, validity, TlsError};
use berth_base::atomic::write_mode as write_atomic;

const CERT_EXTENSION: &str = "crt";
const KEY_EXTENSION: &str = "key";

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertSource {
    /// Certificate and key files supplied by the user.
    File,
    /// Issued by an ACME CA and kept in the store directory.
    Acme,
}

impl CertSource {
    /// `"file"` or `"acme"`, as in the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            CertSource::File => "file",
            CertSource::Acme => "acme",
        }
    }
}

/// What the admin API shows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// The host name the certificate is served for, possibly a wildcard such as
    /// `*.example.com`.
    pub host: String,
    /// Expiry of the server certificate, in unix seconds.
    pub not_after: i64,
    /// Where the certificate came from.
    pub source: CertSource,
}

/// One loaded certificate.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: Arc<CertifiedKey>,
    not_after: i64,
    source: CertSource,
}

/// State shared between the store and the resolvers handed out to TLS listeners, so that a
/// certificate stored later is served by listeners that already run.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    pub(crate) certs: ArcSwap<HashMap<String, Arc<Entry>>>,
    pub(crate) default_host: ArcSwapOption<String>,
    /// Serialises writers so that the key and chain files of one host always come from the
    /// same `store` call.
    write_lock: Mutex<()>,
}

/// Certificates on disk and in memory, by host name.
///
/// Cheap to share behind an `Arc`; every method takes `&self`. Reads (handshakes) never
/// block on writes.
#[derive(Debug)]
pub struct CertStore {
    shared: Arc<Shared>,
}

impl CertStore {
    /// Opens (creating it with mode 0700 if needed) the store directory `dir` and loads every
    /// certificate stored there.
    ///
    /// A stored certificate that cannot be loaded is skipped with a warning rather than
    /// failing the proxy's start: its host then counts as missing, so ACME issues it again.
    pub fn open(dir: &Path) -> Result<CertStore, TlsError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| TlsError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        // `recursive(true)` leaves an existing directory's mode alone; the keys inside must
        // not be readable by other users, whoever created the directory.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            TlsError::CreateDir {
                path: dir.to_owned(),
                source,
            }
        })?;
        remove_leftovers(dir);

        let mut certs = HashMap::new();
        let entries = fs::read_dir(dir).map_err(|source| TlsError::ReadFile {
            path: dir.to_owned(),
            source,
        })?;
        for dir_entry in entries {
            let dir_entry = dir_entry.map_err(|source| TlsError::ReadFile {
                path: dir.to_owned(),
                source,
            })?;
            let cert_path = dir_entry.path();
            if cert_path.extension().and_then(|e| e.to_str()) != Some(CERT_EXTENSION) {
                continue;
            }
            let Some(host) = cert_path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(host_name::from_file_stem)
            else {
                tracing::warn!(path = %cert_path.display(), "ignoring a file whose name is not a host name");
                continue;
            };
            let key_path = cert_path.with_extension(KEY_EXTENSION);
            match load_files(&cert_path, &key_path, CertSource::Acme) {
                Ok(entry) => {
                    certs.insert(host, Arc::new(entry));
                }
                Err(error) => {
                    tracing::warn!(%host, %error, "skipping a stored certificate; it will be issued again");
                }
            }
        }

        Ok(CertStore {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                certs: ArcSwap::from_pointee(certs),
                default_host: ArcSwapOption::empty(),
                write_lock: Mutex::new(()),
            }),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Serves the user-supplied certificate chain `cert_pem` with private key `key_pem` for
    /// `host` (which may be a wildcard such as `*.example.com`).
    ///
    /// The files are checked now (PEM syntax, a certificate present, a usable key that
    /// belongs to the certificate) so that mistakes show up at deploy time with the file
    /// named, not as failed handshakes later.
    pub fn add_files(&self, host: &str, cert_pem: &Path, key_pem: &Path) -> Result<(), TlsError> {
        let host = host_name::normalize(host)?;
        let entry = load_files(cert_pem, key_pem, CertSource::File)?;
        self.insert(host, entry);
        Ok(())
    }

    /// Stores an issued certificate chain and its private key for `host`, on disk and in
    /// memory; TLS listeners serve it from their next handshake on.
    ///
    /// Each file is replaced atomically (temp file in the same directory, fsync, rename,
    /// fsync of the directory). The key is written first: should the machine crash between
    /// the two renames, the old chain no longer matches the new key, the pair is skipped on
    /// the next start and the host is issued again, which is better than serving a stale
    /// pair silently.
    pub fn store(&self, host: &str, chain_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let host = host_name::normalize(host)?;
        let stem = host_name::file_stem(&host);
        let cert_path = self.shared.dir.join(format!("{stem}.{CERT_EXTENSION}"));
        let key_path = self.shared.dir.join(format!("{stem}.{KEY_EXTENSION}"));

        // Check before writing so that nothing unusable ever reaches the disk.
        let chain = parse_certs(chain_pem.as_bytes(), &cert_path)?;
        let key = parse_key(key_pem.as_bytes(), &key_path)?;
        let entry = certified(chain, key, &cert_path, &key_path, CertSource::Acme)?;

        {
            let _guard = self
                .shared
                .write_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            write_atomic(&key_path, key_pem.as_bytes(), 0o600).map_err(|source| {
                TlsError::WriteFile {
                    path: key_path.clone(),
                    source,
                }
            })?;
            write_atomic(&cert_path, chain_pem.as_bytes(), 0o644).map_err(|source| {
                TlsError::WriteFile {
                    path: cert_path.clone(),
                    source,
                }
            })?;
        }
        self.insert(host, entry);
        Ok(())
    }

    /// Every certificate held, sorted by host name.
    pub fn hosts(&self) -> Vec<CertInfo> {
        let certs = self.shared.certs.load();
        let mut infos: Vec<CertInfo> = certs
            .iter()
            .map(|(host, entry)| CertInfo {
                host: host.clone(),
                not_after: entry.not_after,
                source: entry.source,
            })
            .collect();
        infos.sort_by(|a, b| a.host.cmp(&b.host));
        infos
    }

    /// Whether `host` has no certificate, or one that expires within `within` from now.
    pub fn expires_within(&self, host: &str, within: Duration) -> bool {
        let Ok(host) = host_name::normalize(host) else {
            return true;
        };
        let certs = self.shared.certs.load();
        let Some(entry) = certs.get(&host) else {
            return true;
        };
        let now = unix_now();
        let within = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
        entry.not_after.saturating_sub(now) <= within
    }

    /// Makes `host`'s certificate the one served when the client's SNI matches no
    /// certificate (or is absent, as when connecting by IP address); `None` turns the default
    /// off so that such handshakes fail. The host's certificate may be added later.
    pub fn set_default(&self, host: Option<&str>) -> Result<(), TlsError> {
        let host = host.map(host_name::normalize).transpose()?;
        self.shared.default_host.store(host.map(Arc::new));
        Ok(())
    }

    /// A certificate resolver for `rustls::ServerConfig` that picks by SNI: the exact host,
    /// then the wildcard one label up, then the default if one is set. It reads the store's
    /// live state, so certificates stored later are served without a restart.
    pub fn resolver(&self) -> Arc<dyn rustls::server::ResolvesServerCert> {
        Arc::new(SniResolver::new(Arc::clone(&self.shared)))
    }

    fn insert(&self, host: String, entry: Entry) {
        let entry = Arc::new(entry);
        self.shared.certs.rcu(|certs| {
            let mut certs = HashMap::clone(certs);
            certs.insert(host.clone(), Arc::clone(&entry));
            certs
        });
    }
}

/// Loads and checks a certificate chain file and its key file.
fn load_files(cert_path: &Path, key_path: &Path, source: CertSource) -> Result<Entry, TlsError> {
    let cert_bytes = read(cert_path)?;
    let key_bytes = read(key_path)?;
    let chain = parse_certs(&cert_bytes, cert_path)?;
    let key = parse_key(&key_bytes, key_path)?;
    certified(chain, key, cert_path, key_path, source)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn parse_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = rustls_pemfile::certs(&mut BufReader::new(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut BufReader::new(pem))
        .map_err(|e| TlsError::BadPem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_owned(),
        })
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
    source: CertSource,
) -> Result<Entry, TlsError> {
    let not_after = chain
        .first()
        .map(|leaf| validity::not_after(leaf))
        .unwrap_or_else(|| Err("the chain is empty".to_owned()))
        .map_err(|reason| TlsError::BadCertificate {
            path: cert_path.to_owned(),
            reason,
        })?;
    let key =
        CertifiedKey::from_der(chain, key, &ring::default_provider()).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            },
            rustls::Error::InvalidCertificate(_) => TlsError::BadCertificate {
                path: cert_path.to_owned(),
                reason: e.to_string(),
            },
            other => TlsError::UnsupportedKey {
                path: key_path.to_owned(),
                reason: other.to_string(),
            },
        })?;
    if not_after < unix_now() {
        tracing::warn!(path = %cert_path.display(), not_after, "certificate has expired; clients will reject it");
    }
    Ok(Entry {
        key: Arc::new(key),
        not_after,
        source,
    })
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Removes the temporary files of `berth_base::atomic` that a crash left behind in `dir`.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if berth_base::atomic::is_leftover(&entry.file_name().to_string_lossy()) {
            if let Err(error) = fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), %error, "could not remove leftover temporary file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(host: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![host.to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).expect("write test file");
        path
    }

    #[test]
    fn store_is_atomic_private_and_reloadable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("certs");
        let store = CertStore::open(&dir).expect("open");
        assert_eq!(
            fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
            0o700
        );

        let (chain, key) = self_signed("shop.test");
        store.store("Shop.Test", &chain, &key).expect("store");
        // Storing again replaces both files in place.
        let (shop_chain, shop_key) = self_signed("shop.test");
        store
            .store("shop.test", &shop_chain, &shop_key)
            .expect("store again");
        let (chain, key) = self_signed("*.example.test");
        store
            .store("*.example.test", &chain, &key)
            .expect("store wildcard");

        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "_.example.test.crt",
                "_.example.test.key",
                "shop.test.crt",
                "shop.test.key"
            ],
            "no temporary files may be left behind"
        );
        let key_mode = fs::metadata(dir.join("shop.test.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(
            fs::read_to_string(dir.join("shop.test.crt")).expect("chain"),
            shop_chain
        );

        let reopened = CertStore::open(&dir).expect("reopen");
        let hosts: Vec<(String, CertSource)> = reopened
            .hosts()
            .into_iter()
            .map(|i| (i.host, i.source))
            .collect();
        assert_eq!(
            hosts,
            [
                ("*.example.test".to_owned(), CertSource::Acme),
                ("shop.test".to_owned(), CertSource::Acme)
            ]
        );
    }

    #[test]
    fn open_removes_leftover_temp_files_and_skips_broken_pairs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write(tmp.path(), ".tmp-1-0-shop.test.key", "half written");
        let (chain, _) = self_signed("broken.test");
        let (_, other_key) = self_signed("broken.test");
        write(tmp.path(), "broken.test.crt", &chain);
        write(tmp.path(), "broken.test.key", &other_key);

        let store = CertStore::open(tmp.path()).expect("open");
        assert!(store.hosts().is_empty());
        assert!(store.expires_within("broken.test", Duration::ZERO));
        assert!(!tmp.path().join(".tmp-1-0-shop.test.key").exists());
    }

    #[test]
    fn store_refuses_garbage_without_writing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = CertStore::open(tmp.path()).expect("open");
        let (chain, _) = self_signed("shop.test");
        let err = store
            .store("shop.test", &chain, "not a key")
            .expect_err("garbage key");
        assert!(err.to_string().contains("contains no private key"), "{err}");
        assert_eq!(fs::read_dir(tmp.path()).expect("dir").count(), 0);
    }

    #[test]
    fn add_files_errors_name_the_file_and_the_problem() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = CertStore::open(&tmp.path().join("store")).expect("open");
        let (chain, key) = self_signed("shop.test");
        let (_, other_key) = self_signed("shop.test");
        let cert_path = write(tmp.path(), "cert.pem", &chain);
        let key_path = write(tmp.path(), "key.pem", &key);
        let other_key_path = write(tmp.path(), "other.pem", &other_key);
        let garbage_path = write(tmp.path(), "garbage.pem", "hello, this is not PEM\n");
        let bad_base64 = write(
            tmp.path(),
            "bad64.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let missing = tmp.path().join("missing.pem");

        let err = store
            .add_files("shop.test", &missing, &key_path)
            .expect_err("missing file");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("could not read {}: ", missing.display())),
            "{text}"
        );
        assert!(text.contains("check that the file exists"), "{text}");

        let err = store
            .add_files("shop.test", &cert_path, &other_key_path)
            .expect_err("mismatched key");
        assert_eq!(
            err.to_string(),
            format!(
                "the private key in {} does not belong to the certificate in {}; pass the key that was generated together with this certificate",
                other_key_path.display(),
                cert_path.display()
            )
        );

        let err = store
            .add_files("shop.test", &garbage_path, &key_path)
            .expect_err("garbage certificate");
        assert_eq!(
            err.to_string(),
            format!(
                "{} contains no certificate; expected at least one -----BEGIN CERTIFICATE----- block, the server certificate first",
                garbage_path.display()
            )
        );

        let err = store
            .add_files("shop.test", &cert_path, &garbage_path)
            .expect_err("garbage key");
        assert!(
            err.to_string().starts_with(&format!(
                "{} contains no private key",
                garbage_path.display()
            )),
            "{err}"
        );

        let err = store
            .add_files("shop.test", &bad_base64, &key_path)
            .expect_err("broken base64");
        assert!(
            err.to_string()
                .starts_with(&format!("{} is not valid PEM: ", bad_base64.display())),
            "{err}"
        );

        let err = store
            .add_files("bad host!", &cert_path, &key_path)
            .expect_err("bad host");
        assert!(
            err.to_string()
                .starts_with("invalid host name \"bad host!\""),
            "{err}"
        );

        assert!(store.hosts().is_empty());
        store
            .add_files("shop.test", &cert_path, &key_path)
            .expect("good files");
        let hosts = store.hosts();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].source, CertSource::File);
        assert_eq!(
            serde_json::to_value(&hosts[0]).expect("json")["source"],
            "file"
        );
        // Files given by the user are not copied into the store directory.
        assert_eq!(fs::read_dir(store.dir()).expect("dir").count(), 0);
    }

    #[test]
    fn expiry_window() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = CertStore::open(tmp.path()).expect("open");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["soon.test".to_owned()]).expect("params");
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + Duration::from_secs(2 * 24 * 3600)).into();
        let cert = params.self_signed(&key).expect("cert");
        store
            .store("soon.test", &cert.pem(), &key.serialize_pem())
            .expect("store");

        assert!(store.expires_within("soon.test", Duration::from_secs(3 * 24 * 3600)));
        assert!(!store.expires_within("soon.test", Duration::from_secs(24 * 3600)));
        assert!(store.expires_within("missing.test", Duration::ZERO));
        let info = &store.hosts()[0];
        assert!((info.not_after - unix_now() - 2 * 24 * 3600).abs() < 10);
    }
}
