//! A service's `build:` in the engine's terms, every option checked here so that a wrong
//! value is an error naming the service and key before anything is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_compose::berth_ext::BuilderKind;
use berth_compose::model::{Build, Service};
use berth_compose::Project;
use berth_engine::{BuildSpec, Builder, SecretSource};
use serde_json::Value;

use crate::desired::object;
use crate::error::PlanError;

pub(crate) fn build_spec(
    project: &Project,
    service: &str,
    svc: &Service,
    b: &Build,
    image: &str,
) -> Result<BuildSpec, PlanError> {
    let invalid = |key: &str, value: &Value, expected: &str, help: &str| PlanError::InvalidValue {
        service: service.into(),
        key: format!("build.{key}"),
        value: match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        expected: expected.into(),
        help: help.into(),
    };
    // The loader made local contexts absolute; a remote context (git URL) is kept as written.
    let ctx = PathBuf::from(&b.context);
    let context = if ctx.is_absolute() || b.context.contains("://") || b.context.starts_with("git@")
    {
        ctx
    } else {
        project.project_dir.join(ctx)
    };
    let mut tags = vec![image.to_string()];
    for t in string_list(b.other.get("tags")) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }

    // Secrets: each names a top-level secret whose `file` or `environment` gives the value;
    // the secret's name is the id `RUN --mount=type=secret,id=…` asks for.
    let mut secrets = BTreeMap::new();
    if let Some(list) = b.other.get("secrets") {
        let Value::Array(items) = list else {
            return Err(invalid(
                "secrets",
                list,
                "a list of secret names",
                "write `secrets: [name]`",
            ));
        };
        for item in items {
            let name = match item {
                Value::String(s) => s.clone(),
                Value::Object(m) => match m.get("source").and_then(Value::as_str) {
                    Some(s) => s.to_string(),
                    None => {
                        return Err(invalid(
                            "secrets",
                            item,
                            "a secret with a `source`",
                            "write `- source: name`",
                        ))
                    }
                },
                other => {
                    return Err(invalid(
                        "secrets",
                        other,
                        "a secret name",
                        "write `secrets: [name]`",
                    ))
                }
            };
            let top = project
                .secrets
                .get(&name)
                .ok_or_else(|| PlanError::InvalidValue {
                    service: service.into(),
                    key: "build.secrets".into(),
                    value: name.clone(),
                    expected: "a secret declared in the top-level `secrets:`".into(),
                    help: format!("declare it: `secrets: {{ {name}: {{ file: ./{name}.txt }} }}`"),
                })?;
            let source = if let Some(file) = top.other.get("file").and_then(Value::as_str) {
                let path = Path::new(file);
                SecretSource::File(if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    project.project_dir.join(path)
                })
            } else if let Some(var) = top.other.get("environment").and_then(Value::as_str) {
                SecretSource::Env(var.to_string())
            } else {
                return Err(PlanError::InvalidValue {
                    service: service.into(),
                    key: "build.secrets".into(),
                    value: name.clone(),
                    expected: "a secret with `file` or `environment`".into(),
                    help: "a build secret is read on this machine; give the top-level secret a `file:` or an `environment:`".into(),
                });
            };
            secrets.insert(name, source);
        }
    }

    // SSH: `default` is the agent at $SSH_AUTH_SOCK; `id=path` names another agent socket.
    let mut ssh = BTreeMap::new();
    let ssh_items: Vec<(String, Option<String>)> = match b.other.get("ssh") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| match s.split_once('=') {
                Some((id, path)) => (id.to_string(), Some(path.to_string())),
                None => (s.to_string(), None),
            })
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(String::from)))
            .collect(),
        Some(other) => {
            return Err(invalid(
                "ssh",
                other,
                "a list of agents",
                "write `ssh: [default]`",
            ))
        }
    };
    for (id, path) in ssh_items {
        let path = match path {
            Some(path) => PathBuf::from(path),
            None => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(sock) => PathBuf::from(sock),
                None => {
                    return Err(PlanError::InvalidValue {
                        service: service.into(),
                        key: "build.ssh".into(),
                        value: id,
                        expected: "an ssh agent berth can reach".into(),
                        help: "start an agent (`eval $(ssh-agent)`, `ssh-add`) so SSH_AUTH_SOCK is set, or write `id=/path/to/agent.sock`".into(),
                    })
                }
            },
        };
        if path.is_file() {
            return Err(PlanError::InvalidValue {
                service: service.into(),
                key: "build.ssh".into(),
                value: format!("{id}={}", path.display()),
                expected: "an ssh agent socket".into(),
                help: "berth forwards agents, not key files; load the key into an agent with `ssh-add` and use `default`".into(),
            });
        }
        ssh.insert(id, path);
    }

    if let Some(contexts) = b.other.get("additional_contexts") {
        let empty = match contexts {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            return Err(invalid(
                "additional_contexts",
                contexts,
                "something this engine's /build API can pass",
                "the engine (API 1.41) takes no named contexts through /build; use a stage of the Dockerfile (`COPY --from=stage`) or an image (`COPY --from=image:tag`) instead",
            ));
        }
    }

    let shm_size = match b.other.get("shm_size") {
        None => None,
        Some(v) => Some(bytes(v).ok_or_else(|| {
            invalid(
                "shm_size",
                v,
                "a size",
                "write a size like 256m or 1gb, or a number of bytes",
            )
        })?),
    };
    let extra_hosts = match b.other.get("extra_hosts") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            // The engine takes `host:ip`; Compose also writes `host=ip`.
            .map(|h| match h.split_once('=') {
                Some((host, ip)) => format!("{host}:{ip}"),
                None => h.to_string(),
            })
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(host, ip)| format!("{host}:{}", ip.as_str().unwrap_or_default()))
            .collect(),
        Some(other) => {
            return Err(invalid(
                "extra_hosts",
                other,
                "a list of host:ip",
                "write `extra_hosts: [\"db:10.0.0.2\"]`",
            ))
        }
    };
    let platforms = string_list(b.other.get("platforms"));
    let platform = match platforms.as_slice() {
        [] => svc.other.get("platform").and_then(Value::as_str).map(String::from),
        [one] => Some(one.clone()),
        _ => {
            return Err(PlanError::InvalidValue {
                service: service.into(),
                key: "build.platforms".into(),
                value: platforms.join(", "),
                expected: "one platform".into(),
                help: "berth builds for the engine's own platform only; list just that one, or drop `platforms`".into(),
            })
        }
    };
    let mut not_applied = Vec::new();
    if b.other
        .get("cache_to")
        .is_some_and(|v| !v.as_array().is_some_and(|a| a.is_empty()))
    {
        not_applied.push(
            "`build.cache_to` is not applied: the engine's /build API has no cache export; the cache stays in the engine's BuildKit".to_string(),
        );
    }
    let builder = match svc.berth.as_ref().and_then(|x| x.builder) {
        Some(BuilderKind::Classic) => Builder::Classic,
        _ => Builder::BuildKit,
    };

    Ok(BuildSpec {
        context,
        dockerfile: b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
        dockerfile_inline: b
            .other
            .get("dockerfile_inline")
            .and_then(Value::as_str)
            .map(String::from),
        target: b.target.clone(),
        args: b
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect(),
        labels: object(b.other.get("labels")),
        tags,
        no_cache: b.other.get("no_cache").and_then(Value::as_bool) == Some(true),
        pull: b.other.get("pull").and_then(Value::as_bool) == Some(true),
        builder,
        secrets,
        ssh,
        cache_from: string_list(b.other.get("cache_from")),
        network: b
            .other
            .get("network")
            .and_then(Value::as_str)
            .map(String::from),
        shm_size,
        extra_hosts,
        platform,
        not_applied,
    })
}

/// A byte count from a number or a size like `256m`, `1gb`, `512KiB`.
fn bytes(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let text = v.as_str()?.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: u64 = match unit.trim().trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    Some((number * scale as f64) as u64)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_compose_writes_them() {
        assert_eq!(bytes(&Value::from(1024)), Some(1024));
        assert_eq!(bytes(&Value::from("256m")), Some(256 << 20));
        assert_eq!(bytes(&Value::from("1gb")), Some(1 << 30));
        assert_eq!(bytes(&Value::from("2GiB")), Some(2 << 30));
        assert_eq!(bytes(&Value::from("lots")), None);
    }
}
