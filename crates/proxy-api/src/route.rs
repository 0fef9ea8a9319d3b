//! What a route is, as the admin API and the state file spell it.

use serde::{Deserialize, Serialize};

/// One route: which requests it takes (hosts and a path prefix) and the target sets that
/// serve them. The name is the route's identity in the admin API (berth uses
/// `PROJECT-SERVICE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    /// Exact host names and `*.example.com` wildcards; empty means every host.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default = "root_prefix")]
    pub path_prefix: String,
    /// Path of the targets' health endpoint; without one a target is healthy when it
    /// accepts a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    #[serde(default)]
    pub sets: Vec<SetSpec>,
    /// While set, every request gets a 503 with this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
}

/// A group of equivalent targets (one release's replicas) and its share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    pub id: String,
    #[serde(default = "full_weight")]
    pub weight: u32,
    pub targets: Vec<String>,
}

fn root_prefix() -> String {
    "/".to_string()
}

fn full_weight() -> u32 {
    100
}

/// The most a weight may be; weights are relative, so 100 is one whole route's traffic
/// when one set is active, and a canary of 10 beside 90 takes 10%.
pub const MAX_WEIGHT: u32 = 10_000;

impl RouteSpec {
    /// Checks everything the data plane relies on, so that a bad admin request changes nothing.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "route name `{}` must be non-empty and use only letters, digits, `-`, `_` and `.`",
                self.name
            ));
        }
        for host in &self.hosts {
            validate_host(host)?;
        }
        if !self.path_prefix.starts_with('/') {
            return Err(format!(
                "path_prefix `{}` must start with `/`",
                self.path_prefix
            ));
        }
        if let Some(path) = &self.health_path {
            if !path.starts_with('/') {
                return Err(format!("health_path `{path}` must start with `/`"));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for set in &self.sets {
            set.validate()?;
            if !ids.insert(set.id.as_str()) {
                return Err(format!(
                    "set id `{}` appears twice; give each set its own id",
                    set.id
                ));
            }
        }
        Ok(())
    }

    /// The normalized form of the hosts: lowercase, no trailing dot.
    pub fn normalized(mut self) -> RouteSpec {
        for host in &mut self.hosts {
            *host = normalize_host(host).to_string();
        }
        self
    }
}

impl SetSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("a set needs a non-empty id".to_string());
        }
        if self.weight > MAX_WEIGHT {
            return Err(format!(
                "weight {} of set `{}` is above the maximum {MAX_WEIGHT}",
                self.weight, self.id
            ));
        }
        if self.targets.is_empty() {
            return Err(format!(
                "set `{}` has no targets; give at least one address",
                self.id
            ));
        }
        for target in &self.targets {
            parse_target(target)?;
        }
        Ok(())
    }
}

/// Parses `IP:PORT`. Names are refused on purpose: the proxy must not depend on DNS in the
/// request path, and berth always knows container addresses.
pub fn parse_target(addr: &str) -> Result<std::net::SocketAddr, String> {
    addr.parse().map_err(|_| {
        format!("target `{addr}` is not an IP:PORT address (for example 172.18.0.5:8000)")
    })
}

fn validate_host(host: &str) -> Result<(), String> {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host `{host}` is not a host name; use `shop.example.com` or `*.example.com`"
        ))
    }
}

/// Lowercases and strips a port and a trailing dot, the forms a Host header may take.
pub fn normalize_host(host: &str) -> std::borrow::Cow<'_, str> {
    let without_port = if host.starts_with('[') {
        // An IPv6 literal keeps its brackets; only the port after `]` goes.
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let trimmed = without_port.strip_suffix('.').unwrap_or(without_port);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> RouteSpec {
        RouteSpec {
            name: name.to_string(),
            hosts: vec!["shop.example.com".into()],
            path_prefix: "/".into(),
            health_path: Some("/up".into()),
            sets: vec![SetSpec {
                id: "r1".into(),
                weight: 100,
                targets: vec!["127.0.0.1:8000".into()],
            }],
            maintenance: None,
        }
    }

    #[test]
    fn a_good_route_validates() {
        spec("shop-web").validate().unwrap();
    }

    #[test]
    fn bad_routes_say_what_to_fix() {
        let mut bad = spec("shop web");
        assert!(bad.validate().unwrap_err().contains("route name"));
        bad = spec("a");
        bad.hosts = vec!["bad host".into()];
        assert!(bad.validate().unwrap_err().contains("not a host name"));
        bad = spec("a");
        bad.sets[0].targets = vec!["web:8000".into()];
        assert!(bad.validate().unwrap_err().contains("IP:PORT"));
        bad = spec("a");
        bad.sets.push(bad.sets[0].clone());
        assert!(bad.validate().unwrap_err().contains("appears twice"));
        bad = spec("a");
        bad.path_prefix = "api".into();
        assert!(bad.validate().unwrap_err().contains("start with `/`"));
    }

    #[test]
    fn hosts_normalize_like_host_headers() {
        assert_eq!(normalize_host("Shop.Example.com:8080"), "shop.example.com");
        assert_eq!(normalize_host("shop.example.com."), "shop.example.com");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("127.0.0.1"), "127.0.0.1");
    }
}
