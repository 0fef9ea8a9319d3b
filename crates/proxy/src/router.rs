//! From a request's host and path to the route that serves it.

use crate::service::Service;
use berth_proxy_api::route::normalize_host;
use std::sync::Arc;

/// The routing table: an immutable snapshot that the control plane replaces atomically
/// (through `arc_swap`), so the data plane never takes a lock to route.
#[derive(Debug, Default)]
pub struct Router {
    /// Most specific first: exact hosts, then wildcards, then routes for every host; within
    /// each, longer path prefixes first.
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    host: HostPattern,
    prefix: String,
    service: Arc<Service>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum HostPattern {
    Exact(String),
    /// `*.example.com` is stored as `.example.com`: it matches one or more labels before it.
    Wildcard(String),
    Any,
}

impl HostPattern {
    fn parse(host: &str) -> HostPattern {
        match host.strip_prefix('*') {
            Some(suffix) => HostPattern::Wildcard(suffix.to_string()),
            None => HostPattern::Exact(host.to_string()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            HostPattern::Exact(_) => 0,
            HostPattern::Wildcard(_) => 1,
            HostPattern::Any => 2,
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            HostPattern::Any => true,
        }
    }
}

impl Router {
    pub fn new(services: impl IntoIterator<Item = Arc<Service>>) -> Router {
        let mut entries = Vec::new();
        for service in services {
            let prefix = service.spec.path_prefix.clone();
            if service.spec.hosts.is_empty() {
                entries.push(Entry {
                    host: HostPattern::Any,
                    prefix,
                    service,
                });
                continue;
            }
            for host in &service.spec.hosts {
                entries.push(Entry {
                    host: HostPattern::parse(host),
                    prefix: prefix.clone(),
                    service: service.clone(),
                });
            }
        }
        entries.sort_by(|a, b| {
            a.host
                .rank()
                .cmp(&b.host.rank())
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Router { entries }
    }

    /// The route for a request, by its Host (or :authority) and path.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<Service>> {
        let host = normalize_host(host);
        self.entries
            .iter()
            .find(|e| e.host.matches(&host) && prefix_matches(&e.prefix, path))
            .map(|e| &e.service)
    }

    pub fn services(&self) -> impl Iterator<Item = &Arc<Service>> {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .filter(move |e| seen.insert(Arc::as_ptr(&e.service)))
            .map(|e| &e.service)
    }
}

/// `/api` matches `/api`, `/api/` and `/api/x`, but not `/apix`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::RouteControl;
    use berth_proxy_api::route::RouteSpec;

    fn svc(name: &str, hosts: &[&str], prefix: &str) -> Arc<Service> {
        Arc::new(Service {
            spec: Arc::new(RouteSpec {
                name: name.into(),
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                path_prefix: prefix.into(),
                health_path: None,
                sets: vec![],
                maintenance: None,
            }),
            sets: vec![],
            draining: vec![],
            control: Arc::new(RouteControl::default()),
            metrics: crate::metrics::RouteMetrics::detached(),
        })
    }

    fn name<'a>(router: &'a Router, host: &str, path: &str) -> Option<&'a str> {
        router.find(host, path).map(|s| s.spec.name.as_str())
    }

    #[test]
    fn most_specific_route_wins() {
        let router = Router::new([
            svc("any", &[], "/"),
            svc("wild", &["*.example.com"], "/"),
            svc("shop", &["shop.example.com"], "/"),
            svc("shop-api", &["shop.example.com"], "/api"),
        ]);
        assert_eq!(name(&router, "shop.example.com", "/"), Some("shop"));
        assert_eq!(
            name(&router, "SHOP.example.com:443", "/api/x"),
            Some("shop-api")
        );
        assert_eq!(name(&router, "shop.example.com", "/apix"), Some("shop"));
        assert_eq!(name(&router, "blog.example.com", "/"), Some("wild"));
        assert_eq!(name(&router, "a.b.example.com", "/"), Some("wild"));
        assert_eq!(name(&router, "example.com", "/"), Some("any"));
    }

    #[test]
    fn no_route_no_match() {
        let router = Router::new([svc("shop", &["shop.example.com"], "/")]);
        assert_eq!(name(&router, "other.example.com", "/"), None);
        assert_eq!(router.services().count(), 1);
    }
}
