//! Settings read from the environment, once, at start.

use std::net::IpAddr;
use std::path::PathBuf;

/// Everything the server's behaviour depends on. Tests build it directly instead of
/// mutating the process environment, which is shared between test threads.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on. 0.0.0.0 in a container, where the port is reached through
    /// Docker's network; `cargo xtask bench proxy` runs testapp on the host and sets
    /// `BIND=127.0.0.1` so that the backend is not reachable from outside the machine.
    pub bind: IpAddr,
    pub port: u16,
    pub version: String,
    pub health_fail: bool,
    pub fail_root: bool,
    pub crash: bool,
    pub data_dir: PathBuf,
}

impl Config {
    pub fn from_env() -> Config {
        Config::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` so that the parsing can be unit-tested.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let port = lookup("PORT")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(8080);
        let bind = lookup("BIND")
            .and_then(|b| b.trim().parse().ok())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Config {
            bind,
            port,
            version: lookup("APP_VERSION").unwrap_or_else(|| "dev".to_string()),
            health_fail: lookup("HEALTH").is_some_and(|v| v == "fail"),
            fail_root: lookup("FAIL_ROOT").is_some_and(|v| v == "1"),
            crash: lookup("CRASH").is_some_and(|v| v == "1"),
            data_dir: PathBuf::from(lookup("DATA_DIR").unwrap_or_else(|| "/data".to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_lookup(|_| None);
        assert_eq!(config.bind, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(config.port, 8080);
        assert_eq!(config.version, "dev");
        assert!(!config.health_fail && !config.fail_root && !config.crash);
        assert_eq!(config.data_dir, PathBuf::from("/data"));
    }

    #[test]
    fn values_are_read_from_the_environment() {
        let config = Config::from_lookup(|key| {
            Some(
                match key {
                    "BIND" => "127.0.0.1",
                    "PORT" => "9000",
                    "APP_VERSION" => "v2",
                    "HEALTH" => "fail",
                    "FAIL_ROOT" => "1",
                    "CRASH" => "1",
                    "DATA_DIR" => "/tmp/x",
                    _ => return None,
                }
                .to_string(),
            )
        });
        assert_eq!(config.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(config.port, 9000);
        assert_eq!(config.version, "v2");
        assert!(config.health_fail && config.fail_root && config.crash);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn a_bad_port_falls_back_to_the_default() {
        let config = Config::from_lookup(|key| (key == "PORT").then(|| "nope".to_string()));
        assert_eq!(config.port, 8080);
    }
}
