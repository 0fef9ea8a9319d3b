//! The proxy's settings, validated before any socket is opened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the JSON access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Connecting to a target; past it the target is marked down and the request retried.
    pub connect: Duration,
    /// A client must send a complete request head within this; slow-header clients are cut.
    pub header_read: Duration,
    /// Waiting for a target's response head; past it the client gets a 504.
    pub response: Duration,
    /// An idle keep-alive connection to a target is closed after this.
    pub upstream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            header_read: Duration::from_secs(10),
            response: Duration::from_secs(60),
            upstream_idle: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HealthIntervals {
    /// For targets not yet healthy (a deploy waiting on them) and for unhealthy ones.
    pub fast: Duration,
    /// For healthy targets; failures in between are caught passively by the data plane.
    pub steady: Duration,
    /// One check's deadline.
    pub timeout: Duration,
    /// Consecutive failed checks that take a healthy target out of rotation.
    pub fall: u32,
}

impl Default for HealthIntervals {
    fn default() -> Self {
        HealthIntervals {
            fast: Duration::from_millis(100),
            steady: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            fall: 2,
        }
    }
}

/// Everything `berth proxy run` needs, in its validated form.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Plain listeners: HTTP/1.1 and h2c.
    pub listen: Vec<SocketAddr>,
    /// TLS listeners: HTTP/1.1 and HTTP/2 by ALPN.
    pub tls_listen: Vec<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub admin_socket: PathBuf,
    pub state_file: PathBuf,
    /// Where certificates (from files and from ACME) are kept.
    pub cert_dir: PathBuf,
    pub access_log: AccessLog,
    pub timeouts: Timeouts,
    pub health: HealthIntervals,
    /// The largest request body accepted; larger ones get a 413.
    pub max_body: u64,
    /// The largest request head (request line and headers); larger ones get a 431.
    pub max_header_bytes: usize,
    /// How long the previous process may drain its connections during an upgrade.
    pub handover_drain: Duration,
    /// Threads serving the data plane, each with its own runtime and upstream pool.
    pub workers: usize,
}

impl ProxyConfig {
    /// Settings for a proxy whose files live under `dir`, listening on `listen`; tests and
    /// benchmarks start from here.
    pub fn in_dir(dir: &std::path::Path, listen: Vec<SocketAddr>) -> ProxyConfig {
        ProxyConfig {
            listen,
            tls_listen: vec![],
            metrics_listen: None,
            admin_socket: dir.join("admin.sock"),
            state_file: dir.join("state.json"),
            cert_dir: dir.join("certs"),
            access_log: AccessLog::Off,
            timeouts: Timeouts::default(),
            health: HealthIntervals::default(),
            max_body: DEFAULT_MAX_BODY,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            handover_drain: Duration::from_secs(30),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.listen.is_empty() && self.tls_listen.is_empty() {
            return Err("give at least one --listen or --tls-listen address".to_string());
        }
        if self.max_header_bytes < 8192 {
            return Err("the header limit must be at least 8192 bytes".to_string());
        }
        // Heads are parsed with 32-bit offsets; no client needs more than this anyway.
        if self.max_header_bytes > MAX_HEADER_BYTES_LIMIT {
            return Err("the header limit must be at most 1048576 bytes (1 MiB)".to_string());
        }
        if self.health.fast.is_zero() || self.health.steady.is_zero() {
            return Err("health check intervals must be above zero".to_string());
        }
        Ok(())
    }
}

/// 100 MiB: large enough for uploads most apps take, small enough that a client cannot
/// stream without end through the proxy by default.
pub const DEFAULT_MAX_BODY: u64 = 100 * 1024 * 1024;

/// 64 KiB of request line and headers, as in nginx's default `large_client_header_buffers`
/// (4 x 8k) order of magnitude, with room for big cookies.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// The largest header limit accepted.
pub const MAX_HEADER_BYTES_LIMIT: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_limit_is_bounded_on_both_sides() {
        let dir = std::path::Path::new("/nonexistent");
        let mut config = ProxyConfig::in_dir(dir, vec!["127.0.0.1:0".parse().unwrap()]);
        assert!(config.validate().is_ok());
        config.max_header_bytes = 4096;
        assert!(config.validate().unwrap_err().contains("at least 8192"));
        config.max_header_bytes = MAX_HEADER_BYTES_LIMIT;
        assert!(config.validate().is_ok());
        config.max_header_bytes = MAX_HEADER_BYTES_LIMIT + 1;
        assert!(config.validate().unwrap_err().contains("at most 1048576"));
    }
}
