//! `berth proxy …`: run the proxy, boot it as a container, and steer it through its admin
//! socket.

use super::CliError;
use crate::args::{
    ProxyArgs, ProxyCommand, ProxyDeployArgs, ProxyRouteAddArgs, ProxyRouteCommand, ProxyRunArgs,
    ProxyStatusArgs, TextFormat,
};
use berth_proxy::ProxyConfig;
use berth_proxy_api::{AdminClient, AdminError, RouteSpec, SetSpec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod autostart;
mod boot;
mod container;
mod published;
mod supervise;

pub(crate) use autostart::{for_deploy as start_for_deploy, for_up as start_for_up};

/// Runs a `berth proxy` command; `Ok` carries the exit code, which is the proxy's own for
/// `supervise`.
pub fn run(a: &ProxyArgs) -> Result<u8, CliError> {
    let socket = admin_socket(a.admin_socket.clone());
    match &a.command {
        ProxyCommand::Supervise(r) => supervise::run(socket, r),
        other => run_command(socket, other).map(|()| 0),
    }
}

fn run_command(socket: PathBuf, command: &ProxyCommand) -> Result<(), CliError> {
    match command {
        ProxyCommand::Supervise(_) => unreachable!("supervise is dispatched by run"),
        ProxyCommand::Run(r) => run_proxy(socket, r),
        ProxyCommand::Boot(b) => boot::run(socket, b),
        ProxyCommand::Stop => container::stop(&socket),
        ProxyCommand::Logs(l) => container::logs(l),
        ProxyCommand::Status(s) => block_on(status(&socket, s)),
        ProxyCommand::Route(ProxyRouteCommand::Add(r)) => {
            let spec = route_spec(r)?;
            block_on(async {
                AdminClient::new(socket)
                    .put_route(&spec)
                    .await
                    .map_err(admin)
            })?;
            println!("route {} added", r.name);
            Ok(())
        }
        ProxyCommand::Route(ProxyRouteCommand::Rm(r)) => {
            block_on(async {
                AdminClient::new(socket)
                    .remove_route(&r.name)
                    .await
                    .map_err(admin)
            })?;
            println!("route {} removed", r.name);
            Ok(())
        }
        ProxyCommand::Deploy(d) => deploy(socket, d),
        ProxyCommand::Weights(w) => {
            let mut weights = BTreeMap::new();
            for pair in &w.weights {
                let (set, weight) = pair
                    .split_once('=')
                    .and_then(|(s, w)| Some((s.to_string(), w.parse::<u32>().ok()?)))
                    .ok_or_else(|| {
                        CliError::Usage(format!(
                            "`{pair}` is not SET=WEIGHT (for example stable=90)"
                        ))
                    })?;
                weights.insert(set, weight);
            }
            block_on(async {
                AdminClient::new(socket)
                    .set_weights(&w.name, weights)
                    .await
                    .map_err(admin)
            })
        }
        ProxyCommand::Pause(p) => {
            let hold = duration("--hold", &p.hold)?;
            block_on(async {
                AdminClient::new(socket)
                    .pause(&p.name, hold)
                    .await
                    .map_err(admin)
            })
        }
        ProxyCommand::Resume(r) => block_on(async {
            AdminClient::new(socket)
                .resume(&r.name)
                .await
                .map_err(admin)
        }),
        ProxyCommand::Maintenance(m) => {
            let message = if m.off { None } else { m.message.clone() };
            block_on(async {
                AdminClient::new(socket)
                    .maintenance(&m.name, message)
                    .await
                    .map_err(admin)
            })
        }
    }
}

/// The admin socket: the flag, then `BERTH_PROXY_SOCKET`, then the per-user default.
pub fn admin_socket(flag: Option<PathBuf>) -> PathBuf {
    if let Some(path) = flag {
        return path;
    }
    if let Some(path) = &crate::env::get().proxy_socket {
        return path.clone();
    }
    runtime_dir().join("proxy.sock")
}

fn runtime_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/run/berth");
    }
    match &crate::env::get().xdg_runtime_dir {
        Some(dir) => dir.join("berth"),
        None => std::env::temp_dir().join(format!("berth-{}", user_id())),
    }
}

/// The proxy's data directory: under `$BERTH_STATE_DIR` when set (beside the deploy state,
/// which is how tests and a second installation keep apart), else the per-user default.
fn state_dir() -> PathBuf {
    let env = crate::env::get();
    if let Some(dir) = &env.state_dir {
        return dir.join("proxy");
    }
    if is_root() {
        return PathBuf::from("/var/lib/berth/proxy");
    }
    match env.xdg_state_home.as_ref().filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("berth/proxy"),
        None => env
            .home
            .as_ref()
            .map(|h| PathBuf::from(h).join(".local/state/berth/proxy"))
            .unwrap_or_else(|| runtime_dir().join("state")),
    }
}

