//! `berth proxy boot`: the proxy as container `berth-proxy`, built from this binary.
//!
//! A first boot builds `berth/proxy:<hash>` (the static binary alone, `FROM scratch`) and
//! runs it with `berth proxy supervise` as PID 1. A later boot with a different binary does
//! not touch the container: it puts the binary into the data directory, points
//! `bin/current` at it and sends SIGHUP, and the supervisor starts it with `--takeover`.
//! Replacing the container instead would close the published ports for a moment.

use super::super::CliError;
use super::container::{self, SOCKET_LABEL, STOP_TIMEOUT};
use crate::args::ProxyBootArgs;
use berth_engine::{
    BuildEvent, BuildSpec, ContainerSpec, ContainerSummary, Engine, MountSpec, NetworkAttachment,
    PortBinding, RestartPolicy,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The bridge network routed services join so that the proxy reaches them by address.
const NETWORK: &str = "berth";
const CONTENT_KEY: &str = "berth.content-key";
const ROLE: &str = "berth.role";
/// Where the container keeps its data on the host, so that an upgrade writes the new
/// binary where the running container sees it, whatever --data-dir says this time.
const DATA_DIR_LABEL: &str = "berth.proxy.data-dir";
const CONTAINER_DATA: &str = "/var/lib/berth/proxy";
const CONTAINER_RUN: &str = "/run/berth";
const DOCKERFILE: &str = "FROM scratch\nCOPY berth /berth\nENTRYPOINT [\"/berth\"]\n";
const STATIC_BUILD: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target x86_64-unknown-linux-gnu";
/// How a user gets a berth binary the proxy container can run (README.md, "Install").
pub(super) const STATIC_INSTALL: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo install --locked --path crates/cli --target x86_64-unknown-linux-gnu";
/// How long a started proxy, or an upgrade, may take before boot reports it failed.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(socket: PathBuf, b: &ProxyBootArgs) -> Result<(), CliError> {
    let listen = host_addr("--listen", &b.listen)?;
    let tls_listen = b
        .tls_listen
        .as_deref()
        .map(|a| host_addr("--tls-listen", a))
        .transpose()?;
    let binary_path = match &b.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| {
            CliError::Usage(format!(
                "cannot find this binary ({e}); pass the berth binary to run with --binary"
            ))
        })?,
    };
    let binary = match read_binary(&binary_path) {
        Ok(Linkage::Static(binary)) => binary,
        Ok(Linkage::Dynamic) => {
            return Err(CliError::Usage(format!(
                "{} is dynamically linked, and the proxy image has no C library to load it; build a static binary with `{STATIC_BUILD}` and pass it with --binary",
                binary_path.display()
            )))
        }
        Ok(Linkage::NotElf(why)) => {
            return Err(CliError::Usage(format!(
                "{} is not a Linux executable ({why}); pass a static berth binary with --binary",
                binary_path.display()
            )))
        }
        Err(e) => {
            return Err(CliError::Usage(format!(
                "cannot read {}: {e}; pass the berth binary to run with --binary",
                binary_path.display()
            )))
        }
    };
    let mut boot = Boot::new(socket, listen, binary)?;
    boot.tls_listen = tls_listen;
    boot.data_dir = b.data_dir.as_deref().map(absolute).transpose()?;
    boot.force = b.force;
    super::block_on(boot.run())
}

