//! One compose service translated into the engine's [`ContainerSpec`].
//!
//! The translation is the same for every replica; [`crate::desired`] then adds the name and the
//! per-replica labels. Keys the engine spec cannot express yet are reported back as warnings
//! instead of being dropped silently.

use crate::error::PlanError;
use crate::units;
use berth_compose::model::{Mount, Port, Service};
use berth_compose::Project;
use berth_engine::{
    ContainerSpec, HealthSpec, MountSpec, NetworkAttachment, PortBinding, RestartPolicy,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// Keys of `Service::other` that are translated here.
const TRANSLATED: &[&str] = &[
    "cap_add",
    "cap_drop",
    "cpus",
    "dns",
    "extra_hosts",
    "hostname",
    "init",
    "logging",
    "mem_limit",
    "pids_limit",
    "privileged",
    "read_only",
    "shm_size",
    "stdin_open",
    "sysctls",
    "tmpfs",
    "tty",
];

/// Keys of `Service::other` that do not shape the container: `scale` is read by
/// [`crate::desired`], image selection (`pull_policy`, `platform`) is the executor's business,
/// `develop` is for a watch mode, and `expose` only documents ports that other containers on
/// the same network can reach anyway.
const NOT_CONTAINER: &[&str] = &["develop", "expose", "platform", "pull_policy", "scale"];

/// The name of replica `number` of a service: `container_name` when set (only valid with one
/// replica, which [`crate::desired`] checks), else `{project}-{service}-{number}` as Compose v2.
pub fn container_name(project: &str, service: &str, svc: &Service, number: u64) -> String {
    match &svc.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{service}-{number}"),
    }
}

