//! The proxy container as the CLI finds it on the engine: its name, `berth proxy stop`,
//! `berth proxy logs`, and why an admin socket does not answer.

use super::super::CliError;
use crate::args::ProxyLogsArgs;
use berth_engine::Engine;
use futures_util::StreamExt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The one proxy container per host; `BERTH_PROXY_CONTAINER` names another, so that tests
/// can run their own next to an operator's.
const DEFAULT_CONTAINER: &str = "berth-proxy";
/// The label `berth proxy boot` records the host path of the admin socket in.
pub(super) const SOCKET_LABEL: &str = "berth.proxy.admin-socket";
/// The proxy drains for up to 30 s on SIGTERM; the engine's default 10 s would cut long
/// requests off.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(35);

pub(super) fn name() -> String {
    crate::env::get()
        .proxy_container
        .clone()
        .unwrap_or_else(|| DEFAULT_CONTAINER.to_string())
}

/// `berth proxy stop`: stops the container, which drains before it exits. Stopping a
/// stopped or absent proxy is not an error: the outcome is the one asked for.
pub(super) fn stop(socket: &Path) -> Result<(), CliError> {
    let name = name();
    super::block_on(async {
        let engine = Engine::connect().await?;
        match engine.inspect_container(&name).await? {
            Some(c) if c.state == "running" || c.state == "restarting" => {
                println!("stopping {name} (it drains open connections first, up to 30s)");
                engine.stop_container(&c.id, Some(STOP_TIMEOUT)).await?;
                println!(
                    "stopped {name}; `berth proxy boot` starts it again, as does the next `berth up` or `berth deploy` of a routed service"
                );
            }
            Some(c) => println!("{name} is already stopped ({})", c.state),
            None => {
                let client = berth_proxy_api::AdminClient::new(socket);
                match tokio::time::timeout(Duration::from_secs(5), client.status()).await {
                    Ok(Ok(status)) => {
                        return Err(CliError::Failed(format!(
                            "the proxy on {} is not a container but process {} (`berth proxy run`); stop it with Ctrl-C where it runs, or `kill {}`",
                            socket.display(),
                            status.pid,
                            status.pid
                        )))
                    }
                    _ => println!("no proxy container `{name}` on this engine; nothing to stop"),
                }
            }
        }
        Ok(())
    })
}

/// `berth proxy logs`: the container's output, stdout and stderr interleaved as the engine
/// kept them, printed to stdout.
pub(super) fn logs(a: &ProxyLogsArgs) -> Result<(), CliError> {
    let name = name();
    super::block_on(async {
        let engine = Engine::connect().await?;
        let Some(c) = engine.inspect_container(&name).await? else {
            return Err(CliError::Failed(format!(
                "no proxy container `{name}` on this engine; `berth proxy boot` starts one (a proxy started with `berth proxy run` logs to its own terminal)"
            )));
        };
        let mut lines = std::pin::pin!(engine.logs(&c.id, a.follow, a.tail, false));
        let mut out = std::io::stdout().lock();
        while let Some(line) = lines.next().await {
            if writeln!(out, "{}", line?.text).is_err() {
                // The reader went away (`berth proxy logs | head`): stop quietly.
                break;
            }
        }
        Ok(())
    })
}

/// Why nothing answers on `socket`, as one sentence that says what to do, from the proxy
/// container's state on the engine. None when the engine cannot tell (it is unreachable).
///
/// Runs on a thread of its own, with its own runtime, because callers meet the error inside
/// their own runtime's `block_on`.
pub(super) fn why_unreachable(socket: &Path) -> Option<String> {
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let engine = Engine::connect().await.ok()?;
            let found = engine.inspect_container(&name()).await.ok()?;
            Some(explain(&socket, found.as_ref()))
        })
    })
    .join()
    .ok()
    .flatten()
}

fn explain(socket: &Path, found: Option<&berth_engine::ContainerSummary>) -> String {
    let name = name();
    let start =
        "`berth proxy boot` starts it, as does `berth up` or `berth deploy` of a routed service";
    match found {
        None if socket.exists() => format!(
            "the admin socket {} is stale: the proxy that made it no longer runs, and its container `{name}` is gone; {start}",
            socket.display()
        ),
        None => format!(
            "no proxy runs: {} does not exist and there is no container `{name}`; {start}, or run `berth proxy run` in a terminal of its own",
            socket.display()
        ),
        Some(c) if c.state != "running" => format!(
            "the proxy container `{name}` is stopped ({}); {start} again, and `berth proxy logs` shows why it stopped",
            c.state
        ),
        Some(c) => match c.labels.get(SOCKET_LABEL) {
            Some(own) if Path::new(own) != socket => format!(
                "the proxy container `{name}` runs, but its admin socket is {own}, not {}; pass --admin-socket {own} or set BERTH_PROXY_SOCKET={own}",
                socket.display()
            ),
            _ => format!(
                "the proxy container `{name}` runs but does not answer on {}; `berth proxy logs` shows why, and `berth proxy boot --force` recreates it",
                socket.display()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn container(state: &str, socket: &str) -> berth_engine::ContainerSummary {
        berth_engine::ContainerSummary {
            id: "id".into(),
            name: "berth-proxy".into(),
            image: String::new(),
            image_id: String::new(),
            labels: BTreeMap::from([(SOCKET_LABEL.to_string(), socket.to_string())]),
            state: state.into(),
            health: None,
            status: String::new(),
            exit_code: None,
            ports: vec![],
            created: 0,
        }
    }

    #[test]
    fn each_reason_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join("proxy.sock");
        std::fs::write(&left, "").unwrap();
        assert!(explain(&left, None).contains("is stale"));
        let absent = dir.path().join("absent.sock");
        assert!(explain(&absent, None).contains("does not exist"));
        let stopped = container("exited", absent.to_str().unwrap());
        assert!(explain(&absent, Some(&stopped)).contains("is stopped (exited)"));
        let elsewhere = container("running", "/run/berth/proxy.sock");
        assert!(explain(&absent, Some(&elsewhere))
            .contains("set BERTH_PROXY_SOCKET=/run/berth/proxy.sock"));
        let here = container("running", absent.to_str().unwrap());
        assert!(explain(&absent, Some(&here)).contains("berth proxy logs"));
    }
}
