//! Containers: create from a [`ContainerSpec`], start, stop, restart, remove, list, inspect.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointIpamConfig, EndpointSettings,
    HealthConfig, HostConfig, HostConfigLogConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType, MountVolumeOptions,
    NetworkConnectRequest, NetworkingConfig, PortMap, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, KillContainerOptions, ListContainersOptions,
    RemoveContainerOptions, RenameContainerOptions, RestartContainerOptions, StopContainerOptions,
};

use crate::error::{is_not_found, server_error, EngineError};
use crate::labels::{hash_map, label_filters};
use crate::{
    ContainerSpec, ContainerSummary, Engine, HealthSpec, MountSpec, PublishedPort, RestartPolicy,
};

impl Engine {
    /// Containers carrying all the given labels (`key` or `key=value`); stopped ones too
    /// when `all`.
    pub async fn list_containers(
        &self,
        labels: &[(&str, Option<&str>)],
        all: bool,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let options = ListContainersOptions {
            all,
            filters: Some(label_filters(labels)),
            ..Default::default()
        };
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.api_error("list containers", err))?;
        Ok(listed.into_iter().map(summary_from_list).collect())
    }

    /// The container's current state, or None when there is no such container.
    pub async fn inspect_container(
        &self,
        id_or_name: &str,
    ) -> Result<Option<ContainerSummary>, EngineError> {
        match self
            .docker
            .inspect_container(id_or_name, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => Ok(Some(summary_from_inspect(inspect))),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(self.api_error("inspect a container", err)),
        }
    }

    /// Creates the container and connects it to all its networks, so that it is complete
    /// when started. Returns the container id. Never pulls: a missing image is
    /// [`EngineError::ImageMissing`].
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.create(spec, create_body(spec)).await
    }

    /// As [`Engine::create_container`], for a one-off container whose caller attaches to its
    /// standard input (`berth run`): when the caller closes its end, the container's input
    /// closes too (Docker's `StdinOnce`), so a command reading to the end (`psql < dump.sql`)
    /// sees it, as with `docker compose run`.
    pub async fn create_attached_container(
        &self,
        spec: &ContainerSpec,
    ) -> Result<String, EngineError> {
        let mut body = create_body(spec);
        body.stdin_once = Some(spec.stdin_open);
        self.create(spec, body).await
    }

    async fn create(
        &self,
        spec: &ContainerSpec,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|err| match server_error(&err) {
                Some((404, message)) if message.contains("No such image") => {
                    EngineError::ImageMissing {
                        image: spec.image.clone(),
                    }
                }
                _ => self.api_error("create a container", err),
            })?;
        // The create call takes one endpoint only (before API 1.44), so the other networks
        // are connected here, before anyone can start the container without them.
        if spec.network_mode.is_none() {
            for attachment in spec.networks.iter().skip(1) {
                let request = NetworkConnectRequest {
                    container: created.id.clone(),
                    endpoint_config: Some(endpoint(attachment)),
                };
                if let Err(err) = self
                    .docker
                    .connect_network(&attachment.network, request)
                    .await
                {
                    // A half-connected container would behave differently from its spec;
                    // remove it so that a retry starts clean.
                    let _ = self.remove_container(&created.id, true, true).await;
                    return Err(self.api_error("connect a container to a network", err));
                }
            }
        }
        Ok(created.id)
    }

    /// Starts a created or stopped container. A published host port that is taken is
    /// reported as [`EngineError::PortInUse`] with the port.
    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(err) => match server_error(&err) {
                Some((304, _)) => Ok(()),
                Some((404, _)) => Err(EngineError::NotFound {
                    what: "container",
                    name: id.to_string(),
                }),
                Some((_, message)) if is_port_conflict(message) => {
                    let port = conflicting_port(message).unwrap_or_else(|| "(unknown)".into());
                    let container = match self.inspect_container(id).await {
                        Ok(Some(found)) => found.name,
                        _ => id.to_string(),
                    };
                    Err(EngineError::PortInUse { port, container })
                }
                _ => Err(self.api_error("start a container", err)),
            },
        }
    }

    /// Stops the container, waiting `timeout` (or its own stop timeout) before SIGKILL. A
    /// container that is already stopped, or absent, is fine.
    pub async fn stop_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            t: timeout.map(seconds_i32),
            ..Default::default()
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if matches!(server_error(&err), Some((304 | 404, _))) => Ok(()),
            Err(err) => Err(self.api_error("stop a container", err)),
        }
    }

    /// Stops and starts the container again.
    pub async fn restart_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), EngineError> {
        let options = RestartContainerOptions {
            t: timeout.map(seconds_i32),
            ..Default::default()
        };
        match self.docker.restart_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Err(EngineError::NotFound {
                what: "container",
                name: id.to_string(),
            }),
            Err(err) => Err(self.api_error("restart a container", err)),
        }
    }

    /// Sends `signal` (e.g. `SIGHUP`) to the container's main process. The container must
    /// be running: the engine refuses a stopped one, and this says so.
    pub async fn kill_container(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        match self.docker.kill_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Err(EngineError::NotFound {
                what: "container",
                name: id.to_string(),
            }),
            Err(err) => Err(self.api_error("signal a container", err)),
        }
    }

    /// Renames a container, so that a replacement can take its name while it is kept aside.
    pub async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptions {
            name: new_name.to_string(),
        };
        match self.docker.rename_container(id, options).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Err(EngineError::NotFound {
                what: "container",
                name: id.to_string(),
            }),
            Err(err) => Err(self.api_error("rename a container", err)),
        }
    }

    /// Removes the container (killing it first when `force`). An absent container is fine.
    pub async fn remove_container(
        &self,
        id: &str,
        force: bool,
        remove_anonymous_volumes: bool,
    ) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            force,
            v: remove_anonymous_volumes,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            // Another remove of the same container is already under way: the outcome is
            // the one the caller wants.
            Err(err) if matches!(server_error(&err), Some((409, message)) if message.contains("already in progress")) => {
                Ok(())
            }
            Err(err) => Err(self.api_error("remove a container", err)),
        }
    }
}