/// A berth binary as the proxy image would hold it.
pub(super) enum Linkage {
    /// Statically linked: runs in a `FROM scratch` image. The bytes are the binary.
    Static(Vec<u8>),
    /// Names a dynamic loader, which a `FROM scratch` image lacks.
    Dynamic,
    /// Not an ELF executable at all; the reason.
    NotElf(&'static str),
}

pub(super) fn read_binary(path: &Path) -> std::io::Result<Linkage> {
    let binary = std::fs::read(path)?;
    Ok(match has_interpreter(&binary) {
        Err(why) => Linkage::NotElf(why),
        Ok(true) => Linkage::Dynamic,
        Ok(false) => Linkage::Static(binary),
    })
}

pub(super) struct Boot {
    container: String,
    listen: SocketAddr,
    tls_listen: Option<SocketAddr>,
    /// As given; the default is only chosen for a new container.
    data_dir: Option<PathBuf>,
    socket: PathBuf,
    socket_name: String,
    binary: Vec<u8>,
    hash: String,
    force: bool,
    /// Where progress lines go: stdout for `berth proxy boot`, stderr when `up` or `deploy`
    /// start the proxy, whose stdout may be JSON.
    pub(super) to_stderr: bool,
}

impl Boot {
    /// A boot of `binary` (statically linked) as the proxy container with the defaults of
    /// `berth proxy boot`.
    pub(super) fn new(
        socket: PathBuf,
        listen: SocketAddr,
        binary: Vec<u8>,
    ) -> Result<Boot, CliError> {
        let hash = blake3::hash(&binary).to_hex().to_string();
        let socket = absolute(&socket)?;
        let socket_name = socket
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--admin-socket {} does not name a file; give a path like /run/berth/proxy.sock",
                    socket.display()
                ))
            })?;
        Ok(Boot {
            container: container::name(),
            listen,
            tls_listen: None,
            data_dir: None,
            socket,
            socket_name,
            binary,
            hash,
            force: false,
            to_stderr: false,
        })
    }

    fn say(&self, line: &str) {
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    fn short(&self) -> &str {
        &self.hash[..12]
    }

    pub(super) async fn run(&self) -> Result<(), CliError> {
        let engine = Engine::connect().await?;
        if let Some(existing) = engine.inspect_container(&self.container).await? {
            if existing.state == "running" && !self.force {
                return self.upgrade(&engine, &existing).await;
            }
            self.say(&format!(
                "replacing container {} ({}{})",
                self.container,
                existing.state,
                if self.force { ", --force" } else { "" }
            ));
            engine.remove_container(&existing.id, true, false).await?;
        }
        self.create(&engine).await
    }

    async fn create(&self, engine: &Engine) -> Result<(), CliError> {
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => absolute(&super::state_dir())?,
        };
        let run_dir = self
            .socket
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        create_dir(&data_dir, 0o755)?;
        create_dir(&run_dir, 0o700)?;
        // A new container runs its image's binary; a pointer left by an earlier upgrade
        // would make its supervisor start that older binary instead.
        match std::fs::remove_file(data_dir.join("bin").join("current")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::Io(format!(
                    "cannot remove {}: {e}; remove it by hand and boot again",
                    data_dir.join("bin/current").display()
                )))
            }
            _ => {}
        }

        let image = format!("berth/proxy:{}", self.short());
        if engine.image_id(&image).await?.is_none() {
            let started = Instant::now();
            let spec = BuildSpec {
                dockerfile_inline: Some(DOCKERFILE.to_string()),
                labels: BTreeMap::from([
                    (CONTENT_KEY.to_string(), self.hash.clone()),
                    (ROLE.to_string(), "proxy".to_string()),
                ]),
                tags: vec![image.clone()],
                ..Default::default()
            };
            let files = [("berth".to_string(), self.binary.clone(), 0o755)];
            engine
                .build_image_from_files(&spec, &files, |_: BuildEvent| {})
                .await?;
            self.say(&format!(
                "built {image} in {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
        engine
            .ensure_network(&berth_deploy::labels::proxy_network())
            .await?;

        let socket_inside = format!("{CONTAINER_RUN}/{}", self.socket_name);
        let mut entrypoint: Vec<String> = [
            "/berth",
            "proxy",
            "--admin-socket",
            &socket_inside,
            "supervise",
            "--listen",
            "0.0.0.0:80",
        ]
        .map(String::from)
        .to_vec();
        let port = |container_port: u16, host: SocketAddr| PortBinding {
            container_port,
            protocol: "tcp".to_string(),
            host_ip: Some(host.ip().to_string()),
            host_port: Some(host.port().to_string()),
        };
        let mut ports = vec![port(80, self.listen)];
        if let Some(tls) = self.tls_listen {
            entrypoint.extend(["--tls-listen".to_string(), "0.0.0.0:443".to_string()]);
            ports.push(port(443, tls));
        }
        entrypoint.extend([
            "--state-file".to_string(),
            format!("{CONTAINER_DATA}/state.json"),
        ]);
        let bind = |source: &Path, target: &str| MountSpec::Bind {
            source: source.display().to_string(),
            target: target.to_string(),
            read_only: false,
            create_host_path: false,
            propagation: None,
            selinux: None,
        };
        let spec = ContainerSpec {
            name: self.container.clone(),
            image: image.clone(),
            entrypoint: Some(entrypoint),
            command: Some(vec![]),
            labels: BTreeMap::from([
                (ROLE.to_string(), "proxy".to_string()),
                (CONTENT_KEY.to_string(), self.hash.clone()),
                (DATA_DIR_LABEL.to_string(), data_dir.display().to_string()),
                (SOCKET_LABEL.to_string(), self.socket.display().to_string()),
            ]),
            stop_timeout: Some(STOP_TIMEOUT),
            restart: RestartPolicy::UnlessStopped,
            ports,
            mounts: vec![
                bind(&data_dir, CONTAINER_DATA),
                bind(&run_dir, CONTAINER_RUN),
            ],
            networks: vec![NetworkAttachment {
                network: NETWORK.to_string(),
                aliases: vec![],
                ipv4_address: None,
            }],
            ..Default::default()
        };
        let id = engine.create_container(&spec).await?;
        if let Err(e) = engine.start_container(&id).await {
            // A created container that cannot start would be restarted by nobody and block
            // the name; remove it so that the next boot starts clean.
            let _ = engine.remove_container(&id, true, true).await;
            return Err(e.into());
        }
        let client = berth_proxy_api::AdminClient::new(&self.socket);
        if wait_for(READY_TIMEOUT, || async {
            client.status().await.ok().map(|s| s.pid)
        })
        .await
        .is_none()
        {
            let logs = engine
                .last_log_lines(&id, 20)
                .await
                .unwrap_or_default()
                .join("\n");
            return Err(CliError::Failed(format!(
                "{} started but its proxy did not answer on {} within {}s; its last log lines:\n{logs}",
                self.container,
                self.socket.display(),
                READY_TIMEOUT.as_secs()
            )));
        }
        self.say(&format!(
            "{} runs berth {} ({image}), publishing {}{}, admin socket {}",
            self.container,
            self.short(),
            self.listen,
            self.tls_listen
                .map(|a| format!(" and {a} (tls)"))
                .unwrap_or_default(),
            self.socket.display()
        ));
        Ok(())
    }

    async fn upgrade(&self, engine: &Engine, existing: &ContainerSummary) -> Result<(), CliError> {
        let Some(data_dir) = existing.labels.get(DATA_DIR_LABEL).map(PathBuf::from) else {
            return Err(CliError::Usage(format!(
                "container {} was not started by `berth proxy boot` (it has no {DATA_DIR_LABEL} label); remove it, or boot with --force to replace it",
                self.container
            )));
        };
        if let Some(given) = &self.data_dir {
            if *given != data_dir {
                return Err(CliError::Usage(format!(
                    "{} keeps its data in {}, not {}; boot with --data-dir {} to upgrade it, or with --force to recreate it",
                    self.container,
                    data_dir.display(),
                    given.display(),
                    data_dir.display()
                )));
            }
        }
        let bin = data_dir.join("bin");
        let pointer = bin.join("current");
        let previous = std::fs::read_to_string(&pointer)
            .ok()
            .map(|t| t.trim().to_string());
        let running = previous
            .as_deref()
            .and_then(|name| name.strip_prefix("berth-"))
            .map(str::to_string)
            .or_else(|| existing.labels.get(CONTENT_KEY).cloned());
        if running.as_deref() == Some(self.hash.as_str()) {
            println!(
                "{} is current: it runs berth {}; nothing to do (--force recreates it)",
                self.container,
                self.short()
            );
            return Ok(());
        }

        let name = format!("berth-{}", self.hash);
        create_dir(&bin, 0o755)?;
        write_atomic(&bin.join(&name), &self.binary, 0o755)?;
        write_atomic(&pointer, format!("{name}\n").as_bytes(), 0o644)?;

        let socket = existing
            .labels
            .get(SOCKET_LABEL)
            .map(PathBuf::from)
            .unwrap_or_else(|| self.socket.clone());
        let client = berth_proxy_api::AdminClient::new(&socket);
        let old_pid = tokio::time::timeout(Duration::from_secs(5), client.status())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|s| s.pid);
        engine.kill_container(&existing.id, "SIGHUP").await?;
        let Some(old_pid) = old_pid else {
            println!(
                "sent {} the new binary (berth {}); its admin socket {} did not answer, so see `docker logs {}` for the takeover",
                self.container,
                self.short(),
                socket.display(),
                self.container
            );
            return Ok(());
        };
        let new_pid = wait_for(READY_TIMEOUT, || async {
            match tokio::time::timeout(Duration::from_secs(2), client.status()).await {
                Ok(Ok(s)) if s.pid != old_pid => Some(s.pid),
                _ => None,
            }
        })
        .await;
        let Some(new_pid) = new_pid else {
            // The supervisor keeps the old proxy when the new one cannot take over; point
            // back at the binary that runs, so that a restart does not try the bad one.
            match &previous {
                Some(prev) => write_atomic(&pointer, format!("{prev}\n").as_bytes(), 0o644)?,
                None => {
                    let _ = std::fs::remove_file(&pointer);
                }
            }
            let logs = engine
                .last_log_lines(&existing.id, 20)
                .await
                .unwrap_or_default()
                .join("\n");
            return Err(CliError::Failed(format!(
                "the new binary did not take over within {}s, and pid {old_pid} keeps serving; its last log lines:\n{logs}",
                READY_TIMEOUT.as_secs()
            )));
        };
        prune(&bin, &name, previous.as_deref());
        println!(
            "upgraded {} to berth {} without a gap: pid {old_pid} handed its sockets to pid {new_pid} and drains",
            self.container,
            self.short()
        );
        Ok(())
    }
}