fn user_id() -> u32 {
    crate::env::get().uid.unwrap_or(0)
}

fn is_root() -> bool {
    user_id() == 0
}

fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}

fn admin(e: AdminError) -> CliError {
    match e {
        AdminError::Refused { status, message }
            if status == 400 || status == 404 || status == 409 =>
        {
            CliError::Usage(message)
        }
        // A socket nobody answers on: the proxy container's state on the engine says why
        // (gone, stopped, another socket), which a bare "connection refused" does not.
        AdminError::Unreachable {
            ref path,
            ref source,
        } if matches!(
            source.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ) =>
        {
            match container::why_unreachable(path) {
                Some(why) => CliError::Failed(why),
                None => CliError::Failed(e.to_string()),
            }
        }
        other => CliError::Failed(other.to_string()),
    }
}

fn duration(flag: &str, text: &str) -> Result<Duration, CliError> {
    berth_compose::schema::parse_duration(text).ok_or_else(|| {
        CliError::Usage(format!(
            "{flag} `{text}` is not a duration; write it like 30s, 1m30s or 500ms"
        ))
    })
}

fn addr(flag: &str, text: &str) -> Result<SocketAddr, CliError> {
    text.parse().map_err(|_| {
        CliError::Usage(format!(
            "{flag} `{text}` is not an IP:PORT address (for example 127.0.0.1:8080)"
        ))
    })
}

/// The low phase's strings become a validated `ProxyConfig` before any socket opens.
fn proxy_config(socket: PathBuf, r: &ProxyRunArgs) -> Result<ProxyConfig, CliError> {
    let mut listen = r
        .listen
        .iter()
        .map(|a| addr("--listen", a))
        .collect::<Result<Vec<_>, _>>()?;
    let tls_listen = r
        .tls_listen
        .iter()
        .map(|a| addr("--tls-listen", a))
        .collect::<Result<Vec<_>, _>>()?;
    if listen.is_empty() && tls_listen.is_empty() {
        listen.push(SocketAddr::from(([0, 0, 0, 0], 80)));
    }
    let state_file = r
        .state_file
        .clone()
        .unwrap_or_else(|| state_dir().join("state.json"));
    let data_dir = state_file.parent().map(PathBuf::from).unwrap_or_default();
    let mut config = ProxyConfig::in_dir(&data_dir, listen);
    config.tls_listen = tls_listen;
    config.admin_socket = socket;
    config.state_file = state_file;
    config.cert_dir = r.cert_dir.clone().unwrap_or_else(|| data_dir.join("certs"));
    config.metrics_listen = r
        .metrics_listen
        .as_deref()
        .map(|a| addr("--metrics-listen", a))
        .transpose()?;
    config.access_log = match r.access_log.as_str() {
        "off" => berth_proxy::AccessLog::Off,
        "stdout" | "-" => berth_proxy::AccessLog::Stdout,
        path => berth_proxy::AccessLog::File(PathBuf::from(path)),
    };
    if let Some(max) = r.max_body {
        config.max_body = max;
    }
    if let Some(workers) = r.workers {
        if workers == 0 {
            return Err(CliError::Usage("--workers must be at least 1".into()));
        }
        config.workers = workers;
    }
    if let Some(t) = &r.header_timeout {
        config.timeouts.header_read = duration("--header-timeout", t)?;
    }
    config.validate().map_err(CliError::Usage)?;
    Ok(config)
}

fn run_proxy(socket: PathBuf, r: &ProxyRunArgs) -> Result<(), CliError> {
    let config = proxy_config(socket, r)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    // The data plane has threads of its own (`--workers`); this runtime carries the admin
    // API, health checks and the control plane.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let plugins = super::proxy_tls::plugins(&config, r).await?;
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        match berth_proxy::run(config, plugins, r.takeover, shutdown).await {
            Ok(berth_proxy::Exit::Shutdown) => {
                eprintln!("proxy stopped");
                Ok(())
            }
            Ok(berth_proxy::Exit::HandedOver) => {
                eprintln!("proxy handed its sockets to the new process and drained");
                Ok(())
            }
            Err(e @ (berth_proxy::ServeError::Config(_) | berth_proxy::ServeError::State(_))) => {
                Err(CliError::Usage(e.to_string()))
            }
            Err(e) => Err(CliError::Failed(e.to_string())),
        }
    })
}