/// Translates a service into the spec shared by all its replicas: `name` is empty and `labels`
/// holds only the user's labels. Returns the spec and warnings about ignored keys.
pub fn service_spec(
    project: &Project,
    name: &str,
    svc: &Service,
    image: &str,
) -> Result<(ContainerSpec, Vec<String>), PlanError> {
    let other = &svc.other;
    let flag = |k: &str| other.get(k).and_then(Value::as_bool).unwrap_or(false);
    let strings = |k: &str| string_list(other.get(k));
    let invalid = |key: &str, value: &Value, expected: &str, help: &str| PlanError::InvalidValue {
        service: name.into(),
        key: key.into(),
        value: display(value),
        expected: expected.into(),
        help: help.into(),
    };

    let mut warnings = Vec::new();
    for key in other.keys() {
        if !TRANSLATED.contains(&key.as_str())
            && !NOT_CONTAINER.contains(&key.as_str())
            && !key.starts_with("x-")
        {
            warnings.push(format!(
                "service `{name}`: `{key}` is not supported by berth yet and is ignored"
            ));
        }
    }

    let env: BTreeMap<&String, &String> = svc
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();

    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.other.get("resources"))
        .and_then(|r| r.get("limits"));
    let size_help = "use a size like 512m or 1g";
    let memory = pick(
        name,
        ("mem_limit", other.get("mem_limit")),
        (
            "deploy.resources.limits.memory",
            limits.and_then(|l| l.get("memory")),
        ),
        |(k, v)| units::parse_bytes(v).ok_or_else(|| invalid(k, v, "a size", size_help)),
    )?;
    let cpu_help = "use a number of CPUs like 0.5 or 2";
    let nano_cpus = pick(
        name,
        ("cpus", other.get("cpus")),
        (
            "deploy.resources.limits.cpus",
            limits.and_then(|l| l.get("cpus")),
        ),
        |(k, v)| units::parse_nano_cpus(v).ok_or_else(|| invalid(k, v, "a CPU count", cpu_help)),
    )?;
    let pids = pick(
        name,
        ("pids_limit", other.get("pids_limit")),
        (
            "deploy.resources.limits.pids",
            limits.and_then(|l| l.get("pids")),
        ),
        |(k, v)| units::parse_int(v).ok_or_else(|| invalid(k, v, "a number", "use an integer")),
    )?;
    let shm_size_bytes = other
        .get("shm_size")
        .map(|v| units::parse_bytes(v).ok_or_else(|| invalid("shm_size", v, "a size", size_help)))
        .transpose()?;

    let logging = other.get("logging");
    let (network_mode, networks) = networks(project, name, svc)?;

    let spec = ContainerSpec {
        name: String::new(),
        image: image.to_string(),
        entrypoint: svc.entrypoint.clone(),
        command: svc.command.clone(),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        labels: svc
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        hostname: other
            .get("hostname")
            .and_then(Value::as_str)
            .map(String::from),
        tty: flag("tty"),
        stdin_open: flag("stdin_open"),
        init: other.get("init").and_then(Value::as_bool),
        privileged: flag("privileged"),
        read_only_rootfs: flag("read_only"),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc.stop_grace_period.map(|d| d.0),
        healthcheck: svc.healthcheck.as_ref().map(|h| {
            if h.disable {
                HealthSpec {
                    test: vec!["NONE".into()],
                    interval: None,
                    timeout: None,
                    start_period: None,
                    start_interval: None,
                    retries: None,
                }
            } else {
                HealthSpec {
                    test: h.test.clone(),
                    interval: h.interval.map(|d| d.0),
                    timeout: h.timeout.map(|d| d.0),
                    start_period: h.start_period.map(|d| d.0),
                    start_interval: h.start_interval.map(|d| d.0),
                    retries: h.retries,
                }
            }
        }),
        restart: restart_policy(name, svc)?,
        ports: svc.ports.iter().map(port).collect(),
        mounts: svc
            .volumes
            .iter()
            .map(|m| mount(project, name, m))
            .collect::<Result<_, _>>()?,
        networks,
        network_mode,
        // The loader prints `host=ip`; the engine API takes `host:ip`.
        extra_hosts: strings("extra_hosts")
            .into_iter()
            .map(|h| match h.split_once('=') {
                Some((host, ip)) => format!("{host}:{ip}"),
                None => h,
            })
            .collect(),
        cap_add: strings("cap_add"),
        cap_drop: strings("cap_drop"),
        dns: strings("dns"),
        sysctls: string_map(other.get("sysctls")),
        tmpfs: strings("tmpfs"),
        memory_bytes: memory,
        nano_cpus,
        pids_limit: pids,
        shm_size_bytes,
        log_driver: logging
            .and_then(|l| l.get("driver"))
            .and_then(Value::as_str)
            .map(String::from),
        log_options: string_map(logging.and_then(|l| l.get("options"))),
    };
    Ok((spec, warnings))
}

/// Reads a limit that Compose accepts in two places; both set to different values is an error,
/// as in compose-go.
fn pick<T: PartialEq + std::fmt::Debug>(
    service: &str,
    first: (&str, Option<&Value>),
    second: (&str, Option<&Value>),
    parse: impl Fn((&str, &Value)) -> Result<T, PlanError>,
) -> Result<Option<T>, PlanError> {
    let a = first.1.map(|v| parse((first.0, v))).transpose()?;
    let b = second.1.map(|v| parse((second.0, v))).transpose()?;
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(PlanError::Conflict {
            service: service.into(),
            first: first.0.into(),
            second: second.0.into(),
            first_value: display(first.1.unwrap()),
            second_value: display(second.1.unwrap()),
        }),
        (a, b) => Ok(a.or(b)),
    }
}

/// `restart:` (`no`, `always`, `unless-stopped`, `on-failure[:N]`), else the Swarm-style
/// `deploy.restart_policy`, which Compose also honours when `restart` is absent.
fn restart_policy(service: &str, svc: &Service) -> Result<RestartPolicy, PlanError> {
    let bad = |v: &str| PlanError::InvalidValue {
        service: service.into(),
        key: "restart".into(),
        value: v.into(),
        expected: "a restart policy".into(),
        help: "use no, always, unless-stopped, on-failure or on-failure:N".into(),
    };
    if let Some(r) = &svc.restart {
        return match r.as_str() {
            "no" | "" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
            s => match s.strip_prefix("on-failure:").map(str::parse::<i64>) {
                Some(Ok(n)) if n >= 0 => Ok(RestartPolicy::OnFailure {
                    max_retries: Some(n),
                }),
                _ => Err(bad(s)),
            },
        };
    }
    let Some(rp) = svc
        .deploy
        .as_ref()
        .and_then(|d| d.other.get("restart_policy"))
    else {
        return Ok(RestartPolicy::No);
    };
    let max = rp.get("max_attempts").and_then(units::parse_int);
    Ok(
        match rp.get("condition").and_then(Value::as_str).unwrap_or("any") {
            "none" => RestartPolicy::No,
            "on-failure" => RestartPolicy::OnFailure { max_retries: max },
            _ => RestartPolicy::Always,
        },
    )
}