/// Polls `probe` every 100 ms until it gives a value or `timeout` passes.
async fn wait_for<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn host_addr(flag: &str, text: &str) -> Result<SocketAddr, CliError> {
    text.parse().map_err(|_| {
        CliError::Usage(format!(
            "{flag} `{text}` is not a host IP:PORT address (for example 0.0.0.0:80)"
        ))
    })
}

/// The engine needs absolute host paths for bind mounts.
fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot make {} an absolute path: {e}; give an absolute path",
            path.display()
        ))
    })
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| {
            CliError::Io(format!(
                "cannot create {}: {e}; check its parent's permissions or pass another directory",
                dir.display()
            ))
        })
}

/// Writes a file so that a reader (the supervisor, or a crash) sees the old content or the
/// new, never a part: a temporary file beside it, flushed to disk, renamed over it.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    berth_base::atomic::write_mode(path, bytes, mode).map_err(|e| {
        CliError::Io(format!(
            "cannot write {}: {e}; check the data directory's permissions and free space",
            path.display()
        ))
    })
}

/// Removes the binaries of earlier upgrades, keeping the one now current and the one before
/// it (which may still be draining, and is the one to go back to).
fn prune(bin: &Path, current: &str, previous: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(bin) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("berth-") && name != current && Some(name.as_str()) != previous {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether an ELF executable names a program interpreter (a `PT_INTERP` program header):
/// the dynamic loader a dynamically linked binary needs, which a `FROM scratch` image lacks.
fn has_interpreter(elf: &[u8]) -> Result<bool, &'static str> {
    const PT_INTERP: u32 = 3;
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("no ELF header");
    }
    let little = match elf.get(5) {
        Some(1) => true,
        Some(2) => false,
        _ => return Err("unknown byte order"),
    };
    let bytes = |at: usize, n: usize| -> Result<u64, &'static str> {
        let slice = elf
            .get(at..at.checked_add(n).ok_or("truncated")?)
            .ok_or("truncated")?;
        let mut value = 0u64;
        for (i, b) in slice.iter().enumerate() {
            let shift = if little { i } else { n - 1 - i } * 8;
            value |= u64::from(*b) << shift;
        }
        Ok(value)
    };
    let (phoff, phentsize, phnum) = match elf.get(4) {
        Some(2) => (bytes(0x20, 8)?, bytes(0x36, 2)?, bytes(0x38, 2)?),
        Some(1) => (bytes(0x1c, 4)?, bytes(0x2a, 2)?, bytes(0x2c, 2)?),
        _ => return Err("unknown ELF class"),
    };
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .and_then(|a| usize::try_from(a).ok())
            .ok_or("truncated")?;
        if bytes(at, 4)? == u64::from(PT_INTERP) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 little-endian header with one program header of type `p_type`.
    fn elf64(p_type: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&p_type.to_le_bytes());
        elf
    }

    #[test]
    fn a_pt_interp_header_means_dynamically_linked() {
        assert_eq!(has_interpreter(&elf64(3)), Ok(true));
        assert_eq!(has_interpreter(&elf64(1)), Ok(false));
        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
        assert!(has_interpreter(&elf64(3)[..66]).is_err());
    }

    #[test]
    fn this_test_binary_is_dynamically_linked() {
        // Tests build without crt-static, so the test binary itself names ld-linux.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(has_interpreter(&me), Ok(true));
    }

    #[test]
    fn atomic_writes_replace_and_set_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth-x");
        write_atomic(&path, b"one", 0o755).unwrap();
        write_atomic(&path, b"two", 0o755).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn prune_keeps_the_current_and_the_previous_binary() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["berth-a", "berth-b", "berth-c", "current"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        prune(dir.path(), "berth-c", Some("berth-b"));
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["berth-b", "berth-c", "current"]);
    }
}
