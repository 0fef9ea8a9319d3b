//! Runs Debian's `pebble` ACME test server and `pebble-challtestsrv` (as its DNS server) on
//! free loopback ports, with a throwaway CA for pebble's own HTTPS endpoint.
//!
//! Missing binaries fail the test with the package to install: a skipped test would look
//! exactly like a passing one.

use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_proxy::tls::AcmeConfig;
use tempfile::TempDir;

use super::servers::https_get;

/// A running pebble with its DNS server; both are killed on drop.
pub struct Pebble {
    /// Config, certificates and logs of the two processes.
    pub dir: TempDir,
    /// The ACME directory URL.
    pub directory_url: String,
    /// The throwaway CA that signed pebble's HTTPS certificate.
    pub https_ca_pem: PathBuf,
    /// Address of pebble's management interface (roots, intermediates).
    pub management: SocketAddr,
    children: Vec<(&'static str, Child)>,
}

impl Pebble {
    /// Starts pebble validating http-01 challenges against `http01_port` on 127.0.0.1, with
    /// every DNS name resolving to 127.0.0.1.
    pub fn start(http01_port: u16) -> Pebble {
        let dir = tempfile::tempdir().expect("tempdir for pebble");
        let https_ca_pem = dir.path().join("ca.pem");
        let (cert_pem, key_pem, ca_pem) = https_certificate();
        fs::write(&https_ca_pem, ca_pem).expect("write pebble CA");
        fs::write(dir.path().join("cert.pem"), cert_pem).expect("write pebble cert");
        fs::write(dir.path().join("key.pem"), key_pem).expect("write pebble key");

        // Pebble needs a tls-alpn-01 port in its config; nothing listens there because the
        // proxy only does http-01.
        let [acme_port, management_port, dns_port, challtestsrv_management_port, unused_tls_port] =
            free_ports();

        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{acme_port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": dir.path().join("cert.pem"),
                "privateKey": dir.path().join("key.pem"),
                "httpPort": http01_port,
                "tlsPort": unused_tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_path = dir.path().join("pebble-config.json");
        fs::write(&config_path, config.to_string()).expect("write pebble config");

        let mut pebble = Pebble {
            directory_url: format!("https://127.0.0.1:{acme_port}/dir"),
            https_ca_pem,
            management: SocketAddr::from(([127, 0, 0, 1], management_port)),
            children: Vec::new(),
            dir,
        };

        let dns = format!("127.0.0.1:{dns_port}");
        let challtestsrv_management = format!("127.0.0.1:{challtestsrv_management_port}");
        let challtestsrv = pebble.spawn(
            "pebble-challtestsrv",
            Command::new("pebble-challtestsrv").args([
                "-defaultIPv4",
                "127.0.0.1",
                // No AAAA answers: the http-01 responder only listens on IPv4.
                "-defaultIPv6",
                "",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-dns01",
                &dns,
                "-management",
                &challtestsrv_management,
            ]),
        );
        pebble.children.push(("pebble-challtestsrv", challtestsrv));
        pebble.wait_for_port("pebble-challtestsrv", challtestsrv_management_port);

        let server = pebble.spawn(
            "pebble",
            Command::new("pebble")
                .arg("-config")
                .arg(&config_path)
                .args(["-strict=false", "-dnsserver", &dns])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_VA_ALWAYS_VALID", "0")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                // Always validate anew, so that every issuance really answers a challenge.
                .env("PEBBLE_AUTHZREUSE", "0"),
        );
        pebble.children.push(("pebble", server));
        pebble.wait_for_port("pebble", acme_port);
        pebble.wait_for_port("pebble management", management_port);
        pebble
    }

    /// An ACME configuration for this pebble, trusting its HTTPS CA.
    pub fn acme_config(&self, account_dir: &Path) -> AcmeConfig {
        let mut config = AcmeConfig::new(self.directory_url.clone(), account_dir);
        config.contact_email = Some("ops@shop.test".to_owned());
        config.extra_root_pem = Some(self.https_ca_pem.clone());
        config
    }

    /// The root that pebble signs certificates with (it is generated at every start).
    pub async fn issuing_root_pem(&self) -> String {
        let ca = fs::read_to_string(&self.https_ca_pem).expect("read pebble CA");
        let response = https_get(self.management, "localhost", &ca, b"http/1.1", "/roots/0")
            .await
            .expect("fetch pebble's root from its management interface");
        assert_eq!(response.status, 200, "GET /roots/0: {}", response.body);
        response.body
    }

    fn spawn(&self, name: &str, command: &mut Command) -> Child {
        let log = |suffix: &str| {
            fs::File::create(self.dir.path().join(format!("{name}.{suffix}")))
                .expect("create log file")
        };
        command
            .stdin(Stdio::null())
            .stdout(log("stdout"))
            .stderr(log("stderr"));
        match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
                "`{name}` is not installed; the TLS tests need a real ACME server: run `apt-get install pebble`"
            ),
            Err(e) => panic!("could not start `{name}`: {e}"),
        }
    }

    fn wait_for_port(&mut self, what: &str, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            let exited = self
                .children
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!(
                    "{name} exited with {status} before {what} listened on port {port}:\n{}",
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} did not listen on port {port} within 20s:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Output of both processes, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["pebble", "pebble-challtestsrv"] {
            for suffix in ["stdout", "stderr"] {
                let mut text = String::new();
                if let Ok(mut file) =
                    fs::File::open(self.dir.path().join(format!("{name}.{suffix}")))
                {
                    let _ = file.read_to_string(&mut text);
                }
                if !text.is_empty() {
                    out.push_str(&format!("--- {name} {suffix} ---\n{text}\n"));
                }
            }
        }
        out
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that was free a moment ago. The small race with other processes is acceptable
/// for tests; pebble takes its ports from a config file, so they must be chosen up front.
/// `N` distinct free ports. The listeners are held until all are chosen: ports picked one
/// after another can repeat (a CI run once gave pebble the same port for its ACME and
/// management listeners).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address").port())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A throwaway CA and a certificate for `localhost`/`127.0.0.1` signed by it:
/// (certificate PEM, key PEM, CA PEM).
fn https_certificate() -> (String, String, String) {
    let ca = TestCa::new("pebble https test CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    (cert, key, ca.pem())
}

/// A certificate authority made with rcgen, for certificates the tests hand out themselves.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    pub fn pem(&self) -> String {
        self.pem.clone()
    }

    /// A leaf for `names` (DNS names or IP addresses): (certificate PEM, key PEM).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("leaf params");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }
}