fn route_spec(r: &ProxyRouteAddArgs) -> Result<RouteSpec, CliError> {
    let spec = RouteSpec {
        name: r.name.clone(),
        hosts: r.hosts.clone(),
        path_prefix: r.path_prefix.clone(),
        health_path: r.health_path.clone(),
        sets: if r.targets.is_empty() {
            vec![]
        } else {
            vec![SetSpec {
                id: r.set.clone(),
                weight: 100,
                targets: r.targets.clone(),
            }]
        },
        maintenance: None,
    };
    spec.validate().map_err(CliError::Usage)?;
    Ok(spec)
}

fn deploy(socket: PathBuf, d: &ProxyDeployArgs) -> Result<(), CliError> {
    let health_timeout = match &d.health_timeout {
        Some(text) => duration("--health-timeout", text)?,
        None => berth_proxy_api::DEFAULT_HEALTH_TIMEOUT,
    };
    let drain_timeout = match &d.drain_timeout {
        Some(text) => duration("--drain-timeout", text)?,
        None => berth_proxy_api::DEFAULT_DRAIN_TIMEOUT,
    };
    let set = SetSpec {
        id: d.set.clone().unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            format!("s{now}")
        }),
        weight: 100,
        targets: d.targets.clone(),
    };
    set.validate().map_err(CliError::Usage)?;
    let report = block_on(async {
        AdminClient::new(socket)
            .deploy(&d.name, set, health_timeout, drain_timeout)
            .await
            .map_err(|e| match e {
                AdminError::Refused {
                    status: 422,
                    message,
                } => CliError::Failed(message),
                e => admin(e),
            })
    })?;
    match d.format {
        TextFormat::Json => println!("{}", serde_json::to_string(&report).unwrap_or_default()),
        TextFormat::Text => println!(
            "route {}: set {} healthy after {} ms, traffic moved in {:.2} ms, old set drained in {} ms{}",
            report.route,
            report.set,
            report.healthy_after_ms,
            report.switch_ms,
            report.drained_ms,
            if report.closed_at_deadline > 0 {
                format!(" ({} still open at the drain deadline, closed)", report.closed_at_deadline)
            } else {
                String::new()
            }
        ),
    }
    Ok(())
}

/// Appends a line to a text being built for one write at the end.
macro_rules! outln {
    ($out:ident, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Writes the whole output at once; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Io(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

async fn status(socket: &std::path::Path, s: &ProxyStatusArgs) -> Result<(), CliError> {
    let status = AdminClient::new(socket).status().await.map_err(admin)?;
    let mut out = String::new();
    if s.format == TextFormat::Json {
        outln!(
            out,
            "{}",
            serde_json::to_string(&status).unwrap_or_default()
        );
        return emit(&out);
    }
    outln!(
        out,
        "proxy pid {} (berth {}), listening on {}",
        status.pid,
        status.version,
        published::host_addresses(socket, &status.listen)
            .await
            .into_iter()
            .chain(
                published::host_addresses(socket, &status.tls_listen)
                    .await
                    .into_iter()
                    .map(|a| format!("{a} (tls)"))
            )
            .collect::<Vec<_>>()
            .join(", ")
    );
    if status.routes.is_empty() {
        outln!(out, "no routes");
    }
    for route in &status.routes {
        let hosts = if route.hosts.is_empty() {
            "*".to_string()
        } else {
            route.hosts.join(",")
        };
        let mut flags = Vec::new();
        if route.paused {
            flags.push("paused".to_string());
        }
        if route.deploying {
            flags.push("deploying".to_string());
        }
        if let Some(m) = &route.maintenance {
            flags.push(format!("maintenance: {m}"));
        }
        outln!(
            out,
            "route {} {}{}{}",
            route.name,
            hosts,
            route.path_prefix,
            if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            }
        );
        for set in &route.sets {
            outln!(
                out,
                "  set {} weight {}{}",
                set.id,
                set.weight,
                if set.pending { " (pending)" } else { "" }
            );
            for t in &set.targets {
                outln!(
                    out,
                    "    {:<22} {:<9} inflight {:<4} requests {:<8} failures {}",
                    t.addr,
                    format!("{:?}", t.health).to_lowercase(),
                    t.inflight,
                    t.requests,
                    t.failures
                );
            }
        }
        for t in &route.draining {
            outln!(out, "  draining {:<22} inflight {}", t.addr, t.inflight);
        }
    }
    emit(&out)
}
