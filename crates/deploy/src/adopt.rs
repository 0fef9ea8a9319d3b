//! Adopting containers berth did not create.
//!
//! A stack started by `docker-compose up` carries the Compose labels, so berth finds its
//! containers, but not berth's config hash. Rather than recreating them once "to be sure" (a
//! needless restart of a healthy stack), the planner compares the container's configuration,
//! read back from the engine, with the desired spec, and keeps the container when they agree.
//! Values the image adds (environment, labels, volumes declared in the Dockerfile) are allowed
//! on top of what the project asks for, since Compose would have produced them too.

use crate::labels;
use berth_engine::{normalize_ip, ContainerSpec, MountSpec, ObservedConfig, RestartPolicy};
use std::collections::BTreeSet;

/// `Ok` when `observed` runs what `spec` asks for; otherwise the first difference, for the plan.
pub fn matches(spec: &ContainerSpec, observed: &ObservedConfig) -> Result<(), String> {
    if spec.image != observed.image {
        return Err(format!(
            "image {} instead of {}",
            observed.image, spec.image
        ));
    }
    if let Some(missing) = spec.env.iter().find(|e| !observed.env.contains(*e)) {
        let key = missing.split('=').next().unwrap_or(missing);
        return Err(format!("environment variable {key} differs"));
    }
    if spec.command.is_some() && spec.command != observed.command {
        return Err("command differs".into());
    }
    if spec.entrypoint.as_ref().is_some_and(|e| !e.is_empty())
        && spec.entrypoint != observed.entrypoint
    {
        return Err("entrypoint differs".into());
    }
    for (k, v) in spec.labels.iter().filter(|(k, _)| !labels::is_managed(k)) {
        if observed.labels.get(k) != Some(v) {
            return Err(format!("label {k} differs"));
        }
    }
    let ports: BTreeSet<(u16, String, String, String)> = spec
        .ports
        .iter()
        .map(|p| {
            (
                p.container_port,
                p.protocol.clone(),
                normalize_ip(p.host_ip.as_deref()),
                p.host_port.clone().unwrap_or_default(),
            )
        })
        .collect();
    if ports != observed.ports {
        return Err("published ports differ".into());
    }
    for m in &spec.mounts {
        let found = match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                ..
            } => observed
                .mounts
                .contains(&(source.clone(), target.clone(), *read_only)),
            MountSpec::Volume {
                source: Some(name),
                target,
                read_only,
                ..
            } => observed
                .mounts
                .contains(&(name.clone(), target.clone(), *read_only)),
            MountSpec::Volume {
                source: None,
                target,
                ..
            } => observed.mounts.iter().any(|(_, t, _)| t == target),
            // tmpfs mounts are not listed among the container's mounts; they cannot differ in
            // a way the engine reports here.
            MountSpec::Tmpfs { .. } => true,
        };
        if !found {
            return Err("volumes differ".into());
        }
    }
    if spec.network_mode.is_none() {
        let wanted: BTreeSet<&str> = spec.networks.iter().map(|n| n.network.as_str()).collect();
        let have: BTreeSet<&str> = observed.networks.iter().map(String::as_str).collect();
        if wanted != have {
            return Err("networks differ".into());
        }
    }
    let restart = match &spec.restart {
        RestartPolicy::No => "no",
        RestartPolicy::Always => "always",
        RestartPolicy::UnlessStopped => "unless-stopped",
        RestartPolicy::OnFailure { .. } => "on-failure",
    };
    if restart != observed.restart {
        return Err(format!(
            "restart policy {} instead of {restart}",
            observed.restart
        ));
    }
    if let Some(h) = &spec.healthcheck {
        if observed.healthcheck_test.as_ref() != Some(&h.test) {
            return Err("healthcheck differs".into());
        }
    }
    if spec.user.as_ref().is_some_and(|u| *u != observed.user) {
        return Err("user differs".into());
    }
    if spec
        .working_dir
        .as_ref()
        .is_some_and(|w| *w != observed.working_dir)
    {
        return Err("working directory differs".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::{NetworkAttachment, PortBinding};

    fn pair() -> (ContainerSpec, ObservedConfig) {
        let spec = ContainerSpec {
            name: "p-web-1".into(),
            image: "berth/testapp:latest".into(),
            env: vec!["A=1".into()],
            ports: vec![PortBinding {
                container_port: 8080,
                protocol: "tcp".into(),
                host_ip: None,
                host_port: Some("18080".into()),
            }],
            mounts: vec![MountSpec::Volume {
                source: Some("p_data".into()),
                target: "/data".into(),
                read_only: false,
                nocopy: false,
                subpath: None,
            }],
            networks: vec![NetworkAttachment {
                network: "p_default".into(),
                aliases: vec!["web".into()],
                ipv4_address: None,
            }],
            restart: RestartPolicy::UnlessStopped,
            ..Default::default()
        };
        let observed = ObservedConfig {
            image: "berth/testapp:latest".into(),
            env: ["A=1".to_string(), "PATH=/bin".to_string()]
                .into_iter()
                .collect(),
            ports: [(8080, "tcp".to_string(), String::new(), "18080".to_string())]
                .into_iter()
                .collect(),
            mounts: [("p_data".to_string(), "/data".to_string(), false)]
                .into_iter()
                .collect(),
            networks: ["p_default".to_string()].into_iter().collect(),
            restart: "unless-stopped".into(),
            ..Default::default()
        };
        (spec, observed)
    }

    #[test]
    fn an_equal_container_is_adopted() {
        let (spec, observed) = pair();
        assert_eq!(matches(&spec, &observed), Ok(()));
    }

    #[test]
    fn each_difference_is_named() {
        type Tweak = fn(&mut ObservedConfig);
        let cases: [(Tweak, &str); 6] = [
            (|o| o.image = "other:1".into(), "image"),
            (
                |o| {
                    o.env.remove("A=1");
                    o.env.insert("A=2".into());
                },
                "environment variable A",
            ),
            (|o| o.ports.clear(), "ports"),
            (|o| o.mounts.clear(), "volumes"),
            (
                |o| {
                    o.networks.insert("extra".into());
                },
                "networks",
            ),
            (|o| o.restart = "no".into(), "restart policy"),
        ];
        for (tweak, needle) in cases {
            let (spec, mut observed) = pair();
            tweak(&mut observed);
            let err = matches(&spec, &observed).unwrap_err();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }
}
