//! `berth proxy supervise`: PID 1 of the `berth-proxy` container.
//!
//! The proxy itself runs as a child (`berth proxy run`), so that an upgrade can swap the
//! process without replacing the container: replacing the container would close its
//! published ports for a moment, while a new child started with `--takeover` receives the
//! listening sockets from the old one, which then drains and exits by itself.
//!
//! Children are reaped with `waitpid(-1)` rather than through `std::process::Child::wait`,
//! because as PID 1 this process also inherits every orphan in the container and must reap
//! those too; one loop that reaps everything and then looks the pid up serves both.

use super::super::CliError;
use crate::args::ProxyRunArgs;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

/// How long an unexpectedly dead proxy stays down before it is started again; long enough
/// not to spin on a binary that fails at once, short enough to be a blip.
const RESTART_DELAY: Duration = Duration::from_secs(1);

pub fn run(socket: PathBuf, r: &ProxyRunArgs) -> Result<u8, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))?
        .block_on(supervise(socket, r))
}

/// A proxy process this supervisor started.
struct Child {
    pid: Pid,
    binary: PathBuf,
}

fn log(message: impl std::fmt::Display) {
    eprintln!("supervisor: {message}");
}

async fn supervise(socket: PathBuf, r: &ProxyRunArgs) -> Result<u8, CliError> {
    let data_dir = r
        .state_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(super::state_dir);
    // The handlers are installed before the first child starts, so that neither its early
    // exit (SIGCHLD) nor an early stop request is lost.
    let listen = |kind: SignalKind| {
        signal(kind).map_err(|e| CliError::Io(format!("cannot handle signals: {e}")))
    };
    let mut hangup = listen(SignalKind::hangup())?;
    let mut terminate = listen(SignalKind::terminate())?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut child_exited = listen(SignalKind::child())?;

    // Oldest first; the last one serves, or is taking the sockets over from the one before.
    let mut children: Vec<Child> = Vec::new();
    let first = spawn(&socket, r, &data_dir, r.takeover).map_err(CliError::Failed)?;
    children.push(first);
    let mut restart_at: Option<Instant> = None;
    // Set on SIGTERM/SIGINT: the pid whose exit status becomes this process's.
    let mut stopping: Option<Option<Pid>> = None;
    let mut exit_code: u8 = 0;
    // SIGCHLD can coalesce or race with the wait below; a slow tick reaps whatever it missed.
    let mut tick = tokio::time::interval(Duration::from_millis(500));

    loop {
        tokio::select! {
            _ = hangup.recv() => {
                if stopping.is_none() {
                    upgrade(&socket, r, &data_dir, &mut children, &mut restart_at);
                }
            }
            _ = terminate.recv() => {
                stop(Signal::SIGTERM, &children, &mut stopping, &mut restart_at);
            }
            _ = interrupt.recv() => {
                stop(Signal::SIGINT, &children, &mut stopping, &mut restart_at);
            }
            _ = child_exited.recv() => {}
            _ = tick.tick() => {}
            _ = sleep_until(restart_at), if restart_at.is_some() => {
                restart_at = None;
                match spawn(&socket, r, &data_dir, false) {
                    Ok(child) => children.push(child),
                    Err(e) => {
                        log(format!("{e}; trying again in {}s", RESTART_DELAY.as_secs()));
                        restart_at = Some(Instant::now() + RESTART_DELAY);
                    }
                }
            }
        }

        for (pid, code, how) in reap() {
            let Some(index) = children.iter().position(|c| c.pid == pid) else {
                // An orphan re-parented to PID 1: reaping it was the point.
                continue;
            };
            let child = children.remove(index);
            let was_newest = index == children.len();
            if let Some(serving) = stopping {
                if serving == Some(pid) {
                    exit_code = code;
                }
                continue;
            }
            if was_newest && !children.is_empty() {
                // The upgrade's new process is gone: either it never took the sockets over
                // (bad binary, refused handover) and the old one still serves, or it took
                // them and crashed, in which case the old one drains, exits, and is then
                // restarted below like any unexpected exit.
                log(format!(
                    "the new proxy (pid {pid}, {}) {how} during the upgrade; pid {} keeps serving",
                    child.binary.display(),
                    children[children.len() - 1].pid
                ));
            } else if was_newest {
                log(format!(
                    "the proxy (pid {pid}) {how} unexpectedly; restarting it in {}s",
                    RESTART_DELAY.as_secs()
                ));
                restart_at = Some(Instant::now() + RESTART_DELAY);
            } else {
                log(format!(
                    "the previous proxy (pid {pid}) {how} after handing over"
                ));
            }
        }

        if stopping.is_some() && children.is_empty() {
            return Ok(exit_code);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// SIGHUP: start the newest binary with `--takeover` next to the running proxy.
fn upgrade(
    socket: &Path,
    r: &ProxyRunArgs,
    data_dir: &Path,
    children: &mut Vec<Child>,
    restart_at: &mut Option<Instant>,
) {
    let Some(old) = children.last().map(|c| c.pid) else {
        // Nothing runs (a restart is pending): start the new binary plainly, now.
        *restart_at = Some(Instant::now());
        return;
    };
    match spawn(socket, r, data_dir, true) {
        Ok(child) => {
            log(format!(
                "upgrade: started {} (pid {}) to take over from pid {old}",
                child.binary.display(),
                child.pid
            ));
            tokio::spawn(report_takeover(socket.to_path_buf(), child.pid, old));
            children.push(child);
        }
        Err(e) => log(format!("upgrade failed: {e}; pid {old} keeps serving")),
    }
}

/// Says when the new process answers on the admin socket, which it only does once it holds
/// the sockets: the moment the upgrade is done for clients.
async fn report_takeover(socket: PathBuf, new: Pid, old: Pid) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = berth_proxy_api::AdminClient::new(socket);
    while Instant::now() < deadline {
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(1), client.status()).await
        {
            if i64::from(status.pid) == i64::from(new.as_raw()) {
                log(format!(
                    "takeover done: pid {new} serves, pid {old} drains and exits"
                ));
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM/SIGINT: passed on to every child; the supervisor exits once they all have,
/// with the status of the one that served.
fn stop(
    signal: Signal,
    children: &[Child],
    stopping: &mut Option<Option<Pid>>,
    restart_at: &mut Option<Instant>,
) {
    *restart_at = None;
    if stopping.is_none() {
        *stopping = Some(children.last().map(|c| c.pid));
    }
    for child in children {
        // ESRCH means it exited a moment ago; the reaper will see it.
        let _ = kill(child.pid, signal);
    }
}

/// Every child that has exited: pid, exit code (128 + signal for a killed one, as shells
/// report it) and a phrase for the log.
fn reap() -> Vec<(Pid, u8, String)> {
    let mut exited = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                exited.push((pid, code as u8, format!("exited with status {code}")));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                exited.push((pid, 128 + signal as u8, format!("was killed by {signal}")));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return exited,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                log(format!("cannot wait for children: {e}"));
                return exited;
            }
        }
    }
}

/// The binary to start: the one `<data dir>/bin/current` names (put there by `berth proxy
/// boot` on an upgrade), else this one.
fn current_binary(data_dir: &Path) -> Result<PathBuf, String> {
    let pointer = data_dir.join("bin").join("current");
    match std::fs::read_to_string(&pointer) {
        Ok(text) => {
            let name = text.trim();
            let valid = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
            let path = data_dir.join("bin").join(name);
            if valid && path.is_file() {
                return Ok(path);
            }
            log(format!(
                "{} names `{name}`, which is not a file in {}; starting this binary instead",
                pointer.display(),
                data_dir.join("bin").display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log(format!(
            "cannot read {} ({e}); starting this binary instead",
            pointer.display()
        )),
    }
    std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))
}

fn spawn(
    socket: &Path,
    r: &ProxyRunArgs,
    data_dir: &Path,
    takeover: bool,
) -> Result<Child, String> {
    let binary = current_binary(data_dir)?;
    let mut args = run_args(r);
    if takeover && !args.iter().any(|a| a == "--takeover") {
        args.push("--takeover".into());
    }
    if !takeover {
        args.retain(|a| a != "--takeover");
    }
    let child = std::process::Command::new(&binary)
        .arg("proxy")
        .arg("--admin-socket")
        .arg(socket)
        .arg("run")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    // The std handle is dropped without waiting: `reap` collects the exit status, and
    // dropping a std child neither kills nor waits for it.
    drop(child);
    Ok(Child { pid, binary })
}

/// The `run` flags that reproduce `r`. Kept next to `ProxyRunArgs`'s fields by the test
/// below, which parses the output back.
pub(super) fn run_args(r: &ProxyRunArgs) -> Vec<String> {
    let mut args = Vec::new();
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    for a in &r.listen {
        flag("listen", a.clone());
    }
    for a in &r.tls_listen {
        flag("tls-listen", a.clone());
    }
    if let Some(a) = &r.metrics_listen {
        flag("metrics-listen", a.clone());
    }
    if let Some(p) = &r.state_file {
        flag("state-file", p.display().to_string());
    }
    if let Some(p) = &r.cert_dir {
        flag("cert-dir", p.display().to_string());
    }
    for c in &r.cert {
        flag("cert", c.clone());
    }
    if let Some(u) = &r.acme_directory {
        flag("acme-directory", u.clone());
    }
    if let Some(e) = &r.acme_email {
        flag("acme-email", e.clone());
    }
    if let Some(p) = &r.acme_ca {
        flag("acme-ca", p.display().to_string());
    }
    for h in &r.acme_hosts {
        flag("acme-host", h.clone());
    }
    flag("access-log", r.access_log.clone());
    if let Some(b) = r.max_body {
        flag("max-body", b.to_string());
    }
    if let Some(t) = &r.header_timeout {
        flag("header-timeout", t.clone());
    }
    if let Some(w) = r.workers {
        flag("workers", w.to_string());
    }
    if r.takeover {
        args.push("--takeover".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, ProxyCommand};
    use clap::Parser;

    fn parse(args: &[&str]) -> ProxyRunArgs {
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.command {
            Command::Proxy(p) => match p.command {
                ProxyCommand::Supervise(r) | ProxyCommand::Run(r) => r,
                other => panic!("parsed as {other:?}"),
            },
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn run_args_reproduce_every_supervise_flag() {
        let given = parse(&[
            "berth",
            "proxy",
            "supervise",
            "--listen",
            "0.0.0.0:80",
            "--listen",
            "[::]:80",
            "--tls-listen",
            "0.0.0.0:443",
            "--metrics-listen",
            "127.0.0.1:9100",
            "--state-file",
            "/var/lib/berth/proxy/state.json",
            "--cert-dir",
            "/certs",
            "--cert",
            "a.test=/a.pem:/a.key",
            "--acme-directory",
            "https://acme.test/dir",
            "--acme-email",
            "ops@a.test",
            "--acme-ca",
            "/ca.pem",
            "--acme-host",
            "a.test",
            "--access-log",
            "off",
            "--max-body",
            "1024",
            "--header-timeout",
            "5s",
            "--takeover",
        ]);
        let mut again = vec!["berth", "proxy", "run"];
        let rebuilt = run_args(&given);
        again.extend(rebuilt.iter().map(String::as_str));
        assert_eq!(format!("{:?}", parse(&again)), format!("{given:?}"));
    }

    #[test]
    fn current_names_a_binary_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let own = std::env::current_exe().unwrap();
        assert_eq!(current_binary(dir.path()).unwrap(), own);
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/berth-abc"), b"x").unwrap();
        std::fs::write(dir.path().join("bin/current"), "berth-abc\n").unwrap();
        assert_eq!(
            current_binary(dir.path()).unwrap(),
            dir.path().join("bin/berth-abc")
        );
        std::fs::write(dir.path().join("bin/current"), "../escape").unwrap();
        assert_eq!(current_binary(dir.path()).unwrap(), own);
    }
}
