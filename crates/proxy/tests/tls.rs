//! TLS termination and ACME issuance against a real pebble over real loopback sockets.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_proxy::tls::{server_config, Acme, CertSource, CertStore, Challenges};
use hyper::Version;

use common::pebble::{Pebble, TestCa};
use common::servers::{challenge_server, https_get, tls_server};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

const DAY: u64 = 24 * 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_issues_certificate_from_pebble() {
    let challenges = Challenges::default();
    let http01 = challenge_server(challenges.clone()).await;
    let pebble = Pebble::start(http01.addr.port());
    let tmp = tempfile::tempdir().expect("tempdir");
    let cert_dir = tmp.path().join("certs");
    let account_dir = tmp.path().join("acme");
    let store = Arc::new(CertStore::open(&cert_dir).expect("open store"));

    let acme = Acme::new(
        pebble.acme_config(&account_dir),
        challenges.clone(),
        Arc::clone(&store),
    )
    .await
    .expect("register an account with pebble");
    let account_file = acme.account_file().to_owned();
    let account_bytes = fs::read(&account_file).expect("account file written");
    let account_mode = fs::metadata(&account_file)
        .expect("account file")
        .permissions()
        .mode();
    assert_eq!(
        account_mode & 0o777,
        0o600,
        "account credentials are private"
    );

    let started = Instant::now();
    acme.issue(&["shop.test".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("issue shop.test: {e}\n{}", pebble.logs()));
    eprintln!("issuance took {:?}", started.elapsed());
    assert!(challenges.is_empty(), "tokens are withdrawn after issuance");

    let key_path = cert_dir.join("shop.test.key");
    assert!(cert_dir.join("shop.test.crt").is_file());
    let key_mode = fs::metadata(&key_path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    let hosts = store.hosts();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(hosts[0].host, "shop.test");
    assert_eq!(hosts[0].source, CertSource::Acme);
    assert!(hosts[0].not_after > now() + 30 * DAY as i64, "{hosts:?}");
    assert!(!store.expires_within("shop.test", Duration::from_secs(30 * DAY)));

    let reopened = CertStore::open(&cert_dir).expect("reopen store");
    assert_eq!(
        reopened.hosts(),
        hosts,
        "the certificate survives a restart"
    );

    // A second start reuses the stored account instead of registering another one.
    let again = Acme::new(
        pebble.acme_config(&account_dir),
        challenges.clone(),
        Arc::new(reopened),
    )
    .await
    .expect("load the stored account");
    assert_eq!(again.account_file(), account_file);
    assert_eq!(again.account_id(), acme.account_id());
    assert_eq!(
        fs::read(&account_file).expect("account file"),
        account_bytes,
        "the account file is unchanged"
    );
    assert_eq!(
        fs::read_dir(&account_dir).expect("account dir").count(),
        1,
        "no second account file"
    );
    // The reused account can still order: a fresh certificate is not due for renewal.
    assert_eq!(
        again
            .renew_due(&["shop.test".to_owned()])
            .await
            .expect("renew_due"),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_h2_with_sni() {
    let challenges = Challenges::default();
    let http01 = challenge_server(challenges.clone()).await;
    let pebble = Pebble::start(http01.addr.port());
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CertStore::open(&tmp.path().join("certs")).expect("open store"));

    // The listener starts before any certificate exists: certificates stored later must be
    // served without rebuilding the configuration.
    let server = tls_server(server_config(&store)).await;

    let acme = Acme::new(
        pebble.acme_config(&tmp.path().join("acme")),
        challenges,
        Arc::clone(&store),
    )
    .await
    .expect("register an account with pebble");
    acme.issue(&["shop.test".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("issue shop.test: {e}\n{}", pebble.logs()));
    let pebble_root = pebble.issuing_root_pem().await;

    let response = https_get(server.addr, "shop.test", &pebble_root, b"h2", "/")
        .await
        .expect("h2 request to shop.test");
    assert_eq!(response.version, Version::HTTP_2);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "HTTP/2.0 shop.test");

    let response = https_get(server.addr, "shop.test", &pebble_root, b"http/1.1", "/")
        .await
        .expect("http/1.1 request to shop.test");
    assert_eq!(response.version, Version::HTTP_11);
    assert_eq!(response.status, 200);

    // No certificate and no default: the handshake fails.
    let err = https_get(server.addr, "other.test", &pebble_root, b"h2", "/")
        .await
        .expect_err("a name without a certificate must not complete a handshake");
    assert!(err.starts_with("tls handshake:"), "{err}");

    // A wildcard from user files serves names one label below it, and only those.
    let ca = TestCa::new("berth test CA");
    let (cert_pem, key_pem) = ca.issue(&["*.example.test"]);
    let cert_path = tmp.path().join("wildcard.crt");
    let key_path = tmp.path().join("wildcard.key");
    fs::write(&cert_path, cert_pem).expect("write wildcard cert");
    fs::write(&key_path, key_pem).expect("write wildcard key");
    store
        .add_files("*.example.test", &cert_path, &key_path)
        .expect("add wildcard files");

    let response = https_get(server.addr, "a.example.test", &ca.pem(), b"h2", "/")
        .await
        .expect("h2 request to a.example.test");
    assert_eq!(response.version, Version::HTTP_2);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "HTTP/2.0 a.example.test");

    let err = https_get(server.addr, "b.a.example.test", &ca.pem(), b"h2", "/")
        .await
        .expect_err("a wildcard covers a single label");
    assert!(err.starts_with("tls handshake:"), "{err}");

    // With a default configured, unknown names (and clients without SNI) get it.
    store.set_default(Some("shop.test")).expect("set default");
    let response = https_get(server.addr, "other.test", &pebble_root, b"h2", "/").await;
    // The certificate does not name other.test, so a verifying client still refuses it,
    // but now because of the name, after the server answered with shop.test's certificate.
    let err = response.expect_err("the default certificate does not name other.test");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for name"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_due_replaces_expiring_certificates_only() {
    let challenges = Challenges::default();
    let http01 = challenge_server(challenges.clone()).await;
    let pebble = Pebble::start(http01.addr.port());
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CertStore::open(&tmp.path().join("certs")).expect("open store"));

    let self_signed = |host: &str, valid_for: Duration| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).expect("params");
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + valid_for).into();
        let cert = params.self_signed(&key).expect("certificate");
        store
            .store(host, &cert.pem(), &key.serialize_pem())
            .expect("store self-signed");
    };
    self_signed("expiring.test", Duration::from_secs(2 * DAY));
    self_signed("fresh.test", Duration::from_secs(300 * DAY));
    let before = store.hosts();

    let acme = Acme::new(
        pebble.acme_config(&tmp.path().join("acme")),
        challenges,
        Arc::clone(&store),
    )
    .await
    .expect("register an account with pebble");
    let renewed = acme
        .renew_due(&["expiring.test".to_owned(), "fresh.test".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("renew_due: {e}\n{}", pebble.logs()));
    assert_eq!(renewed, ["expiring.test"]);

    let after = store.hosts();
    let find = |infos: &[berth_proxy::tls::CertInfo], host: &str| {
        infos
            .iter()
            .find(|i| i.host == host)
            .unwrap_or_else(|| panic!("{host} missing from {infos:?}"))
            .not_after
    };
    assert!(
        find(&after, "expiring.test") > now() + 30 * DAY as i64,
        "renewed certificate is fresh: {after:?}"
    );
    assert_eq!(find(&after, "fresh.test"), find(&before, "fresh.test"));
    assert!(!store.expires_within("expiring.test", Duration::from_secs(30 * DAY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_names_the_host_and_withdraws_tokens() {
    let challenges = Challenges::default();
    // Pebble validates against a port where nothing answers.
    let pebble = Pebble::start(common::pebble::free_port());
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CertStore::open(&tmp.path().join("certs")).expect("open store"));
    let acme = Acme::new(
        pebble.acme_config(&tmp.path().join("acme")),
        challenges.clone(),
        Arc::clone(&store),
    )
    .await
    .expect("register an account with pebble");

    let err = acme
        .issue(&["down.test".to_owned()])
        .await
        .expect_err("validation cannot succeed");
    let text = err.to_string();
    eprintln!("validation error: {text}");
    assert!(
        text.starts_with("the ACME server could not validate down.test: "),
        "{text}"
    );
    assert!(text.contains("port 80 reaches the proxy"), "{text}");
    assert!(
        challenges.is_empty(),
        "tokens are withdrawn after a failure"
    );
    assert!(store.hosts().is_empty());

    let err = acme
        .renew_due(&["down.test".to_owned()])
        .await
        .expect_err("renewal cannot succeed");
    assert!(
        err.to_string().starts_with(
            "renewal failed for down.test (the ACME server could not validate down.test"
        ),
        "{err}"
    );
}
