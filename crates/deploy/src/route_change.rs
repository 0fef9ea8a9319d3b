//! A change of a routed service's route settings (`x-berth.proxy`: host, path prefix, health
//! path, port), and the route as it was before a release touched it.
//!
//! A route has one host list, path prefix and health path for all its sets, while the port is
//! part of each target's address. So a new port can be rolled replica by replica (old replicas
//! keep their addresses), but new hosts or a new health path can only be proven on a staging
//! route ([`staging_spec`]) and then switched to in one change. Until the new replicas passed
//! the proxy's check under the new settings, the running version is reached exactly as before;
//! a revert puts back the route saved in [`RouteBefore`].

use crate::policy::Route;
use berth_proxy_api::route::normalize_host;
use berth_proxy_api::RouteSpec;

/// What a routed service's route was before a release touched it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RouteBefore {
    /// Not known: the service is not routed, or a journal written before berth saved routes.
    #[default]
    Unknown,
    /// The proxy had no route for the service.
    Absent,
    /// The route as it was: settings, sets, weights and addresses.
    Present(RouteSpec),
}

impl RouteBefore {
    /// From the journal's `route` step: `null` is a route that was absent.
    pub fn from_json(v: &serde_json::Value) -> RouteBefore {
        if v.is_null() {
            return RouteBefore::Absent;
        }
        serde_json::from_value(v.clone())
            .map(RouteBefore::Present)
            .unwrap_or(RouteBefore::Unknown)
    }

    /// The journal's form: the route spec, or `null` when there was none.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            RouteBefore::Present(spec) => serde_json::to_value(spec).unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    pub fn present(&self) -> Option<&RouteSpec> {
        match self {
            RouteBefore::Present(spec) => Some(spec),
            _ => None,
        }
    }
}

/// The port of an `IP:PORT` target address.
pub fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// The port the route's targets are reached on: that of its first target, if it has one.
pub fn live_port(live: &RouteSpec) -> Option<u16> {
    live.sets
        .iter()
        .flat_map(|s| &s.targets)
        .find_map(|t| port_of(t))
}

/// Whether the route's shared settings (hosts, path prefix, health path) are those wanted.
pub fn same_settings(live: &RouteSpec, wanted: &Route) -> bool {
    let hosts = |h: &[String]| -> Vec<String> {
        let mut v: Vec<String> = h.iter().map(|h| normalize_host(h).into_owned()).collect();
        v.sort();
        v
    };
    hosts(&live.hosts) == hosts(&wanted.hosts)
        && live.path_prefix == wanted.path_prefix
        && live.health_path.as_deref() == Some(wanted.health_path.as_str())
}

/// The settings the wanted route changes, each named as the compose file spells it, with its
/// old and new value: `x-berth.proxy.port (8080 → 9090)`. Empty when nothing changes.
pub fn changes(live: &RouteSpec, wanted: &Route) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(port) = live
        .sets
        .iter()
        .flat_map(|s| &s.targets)
        .filter_map(|t| port_of(t))
        .find(|p| *p != wanted.port)
    {
        out.push(format!("x-berth.proxy.port ({port} → {})", wanted.port));
    }
    let mut live_hosts = live.hosts.clone();
    live_hosts.sort();
    let mut wanted_hosts: Vec<String> = wanted
        .hosts
        .iter()
        .map(|h| normalize_host(h).into_owned())
        .collect();
    wanted_hosts.sort();
    if live_hosts != wanted_hosts {
        out.push(format!(
            "x-berth.proxy.host ({} → {})",
            live_hosts.join(","),
            wanted_hosts.join(",")
        ));
    }
    if live.path_prefix != wanted.path_prefix {
        out.push(format!(
            "x-berth.proxy.path_prefix ({} → {})",
            live.path_prefix, wanted.path_prefix
        ));
    }
    if live.health_path.as_deref() != Some(wanted.health_path.as_str()) {
        out.push(format!(
            "x-berth.proxy.health_path ({} → {})",
            live.health_path.as_deref().unwrap_or("none"),
            wanted.health_path
        ));
    }
    out
}

/// The path prefix of a staging route: no client asks for it, so the staging route takes
/// no traffic while the proxy checks the new replicas under the new settings.
pub const STAGING_PREFIX: &str = "/.berth-staging";

/// The name of the route on which new replicas are checked under new settings.
pub fn staging_name(route: &str) -> String {
    format!("{route}.staging")
}

/// The staging route for `wanted`: the new hosts (the first names the site in the health
/// check's `Host`, as on the real route) and the new health path, under a path no client asks
/// for, without sets yet.
pub fn staging_spec(wanted: &Route) -> RouteSpec {
    RouteSpec {
        name: staging_name(&wanted.name),
        hosts: wanted.hosts.clone(),
        path_prefix: STAGING_PREFIX.to_string(),
        health_path: Some(wanted.health_path.clone()),
        sets: Vec::new(),
        maintenance: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proxy_api::SetSpec;

    fn live(port: u16, health: &str) -> RouteSpec {
        RouteSpec {
            name: "shop-web".into(),
            hosts: vec!["app.test".into()],
            path_prefix: "/".into(),
            health_path: Some(health.into()),
            sets: vec![SetSpec {
                id: "cabc".into(),
                weight: 100,
                targets: vec![format!("172.18.0.5:{port}")],
            }],
            maintenance: None,
        }
    }

    fn wanted(port: u16, health: &str, host: &str) -> Route {
        Route {
            name: "shop-web".into(),
            hosts: vec![host.into()],
            path_prefix: "/".into(),
            health_path: health.into(),
            port,
        }
    }

    #[test]
    fn each_changed_setting_is_named_with_its_old_and_new_value() {
        assert!(changes(&live(8080, "/up"), &wanted(8080, "/up", "App.Test")).is_empty());
        assert_eq!(
            changes(&live(8080, "/up"), &wanted(9090, "/up", "app.test")),
            ["x-berth.proxy.port (8080 → 9090)"]
        );
        assert_eq!(
            changes(&live(8080, "/up"), &wanted(8080, "/nope", "other.test")),
            [
                "x-berth.proxy.host (app.test → other.test)",
                "x-berth.proxy.health_path (/up → /nope)"
            ]
        );
        // A port change keeps the shared settings; a health path change does not.
        assert!(same_settings(
            &live(8080, "/up"),
            &wanted(9090, "/up", "app.test")
        ));
        assert!(!same_settings(
            &live(8080, "/up"),
            &wanted(8080, "/nope", "app.test")
        ));
    }

    #[test]
    fn a_saved_route_survives_the_journal() {
        let before = RouteBefore::Present(live(8080, "/up"));
        assert_eq!(RouteBefore::from_json(&before.to_json()), before);
        assert_eq!(
            RouteBefore::from_json(&RouteBefore::Absent.to_json()),
            RouteBefore::Absent
        );
        assert_eq!(live_port(&live(8080, "/up")), Some(8080));
        assert!(staging_spec(&wanted(8080, "/up", "app.test"))
            .validate()
            .is_ok());
    }
}
