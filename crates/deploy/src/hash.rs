//! The config hash: a fingerprint of what a service's containers should look like.
//!
//! A container whose hash label equals the desired hash is up to date; any other is recreated.
//! The hash covers the container spec with everything that differs between replicas, or that
//! does not change the running container, left out:
//! - the name, and every `berth.*` / `com.docker.compose.*` label (container number, the hash
//!   itself, release, working directory, config files, version), so all replicas share one
//!   hash, and moving the project directory or upgrading berth does not recreate containers;
//! - nothing else: user labels, environment, ports, mounts, limits, ... all count.
//!
//! The image counts as the project's files name it (the reference, e.g. `berth/postgres:15`)
//! together with its id when the caller knows it (after a build or pull), so a rebuilt image
//! under the same tag changes the hash and the containers are recreated. A container that runs
//! an image pinned by id (`berth rollback`) is hashed under the files' reference and that id,
//! as `up` would hash the same image (see [`crate::Desired::pin_release`]).
//!
//! [`config_hash`] is the only function computing the hash, and a hash computed without the
//! image id differs from one computed with it for the same container: every command that plans
//! containers (`up`, `run`, `deploy`, `rollback`) must resolve the ids of the images it plans
//! with first, or it restarts services whose configuration did not change.

use crate::labels;
use berth_engine::ContainerSpec;
use serde_json::Value;

/// blake3 over the canonical JSON of the hashed part of `spec`, plus the image id, in hex.
pub fn config_hash(spec: &ContainerSpec, image_id: Option<&str>) -> String {
    let mut v = serde_json::to_value(spec).expect("a ContainerSpec always serializes");
    if let Value::Object(m) = &mut v {
        m.remove("name");
        if let Some(Value::Object(l)) = m.get_mut("labels") {
            l.retain(|k, _| !labels::is_managed(k));
        }
        m.insert(
            "image_id".into(),
            image_id
                .map(|s| Value::String(s.into()))
                .unwrap_or(Value::Null),
        );
    }
    let canonical = canonical_json(&v);
    blake3::hash(canonical.as_bytes()).to_hex().to_string()
}

/// JSON with object keys sorted at every level, so the text depends only on the content and
/// not on field or insertion order (serde_json keeps insertion order in this workspace).
fn canonical_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_replica_fields_do_not_count() {
        let mut a = ContainerSpec {
            name: "shop-web-1".into(),
            image: "img".into(),
            env: vec!["A=1".into()],
            ..Default::default()
        };
        a.labels
            .insert(labels::COMPOSE_CONTAINER_NUMBER.into(), "1".into());
        let mut b = a.clone();
        b.name = "shop-web-2".into();
        b.labels
            .insert(labels::COMPOSE_CONTAINER_NUMBER.into(), "2".into());
        labels::set_config_hash(&mut b.labels, "whatever");
        assert_eq!(config_hash(&a, None), config_hash(&b, None));

        b.labels.insert("team".into(), "x".into());
        assert_ne!(config_hash(&a, None), config_hash(&b, None));
        assert_ne!(config_hash(&a, None), config_hash(&a, Some("sha256:1")));
        assert_ne!(
            config_hash(&a, Some("sha256:1")),
            config_hash(&a, Some("sha256:2"))
        );
        assert_eq!(config_hash(&a, None).len(), 64);
    }
}
