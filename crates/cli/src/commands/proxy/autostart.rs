//! The host's proxy started on demand: `berth up` and `berth deploy` boot it, as `berth proxy
//! boot` would, when a routed service needs it and nothing answers on the admin socket.
//!
//! A proxy that answers is never touched, whoever started it (a test's `berth proxy run`, an
//! operator's container); so is a running container that does not answer, which is reported
//! with what to do rather than replaced behind the user's back.

use super::super::session::Session;
use super::super::CliError;
use super::boot::{self, Boot, Linkage};
use super::container;
use berth_proxy_api::AdminClient;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Where the proxy listens when the project's `x-berth.proxy.listen` does not say.
const DEFAULT_LISTEN: &str = "0.0.0.0:80";
/// How long one status call may take before the proxy counts as not answering.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// For `berth up`: starts the proxy when a selected service is routed and none answers. The
/// containers are up by now, so a proxy that cannot start is a warning, not a failure; the
/// routes are attached by the caller once it answers.
pub(crate) fn for_up(s: &Session, desired: &berth_deploy::Desired) {
    let routed = desired.services.iter().any(|d| {
        s.loaded
            .project
            .services
            .get(&d.name)
            .and_then(|svc| svc.berth.as_ref())
            .is_some_and(|b| b.proxy.is_some())
    });
    if !routed {
        return;
    }
    if let Err(e) = ensure(s, &super::admin_socket(None)) {
        crate::report::warning(&format!("the proxy is not running: {e}"));
    }
}

/// For `berth deploy` and `rollback`: starts the proxy when the release routes a service and
/// none answers on `socket`; a deploy cannot move traffic without it, so failing to start it
/// fails the command.
pub(crate) fn for_deploy(s: &Session, socket: &Path, routed: bool) -> Result<(), CliError> {
    if routed {
        ensure(s, socket)?;
    }
    Ok(())
}

fn ensure(s: &Session, socket: &Path) -> Result<(), CliError> {
    let client = AdminClient::new(socket);
    let answers = || {
        s.rt.block_on(async {
            matches!(
                tokio::time::timeout(STATUS_TIMEOUT, client.status()).await,
                Ok(Ok(_))
            )
        })
    };
    if answers() {
        return Ok(());
    }
    let name = container::name();
    if let Some(c) = s.rt.block_on(s.engine.inspect_container(&name))? {
        if c.state == "running" || c.state == "restarting" {
            // It may be starting, or restarting after a crash: give it the time a boot
            // gives a new container before saying why it does not answer.
            let deadline = std::time::Instant::now() + boot::READY_TIMEOUT;
            let own = c.labels.get(container::SOCKET_LABEL).map(Path::new);
            while own.is_none_or(|own| own == socket) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                if answers() {
                    return Ok(());
                }
            }
            return Err(CliError::Failed(
                container::why_unreachable(socket)
                    .unwrap_or_else(|| format!("the proxy container `{name}` does not answer")),
            ));
        }
    }

    let text = s
        .loaded
        .project
        .berth
        .proxy_listen
        .clone()
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = boot::host_addr("x-berth.proxy.listen", &text)?;
    let exe = std::env::current_exe().map_err(|e| {
        CliError::Failed(format!(
            "cannot find this binary to start the proxy from ({e}); start it with `berth proxy boot --binary PATH`"
        ))
    })?;
    let binary = match boot::read_binary(&exe) {
        Ok(Linkage::Static(binary)) => binary,
        Ok(Linkage::Dynamic) => {
            return Err(CliError::Failed(format!(
                "no proxy answers on {}, and this berth ({}) is dynamically linked, so it cannot run as the proxy container; install the static build with `{}`, or start a proxy with `berth proxy run`",
                socket.display(),
                exe.display(),
                boot::STATIC_INSTALL
            )))
        }
        Ok(Linkage::NotElf(why)) => {
            return Err(CliError::Failed(format!(
                "{} is not a Linux executable ({why}); start the proxy with `berth proxy boot --binary PATH`",
                exe.display()
            )))
        }
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot read {} to start the proxy from: {e}; start it with `berth proxy boot --binary PATH`",
                exe.display()
            )))
        }
    };
    eprintln!(
        "no proxy answers on {}: starting container {name} on {listen} (x-berth.proxy.listen)",
        socket.display()
    );
    let mut boot = Boot::new(socket.to_path_buf(), listen, binary)?;
    boot.to_stderr = true;
    s.rt.block_on(boot.run())
}