/// The engine takes whole seconds for stop timeouts; sub-second grace periods round up so
/// that a 500ms grace period does not become an immediate SIGKILL.
fn seconds_i32(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn endpoint(attachment: &crate::NetworkAttachment) -> EndpointSettings {
    EndpointSettings {
        aliases: non_empty(&attachment.aliases),
        ipam_config: attachment
            .ipv4_address
            .as_ref()
            .map(|address| EndpointIpamConfig {
                ipv4_address: Some(address.clone()),
                ..Default::default()
            }),
        ..Default::default()
    }
}

fn health_config(health: &HealthSpec) -> HealthConfig {
    HealthConfig {
        test: Some(health.test.clone()),
        interval: health.interval.map(nanos),
        timeout: health.timeout.map(nanos),
        start_period: health.start_period.map(nanos),
        start_interval: health.start_interval.map(nanos),
        retries: health
            .retries
            .map(|retries| i64::try_from(retries).unwrap_or(i64::MAX)),
    }
}

fn restart_policy(policy: &RestartPolicy) -> bollard::models::RestartPolicy {
    let (name, maximum_retry_count) = match policy {
        RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
        RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
        RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        RestartPolicy::OnFailure { max_retries } => {
            (RestartPolicyNameEnum::ON_FAILURE, *max_retries)
        }
    };
    bollard::models::RestartPolicy {
        name: Some(name),
        maximum_retry_count,
    }
}

fn propagation(mode: &str) -> Option<MountBindOptionsPropagationEnum> {
    Some(match mode {
        "private" => MountBindOptionsPropagationEnum::PRIVATE,
        "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
        "shared" => MountBindOptionsPropagationEnum::SHARED,
        "rshared" => MountBindOptionsPropagationEnum::RSHARED,
        "slave" => MountBindOptionsPropagationEnum::SLAVE,
        "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
        _ => return None,
    })
}

/// Splits the mounts into the legacy `Binds` strings and `Mounts` objects. Binds that must
/// create a missing host path, or relabel it for SELinux, go through `Binds`: only that
/// form does either on API 1.41 (`CreateMountpoint` arrived in 1.42, and `Mounts` has no
/// SELinux option), which is also how Compose sends them.
fn mounts(specs: &[MountSpec]) -> (Vec<String>, Vec<Mount>) {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for spec in specs {
        match spec {
            MountSpec::Bind {
                source,
                target,
                read_only,
                create_host_path,
                propagation: mode,
                selinux,
            } if *create_host_path || selinux.is_some() => {
                let mut options = Vec::new();
                if *read_only {
                    options.push("ro".to_string());
                }
                options.extend(mode.iter().cloned());
                options.extend(selinux.iter().cloned());
                if options.is_empty() {
                    binds.push(format!("{source}:{target}"));
                } else {
                    binds.push(format!("{source}:{target}:{}", options.join(",")));
                }
            }
            MountSpec::Bind {
                source,
                target,
                read_only,
                propagation: mode,
                ..
            } => mounts.push(Mount {
                typ: Some(MountType::BIND),
                source: Some(source.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                bind_options: mode.as_deref().and_then(propagation).map(|propagation| {
                    MountBindOptions {
                        propagation: Some(propagation),
                        ..Default::default()
                    }
                }),
                ..Default::default()
            }),
            MountSpec::Volume {
                source,
                target,
                read_only,
                nocopy,
                subpath,
            } => mounts.push(Mount {
                typ: Some(MountType::VOLUME),
                source: source.clone(),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                volume_options: (*nocopy || subpath.is_some()).then(|| MountVolumeOptions {
                    no_copy: Some(*nocopy),
                    subpath: subpath.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            MountSpec::Tmpfs {
                target,
                size_bytes,
                mode,
            } => mounts.push(Mount {
                typ: Some(MountType::TMPFS),
                target: Some(target.clone()),
                tmpfs_options: (size_bytes.is_some() || mode.is_some()).then(|| {
                    MountTmpfsOptions {
                        size_bytes: *size_bytes,
                        mode: mode.map(i64::from),
                        ..Default::default()
                    }
                }),
                ..Default::default()
            }),
        }
    }
    (binds, mounts)
}

/// `tmpfs` entries are `PATH` or `PATH:OPTIONS`, as on the docker command line.
fn tmpfs(entries: &[String]) -> Option<HashMap<String, String>> {
    let map: HashMap<String, String> = entries
        .iter()
        .map(|entry| match entry.split_once(':') {
            Some((path, options)) => (path.to_string(), options.to_string()),
            None => (entry.clone(), String::new()),
        })
        .collect();
    (!map.is_empty()).then_some(map)
}

/// The exposed ports and the bindings for the published ports; several bindings of one
/// container port (e.g. IPv4 and IPv6 addresses) are kept together.
fn ports(spec: &ContainerSpec) -> (Vec<String>, PortMap) {
    let mut exposed = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    for port in &spec.ports {
        let key = format!("{}/{}", port.container_port, port.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(bollard::models::PortBinding {
                host_ip: port.host_ip.clone(),
                // An empty host port asks the engine for a random one.
                host_port: Some(port.host_port.clone().unwrap_or_default()),
            });
    }
    (exposed, bindings)
}

/// Translates every field of the spec into the engine's create request.
pub(crate) fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let (binds, mounts) = mounts(&spec.mounts);
    let (exposed_ports, port_bindings) = ports(spec);
    // Compose's network mode is the first network's name when attaching to networks.
    let network_mode = spec
        .network_mode
        .clone()
        .or_else(|| spec.networks.first().map(|first| first.network.clone()));
    let networking_config = match (&spec.network_mode, spec.networks.first()) {
        (None, Some(first)) => Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(first.network.clone(), endpoint(first))])),
        }),
        _ => None,
    };
    let log_config = spec.log_driver.as_ref().map(|driver| HostConfigLogConfig {
        typ: Some(driver.clone()),
        config: Some(hash_map(&spec.log_options)),
    });
    let host_config = HostConfig {
        binds: non_empty(&binds),
        mounts: non_empty(&mounts),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        restart_policy: Some(restart_policy(&spec.restart)),
        network_mode,
        init: spec.init,
        privileged: Some(spec.privileged),
        readonly_rootfs: Some(spec.read_only_rootfs),
        extra_hosts: non_empty(&spec.extra_hosts),
        cap_add: non_empty(&spec.cap_add),
        cap_drop: non_empty(&spec.cap_drop),
        dns: non_empty(&spec.dns),
        sysctls: (!spec.sysctls.is_empty()).then(|| hash_map(&spec.sysctls)),
        tmpfs: tmpfs(&spec.tmpfs),
        memory: spec.memory_bytes,
        nano_cpus: spec.nano_cpus,
        pids_limit: spec.pids_limit,
        shm_size: spec.shm_size_bytes,
        log_config,
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.command.clone(),
        env: non_empty(&spec.env),
        labels: Some(hash_map(&spec.labels)),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        tty: Some(spec.tty),
        open_stdin: Some(spec.stdin_open),
        attach_stdin: Some(spec.stdin_open),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec
            .stop_timeout
            .map(|timeout| i64::from(seconds_i32(timeout))),
        healthcheck: spec.healthcheck.as_ref().map(health_config),
        exposed_ports: non_empty(&exposed_ports),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// Whether a start failure is a published port that something else holds. The engine says
/// "port is already allocated" when another container has it and "address already in
/// use" when a host process does.
fn is_port_conflict(message: &str) -> bool {
    message.contains("port is already allocated") || message.contains("address already in use")
}

/// The `IP:PORT` (or port) from the engine's port conflict message, e.g.
/// `Bind for 127.0.0.1:8080 failed: port is already allocated` or
/// `listen tcp4 127.0.0.1:8080: bind: address already in use`.
fn conflicting_port(message: &str) -> Option<String> {
    if let Some(at) = message.find("Bind for ") {
        let rest = &message[at + "Bind for ".len()..];
        return rest.split_whitespace().next().map(str::to_string);
    }
    let at = message.find("listen ")?;
    let rest = &message[at + "listen ".len()..];
    let address = rest.split_whitespace().nth(1)?;
    Some(address.trim_end_matches(':').to_string())
}

pub(crate) fn summary_from_list(container: bollard::models::ContainerSummary) -> ContainerSummary {
    let status = container.status.unwrap_or_default();
    let state = container
        .state
        .map(|state| state.to_string())
        .unwrap_or_default();
    let exit_code = exit_code_from_status(&status);
    ContainerSummary {
        id: container.id.unwrap_or_default(),
        name: container
            .names
            .and_then(|names| names.into_iter().next())
            .map(|name| name.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: container.image.unwrap_or_default(),
        image_id: container.image_id.unwrap_or_default(),
        labels: container.labels.unwrap_or_default().into_iter().collect(),
        health: health_from_status(&status),
        status,
        state,
        exit_code,
        ports: container
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|port| PublishedPort {
                container_port: port.private_port,
                protocol: port
                    .typ
                    .map(|typ| typ.to_string())
                    .unwrap_or_else(|| "tcp".into()),
                host_ip: port.ip,
                host_port: port.public_port,
            })
            .collect(),
        created: container.created.unwrap_or_default(),
    }
}

/// The list API of engines before 1.52 reports health only inside the status text, e.g.
/// `Up 5 seconds (health: starting)`.
fn health_from_status(status: &str) -> Option<String> {
    if status.contains("(healthy)") {
        Some("healthy".into())
    } else if status.contains("(unhealthy)") {
        Some("unhealthy".into())
    } else if status.contains("(health: starting)") {
        Some("starting".into())
    } else {
        None
    }
}

/// `Exited (1) 3 seconds ago` → 1.
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

pub(crate) fn summary_from_inspect(inspect: ContainerInspectResponse) -> ContainerSummary {
    let state = inspect.state.unwrap_or_default();
    let status_text = state
        .status
        .map(|status| status.to_string())
        .unwrap_or_default();
    let health = state
        .health
        .and_then(|health| health.status)
        .map(|status| status.to_string())
        .filter(|status| !status.is_empty() && status != "none");
    let exit_code = matches!(status_text.as_str(), "exited" | "dead")
        .then_some(state.exit_code)
        .flatten();
    let config = inspect.config.unwrap_or_default();
    let mut ports = Vec::new();
    for (key, bindings) in inspect
        .network_settings
        .and_then(|settings| settings.ports)
        .unwrap_or_default()
    {
        let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            ports.push(PublishedPort {
                container_port,
                protocol: protocol.to_string(),
                host_ip: binding.host_ip.filter(|ip| !ip.is_empty()),
                host_port: binding.host_port.and_then(|port| port.parse().ok()),
            });
        }
    }
    ports.sort_by(|a, b| {
        (a.container_port, &a.protocol, &a.host_ip).cmp(&(
            b.container_port,
            &b.protocol,
            &b.host_ip,
        ))
    });
    // Inspect has no human status; this mirrors the list API's wording closely enough.
    let status = match (&exit_code, &health) {
        (Some(code), _) => format!("Exited ({code})"),
        (None, Some(health)) => format!("{status_text} ({health})"),
        (None, None) => status_text.clone(),
    };
    ContainerSummary {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.unwrap_or_default(),
        image_id: inspect.image.unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        state: status_text,
        health,
        status,
        exit_code,
        ports,
        created: inspect.created.as_deref().map(unix_seconds).unwrap_or(0),
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as the engine writes them
/// (`2024-05-01T12:34:56.789Z`); 0 when it cannot be read. Written out here to avoid a
/// date crate for one conversion.
fn unix_seconds(text: &str) -> i64 {
    let parse = || -> Option<i64> {
        let (date, time) = text.split_once('T')?;
        let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
        let (year, month, day) = (date.next()??, date.next()??, date.next()??);
        let (month, day) = (u32::try_from(month).ok()?, u32::try_from(day).ok()?);
        let mut time = time
            .get(..8)?
            .split(':')
            .map(|part| part.parse::<i64>().ok());
        let (hour, minute, second) = (time.next()??, time.next()??, time.next()??);
        let days = berth_base::civil::days_from_civil(year, month, day);
        Some(days * 86_400 + hour * 3600 + minute * 60 + second)
    };
    parse().unwrap_or(0)
}

impl Engine {
    /// The container's IPv4 address on `network`, or None when it is not attached there (or
    /// not running, when Docker reports no address). A restarted container can come back
    /// with another address, so callers read it after every start.
    pub async fn container_ip(
        &self,
        id_or_name: &str,
        network: &str,
    ) -> Result<Option<std::net::IpAddr>, EngineError> {
        match self
            .docker
            .inspect_container(id_or_name, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => Ok(inspect
                .network_settings
                .and_then(|s| s.networks)
                .and_then(|mut n| n.remove(network))
                .and_then(|n| n.ip_address)
                .and_then(|ip| ip.parse().ok())),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(self.api_error("inspect a container", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NetworkAttachment, PortBinding};
    use std::collections::BTreeMap;

    fn full_spec() -> ContainerSpec {
        ContainerSpec {
            name: "shop-web-1".into(),
            image: "shop-web:latest".into(),
            entrypoint: Some(vec![]),
            command: Some(vec!["serve".into()]),
            env: vec!["A=1".into()],
            labels: BTreeMap::from([("k".into(), "v".into())]),
            user: Some("1000".into()),
            working_dir: Some("/app".into()),
            hostname: Some("web".into()),
            tty: true,
            stdin_open: true,
            init: Some(true),
            privileged: true,
            read_only_rootfs: true,
            stop_signal: Some("SIGINT".into()),
            stop_timeout: Some(Duration::from_millis(1500)),
            healthcheck: Some(HealthSpec {
                test: vec!["CMD".into(), "/testapp".into(), "health".into()],
                interval: Some(Duration::from_secs(1)),
                timeout: Some(Duration::from_secs(2)),
                start_period: Some(Duration::from_secs(3)),
                start_interval: Some(Duration::from_millis(500)),
                retries: Some(4),
            }),
            restart: RestartPolicy::OnFailure {
                max_retries: Some(3),
            },
            ports: vec![
                PortBinding {
                    container_port: 8080,
                    protocol: "tcp".into(),
                    host_ip: Some("127.0.0.1".into()),
                    host_port: None,
                },
                PortBinding {
                    container_port: 8080,
                    protocol: "tcp".into(),
                    host_ip: Some("::1".into()),
                    host_port: Some("9000".into()),
                },
            ],
            mounts: vec![
                MountSpec::Bind {
                    source: "/src".into(),
                    target: "/app".into(),
                    read_only: true,
                    create_host_path: true,
                    propagation: None,
                    selinux: Some("z".into()),
                },
                MountSpec::Bind {
                    source: "/etc/x".into(),
                    target: "/x".into(),
                    read_only: false,
                    create_host_path: false,
                    propagation: Some("rslave".into()),
                    selinux: None,
                },
                MountSpec::Volume {
                    source: Some("data".into()),
                    target: "/data".into(),
                    read_only: false,
                    nocopy: true,
                    subpath: None,
                },
                MountSpec::Tmpfs {
                    target: "/run".into(),
                    size_bytes: Some(1024),
                    mode: Some(0o1777),
                },
            ],
            networks: vec![
                NetworkAttachment {
                    network: "front".into(),
                    aliases: vec!["web".into()],
                    ipv4_address: Some("10.0.0.5".into()),
                },
                NetworkAttachment {
                    network: "back".into(),
                    aliases: vec![],
                    ipv4_address: None,
                },
            ],
            network_mode: None,
            extra_hosts: vec!["db:10.0.0.9".into()],
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            dns: vec!["1.1.1.1".into()],
            sysctls: BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]),
            tmpfs: vec!["/tmp:size=64k".into(), "/cache".into()],
            memory_bytes: Some(1 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(100),
            shm_size_bytes: Some(1 << 16),
            log_driver: Some("json-file".into()),
            log_options: BTreeMap::from([("max-size".into(), "1m".into())]),
        }
    }

    #[test]
    fn every_field_reaches_the_create_request() {
        let body = create_body(&full_spec());
        assert_eq!(body.image.as_deref(), Some("shop-web:latest"));
        assert_eq!(body.entrypoint, Some(vec![]));
        assert_eq!(body.cmd, Some(vec!["serve".to_string()]));
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(body.labels.as_ref().unwrap()["k"], "v");
        assert_eq!(body.user.as_deref(), Some("1000"));
        assert_eq!(body.working_dir.as_deref(), Some("/app"));
        assert_eq!(body.hostname.as_deref(), Some("web"));
        assert_eq!((body.tty, body.open_stdin), (Some(true), Some(true)));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(body.stop_timeout, Some(2), "1.5s rounds up");
        let health = body.healthcheck.as_ref().unwrap();
        assert_eq!(health.interval, Some(1_000_000_000));
        assert_eq!(health.start_interval, Some(500_000_000));
        assert_eq!(health.retries, Some(4));
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_string()]));

        let host = body.host_config.as_ref().unwrap();
        let bindings = host.port_bindings.as_ref().unwrap()["8080/tcp"]
            .as_ref()
            .unwrap();
        assert_eq!(bindings.len(), 2);
        assert_eq!(bindings[0].host_port.as_deref(), Some(""));
        assert_eq!(bindings[1].host_port.as_deref(), Some("9000"));
        assert_eq!(
            host.binds,
            Some(vec!["/src:/app:ro,z".to_string()]),
            "a bind that creates its host path goes through Binds"
        );
        let mounts = host.mounts.as_ref().unwrap();
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(
            mounts[0].bind_options.as_ref().unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSLAVE)
        );
        assert_eq!(mounts[1].source.as_deref(), Some("data"));
        assert_eq!(
            mounts[1].volume_options.as_ref().unwrap().no_copy,
            Some(true)
        );
        assert_eq!(mounts[2].tmpfs_options.as_ref().unwrap().mode, Some(0o1777));
        let restart = host.restart_policy.as_ref().unwrap();
        assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(restart.maximum_retry_count, Some(3));
        assert_eq!(host.network_mode.as_deref(), Some("front"));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.9".to_string()]));
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.dns, Some(vec!["1.1.1.1".to_string()]));
        assert_eq!(host.sysctls.as_ref().unwrap()["net.core.somaxconn"], "1024");
        let tmpfs = host.tmpfs.as_ref().unwrap();
        assert_eq!(tmpfs["/tmp"], "size=64k");
        assert_eq!(tmpfs["/cache"], "");
        assert_eq!(host.memory, Some(1 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(100));
        assert_eq!(host.shm_size, Some(1 << 16));
        let log = host.log_config.as_ref().unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.as_ref().unwrap()["max-size"], "1m");

        // Only the first network is attached at create; the rest are connected afterwards.
        let endpoints = body
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        assert_eq!(endpoints.len(), 1);
        let front = &endpoints["front"];
        assert_eq!(front.aliases, Some(vec!["web".to_string()]));
        assert_eq!(
            front.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("10.0.0.5")
        );
    }

    #[test]
    fn network_mode_wins_over_networks() {
        let spec = ContainerSpec {
            network_mode: Some("host".into()),
            ..full_spec()
        };
        let body = create_body(&spec);
        assert_eq!(
            body.host_config.unwrap().network_mode.as_deref(),
            Some("host")
        );
        assert!(body.networking_config.is_none());
    }

    #[test]
    fn a_minimal_spec_leaves_the_image_defaults_alone() {
        let body = create_body(&ContainerSpec {
            name: "x".into(),
            image: "img".into(),
            ..Default::default()
        });
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.cmd, None);
        assert_eq!(body.healthcheck, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.mounts, None);
        assert_eq!(host.binds, None);
        assert_eq!(host.network_mode, None);
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
    }

    #[test]
    fn port_conflicts_name_the_port() {
        let allocated = "driver failed programming external connectivity on endpoint x (abc): Bind for 127.0.0.1:45678 failed: port is already allocated";
        assert!(is_port_conflict(allocated));
        assert_eq!(
            conflicting_port(allocated).as_deref(),
            Some("127.0.0.1:45678")
        );
        let in_use = "driver failed programming external connectivity on endpoint x (abc): Error starting userland proxy: listen tcp4 127.0.0.1:45678: bind: address already in use";
        assert!(is_port_conflict(in_use));
        assert_eq!(conflicting_port(in_use).as_deref(), Some("127.0.0.1:45678"));
        assert!(!is_port_conflict("no such file"));
    }

    #[test]
    fn status_texts_give_health_and_exit_codes() {
        assert_eq!(
            health_from_status("Up 2 seconds (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(
            health_from_status("Up 2 minutes (unhealthy)").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(health_from_status("Up 2 minutes"), None);
        assert_eq!(
            exit_code_from_status("Exited (137) 1 second ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 1 second"), None);
    }

    #[test]
    fn engine_timestamps_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix_seconds("2024-05-01T12:34:56.789123Z"), 1_714_566_896);
        assert_eq!(unix_seconds("garbage"), 0);
    }
}