fn port(p: &Port) -> PortBinding {
    PortBinding {
        container_port: p.target,
        protocol: p.protocol.clone(),
        host_ip: p.host_ip.clone(),
        host_port: p.published.clone(),
    }
}

fn mount(project: &Project, service: &str, m: &Mount) -> Result<MountSpec, PlanError> {
    let sub = |k: &str| m.other.get(k);
    let sub_str = |k: &str, f: &str| {
        sub(k)
            .and_then(|v| v.get(f))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let sub_flag = |k: &str, f: &str| {
        sub(k)
            .and_then(|v| v.get(f))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    match m.kind.as_str() {
        "bind" => Ok(MountSpec::Bind {
            source: m
                .source
                .clone()
                .ok_or_else(|| PlanError::BindWithoutSource {
                    service: service.into(),
                    target: m.target.clone(),
                })?,
            target: m.target.clone(),
            read_only: m.read_only,
            create_host_path: sub_flag("bind", "create_host_path"),
            propagation: sub_str("bind", "propagation"),
            selinux: sub_str("bind", "selinux"),
        }),
        "volume" => {
            let source = match &m.source {
                None => None,
                Some(key) => Some(
                    project
                        .volumes
                        .get(key)
                        .map(|r| r.name.clone())
                        .ok_or_else(|| PlanError::UnknownResource {
                            service: service.into(),
                            kind: "volume",
                            name: key.clone(),
                        })?,
                ),
            };
            Ok(MountSpec::Volume {
                source,
                target: m.target.clone(),
                read_only: m.read_only,
                nocopy: sub_flag("volume", "nocopy"),
                subpath: sub_str("volume", "subpath"),
            })
        }
        "tmpfs" => {
            let t = sub("tmpfs");
            let invalid = |k: &str, v: &Value, what: &str, help: &str| PlanError::InvalidValue {
                service: service.into(),
                key: format!("volumes[{}].tmpfs.{k}", m.target),
                value: display(v),
                expected: what.into(),
                help: help.into(),
            };
            let size_bytes = t
                .and_then(|t| t.get("size"))
                .map(|v| {
                    units::parse_bytes(v)
                        .ok_or_else(|| invalid("size", v, "a size", "use a size like 64m"))
                })
                .transpose()?;
            let mode = t
                .and_then(|t| t.get("mode"))
                .map(|v| {
                    units::parse_mode(v)
                        .ok_or_else(|| invalid("mode", v, "an octal mode", "use a mode like 1777"))
                })
                .transpose()?;
            Ok(MountSpec::Tmpfs {
                target: m.target.clone(),
                size_bytes,
                mode,
            })
        }
        other => Err(PlanError::UnsupportedMount {
            service: service.into(),
            kind: other.into(),
            target: m.target.clone(),
        }),
    }
}

/// `network_mode` (with `service:X` pointed at X's first container, as Compose does) or the
/// networks to attach, by engine name. Every attachment carries the service name as an alias,
/// so other services reach any replica as `http://web:8080`, like in Compose.
fn networks(
    project: &Project,
    name: &str,
    svc: &Service,
) -> Result<(Option<String>, Vec<NetworkAttachment>), PlanError> {
    if let Some(mode) = &svc.network_mode {
        let mode = match mode.strip_prefix("service:") {
            Some(target) => {
                let t = project
                    .services
                    .get(target)
                    .ok_or_else(|| PlanError::UnknownService(target.into()))?;
                format!("container:{}", container_name(&project.name, target, t, 1))
            }
            None => mode.clone(),
        };
        return Ok((Some(mode), Vec::new()));
    }
    let mut out = Vec::new();
    for (key, sn) in &svc.networks {
        let res = project
            .networks
            .get(key)
            .ok_or_else(|| PlanError::UnknownResource {
                service: name.into(),
                kind: "network",
                name: key.clone(),
            })?;
        let mut aliases = vec![name.to_string()];
        for a in sn.iter().flat_map(|s| s.aliases.iter()) {
            if !aliases.contains(a) {
                aliases.push(a.clone());
            }
        }
        out.push(NetworkAttachment {
            network: res.name.clone(),
            aliases,
            ipv4_address: sn
                .as_ref()
                .and_then(|s| s.other.get("ipv4_address"))
                .and_then(Value::as_str)
                .map(String::from),
        });
    }
    // A routed service also joins the proxy's shared network, where the proxy (one per host,
    // for every project) reaches it by address. No alias: the network is shared by projects,
    // and a service name there would resolve across them.
    if svc.berth.as_ref().is_some_and(|b| b.proxy.is_some()) {
        out.push(NetworkAttachment {
            network: crate::labels::PROXY_NETWORK.to_string(),
            aliases: Vec::new(),
            ipv4_address: None,
        });
    }
    Ok((None, out))
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(scalar).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        _ => BTreeMap::new(),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn display(v: &Value) -> String {
    scalar(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Projects the loader would reject, built directly, to check the translation's own
    /// guards: they matter for callers that construct a `Project` by hand.
    fn translate(service: Value) -> Result<ContainerSpec, PlanError> {
        let p: Project = serde_json::from_value(json!({
            "name": "p",
            "services": { "s": service },
            "volumes": { "data": { "name": "p_data" } },
            "networks": { "default": { "name": "p_default" } },
        }))
        .unwrap();
        service_spec(&p, "s", &p.services["s"], "img").map(|(spec, _)| spec)
    }

    #[test]
    fn guards() {
        let cases = [
            (
                json!({ "mem_limit": "lots" }),
                "service `s`: `mem_limit` is \"lots\", which is not a size; use a size like 512m or 1g",
            ),
            (
                json!({ "cpus": "many" }),
                "service `s`: `cpus` is \"many\", which is not a CPU count; use a number of CPUs like 0.5 or 2",
            ),
            (
                json!({ "restart": "sometimes" }),
                "service `s`: `restart` is \"sometimes\", which is not a restart policy; use no, always, unless-stopped, on-failure or on-failure:N",
            ),
            (
                json!({ "volumes": [{ "type": "npipe", "target": "/x" }] }),
                "service `s`: mount type `npipe` at /x is not supported; use a bind, volume or tmpfs mount",
            ),
            (
                json!({ "volumes": [{ "type": "bind", "target": "/x" }] }),
                "service `s`: the bind mount at /x has no `source`; add the host path as `source`",
            ),
            (
                json!({ "volumes": [{ "type": "volume", "source": "nope", "target": "/x" }] }),
                "service `s` uses volume `nope`, which is not declared in the top-level `volumes` section; declare it there",
            ),
            (
                json!({ "networks": { "back": null } }),
                "service `s` uses network `back`, which is not declared in the top-level `networks` section; declare it there",
            ),
            (
                json!({ "network_mode": "service:ghost" }),
                "unknown service `ghost`; check the name against `berth config`",
            ),
        ];
        for (svc, want) in cases {
            assert_eq!(translate(svc).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn restart_policies() {
        let cases = [
            ("no", RestartPolicy::No),
            ("always", RestartPolicy::Always),
            ("unless-stopped", RestartPolicy::UnlessStopped),
            ("on-failure", RestartPolicy::OnFailure { max_retries: None }),
            (
                "on-failure:5",
                RestartPolicy::OnFailure {
                    max_retries: Some(5),
                },
            ),
        ];
        for (r, want) in cases {
            assert_eq!(translate(json!({ "restart": r })).unwrap().restart, want);
        }
    }
}
