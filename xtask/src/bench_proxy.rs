//! `cargo xtask bench proxy`: berth's reverse proxy against nginx, HAProxy and Caddy, with
//! testapp answered directly as the anchor, all measured in the same run on loopback
//! (BENCHMARKS.md).
//!
//! Every server runs natively, not in Docker, so that the figures compare proxies rather than
//! Docker's port forwarding. Each proxy gets the same features: keep-alive to the one
//! upstream, no access log, and as many threads or workers as the machine has cores.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const WRK: &str = "/usr/bin/wrk";
const NGINX: &str = "/usr/sbin/nginx";
const HAPROXY: &str = "/usr/sbin/haproxy";
const CADDY: &str = "/usr/bin/caddy";
const VALGRIND: &str = "/usr/bin/valgrind";
const CALLGRIND_CONTROL: &str = "/usr/bin/callgrind_control";
const INSTALL_HINT: &str = "install it: apt-get install nginx haproxy caddy wrk";

/// How long a server may take to answer its first request before the run gives up.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// A short load before each measured run, so that every server is measured with warm pools,
/// caches and (for Caddy) a grown Go heap rather than its start-up state.
const WARM_UP: Duration = Duration::from_secs(2);
/// The idle keep-alive connections held open for the memory figures.
const IDLE_CONNECTIONS: usize = 10_000;

/// The servers measured in front of (or as) the backend, in the order they are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Direct,
    Berth,
    Nginx,
    Haproxy,
    Caddy,
}

impl Kind {
    const PROXIES: [Kind; 4] = [Kind::Berth, Kind::Nginx, Kind::Haproxy, Kind::Caddy];

    fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Berth => "berth",
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
            Kind::Caddy => "caddy",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    duration: Duration,
    conns: Vec<usize>,
    rounds: usize,
    /// The proxies to measure; testapp direct is always measured, as the anchor.
    servers: Vec<Kind>,
    /// Also count berth's and nginx's instructions per request under callgrind.
    instructions: bool,
}

impl Options {
    pub fn parse(args: &[&str]) -> Result<Options> {
        let mut options = Options {
            duration: Duration::from_secs(10),
            conns: vec![1, 64, 256],
            rounds: 3,
            servers: Kind::PROXIES.to_vec(),
            instructions: false,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if *flag == "--instructions" {
                options.instructions = true;
                continue;
            }
            let mut value = || {
                args.next()
                    .with_context(|| format!("{flag} needs a value"))
                    .map(|v| v.trim())
            };
            match *flag {
                "--duration" => options.duration = parse_duration(value()?)?,
                "--conns" => {
                    options.conns = value()?
                        .split(',')
                        .map(|n| match n.trim().parse::<usize>() {
                            Ok(n) if n > 0 => Ok(n),
                            _ => bail!("--conns wants positive numbers like 1,64,256, not {n:?}"),
                        })
                        .collect::<Result<_>>()?;
                }
                "--rounds" => {
                    options.rounds = match value()?.parse() {
                        Ok(n) if n > 0 => n,
                        _ => bail!("--rounds wants a positive number"),
                    }
                }
                "--servers" => {
                    options.servers = value()?
                        .split(',')
                        .map(|name| {
                            Kind::PROXIES
                                .into_iter()
                                .find(|kind| kind.name() == name.trim())
                                .with_context(|| {
                                    format!(
                                        "unknown server {name:?}; the proxies are berth, \
                                         nginx, haproxy and caddy"
                                    )
                                })
                        })
                        .collect::<Result<_>>()?;
                }
                other => bail!("unknown option {other:?} for bench proxy\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }
}

/// Reads `10s`, `10` or `1m`; wrk takes whole seconds, so that is what this accepts.
fn parse_duration(text: &str) -> Result<Duration> {
    let (number, unit) = match text.strip_suffix('m') {
        Some(minutes) => (minutes, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * unit)),
        _ => bail!("--duration wants whole seconds like 10s, not {text:?}"),
    }
}

/// One wrk run, as parsed from its output.
#[derive(Debug, Clone, PartialEq)]
struct WrkResult {
    requests_per_sec: f64,
    p50: Duration,
    p99: Duration,
    /// Socket errors plus non-2xx/3xx responses; anything but 0 makes the figure suspect.
    errors: u64,
}

/// Memory of one proxy, idle and with the idle keep-alive connections open.
struct Memory {
    kind: Kind,
    idle_kib: u64,
    loaded_kib: u64,
    /// Established connections on the proxy's port when `loaded_kib` was read, to show that
    /// the proxy had not closed any of them yet.
    established: usize,
}

pub fn run(root: &Path, options: Options) -> Result<()> {
    if options.instructions {
        for tool in [VALGRIND, CALLGRIND_CONTROL] {
            if !Path::new(tool).exists() {
                bail!("{tool} is missing; install it: apt-get install valgrind");
            }
        }
    }
    for tool in [WRK]
        .into_iter()
        .chain(options.servers.iter().filter_map(|kind| match kind {
            Kind::Nginx => Some(NGINX),
            Kind::Haproxy => Some(HAPROXY),
            Kind::Caddy => Some(CADDY),
            Kind::Direct | Kind::Berth => None,
        }))
    {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing; {INSTALL_HINT}");
        }
    }
    let nofile = raise_open_files_limit()?;
    let bin = release_build(root, options.servers.contains(&Kind::Berth))?;
    let ctx = Binaries {
        testapp: bin.join("testapp"),
        berth: bin.join("berth"),
        nofile,
    };
    if options.servers.contains(&Kind::Berth) {
        check_berth_has_proxy(&ctx.berth)?;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "proxy bench: {} per run after a {} s warm-up, conns {:?}, load average before: {}",
        format_secs(options.duration),
        WARM_UP.as_secs(),
        options.conns,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let dir = tempfile::tempdir()?;
    let backend = start_testapp(&ctx, dir.path())?;

    // Rounds go through every server in turn rather than measuring one server N times in a
    // row, so that a burst of load from elsewhere on the machine spreads over all servers
    // instead of landing on one of them; the table shows medians.
    let mut runs: Vec<(Kind, usize, WrkResult)> = Vec::new();
    for round in 1..=options.rounds {
        for kind in std::iter::once(Kind::Direct).chain(options.servers.iter().copied()) {
            // The direct runs measure the same testapp process the proxies forward to; a
            // second testapp would only add a process competing for the cores.
            let (port, server) = match kind {
                Kind::Direct => (backend.port, None),
                _ => {
                    let server = start(kind, &ctx, dir.path(), backend.port, None)?;
                    (server.port, Some(server))
                }
            };
            for &conns in &options.conns {
                wrk(port, conns, WARM_UP)?;
                let result = wrk(port, conns, options.duration)?;
                println!(
                    "  round {round} {:<8} {conns:>4} conns: {:>9.0} req/s, p50 {}, p99 {}{}",
                    kind.name(),
                    result.requests_per_sec,
                    format_ms(result.p50),
                    format_ms(result.p99),
                    if result.errors > 0 {
                        format!(", {} errors", result.errors)
                    } else {
                        String::new()
                    }
                );
                runs.push((kind, conns, result));
            }
            // The guard stops the server here, before the next one starts, so that only one
            // server competes with wrk for the two cores at a time.
            drop(server);
        }
    }
    let results = medians(&runs);

    let mut memory = Vec::new();
    for kind in [Kind::Berth, Kind::Nginx] {
        if options.servers.contains(&kind) {
            // A fresh instance, so that the figure does not depend on what wrk left behind.
            let server = start(kind, &ctx, dir.path(), backend.port, None)?;
            memory.push(measure_memory(kind, &server)?);
        }
    }
    let mut instructions = Vec::new();
    if options.instructions {
        for kind in [Kind::Berth, Kind::Nginx] {
            if options.servers.contains(&kind) {
                instructions.push((
                    kind,
                    measure_instructions(kind, &ctx, dir.path(), backend.port)?,
                ));
            }
        }
    }
    drop(backend);

    println!();
    println!(
        "medians of {} rounds, {} per run:",
        options.rounds,
        format_secs(options.duration)
    );
    print!("{}", results_table(&options.conns, &results));
    println!();
    print!("{}", comparison(&options.conns, &results));
    if !memory.is_empty() {
        println!();
        print!("{}", memory_table(&memory));
    }
    if !instructions.is_empty() {
        println!();
        print!("{}", instructions_table(&instructions));
    }
    Ok(())
}

/// Connections and length of the run counted under callgrind; valgrind runs a program
/// some 50 times slower, so a short run already has tens of thousands of requests.
const CALLGRIND_CONNS: usize = 64;
const CALLGRIND_RUN: Duration = Duration::from_secs(15);

/// The user-space instructions one proxy executes per request, counted by callgrind: a
/// figure that, unlike requests/s, does not move with what else the machine is doing
/// (BENCHMARKS.md). Counting starts after a warm-up, so start-up is not in it.
fn measure_instructions(kind: Kind, ctx: &Binaries, dir: &Path, backend_port: u16) -> Result<f64> {
    let out_dir = dir.join(format!("callgrind-{}", kind.name()));
    std::fs::create_dir_all(&out_dir)?;
    let server = start(kind, ctx, dir, backend_port, Some(&out_dir))?;
    wrk(server.port, CALLGRIND_CONNS, WARM_UP)?;
    // Zero every counter (nginx's workers are processes of their own), run, then dump.
    crate::cmd::output(Command::new(CALLGRIND_CONTROL).arg("--zero"))?;
    let requests = wrk_requests(server.port, CALLGRIND_CONNS, CALLGRIND_RUN)?;
    crate::cmd::output(Command::new(CALLGRIND_CONTROL).arg("--dump"))?;
    drop(server);
    // Each process's first dump is `cg.PID.1`; the files without a suffix hold what ran
    // before the zeroing and after the dump.
    let mut total = 0u64;
    for entry in std::fs::read_dir(&out_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "1") {
            let text = std::fs::read_to_string(&path)?;
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("totals:"))
                .with_context(|| format!("no totals line in {}", path.display()))?;
            total += line.trim().parse::<u64>()?;
        }
    }
    if requests == 0 || total == 0 {
        bail!(
            "callgrind counted {total} instructions for {requests} requests of {}",
            kind.name()
        );
    }
    Ok(total as f64 / requests as f64)
}

/// The number of requests one wrk run completed.
fn wrk_requests(port: u16, conns: usize, duration: Duration) -> Result<u64> {
    let output = crate::cmd::output(
        Command::new(WRK)
            .arg("-t1")
            .arg(format!("-c{conns}"))
            .arg(format!("-d{}s", duration.as_secs()))
            .arg(format!("http://127.0.0.1:{port}/")),
    )?;
    output
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .with_context(|| format!("no request count in wrk's report:\n{output}"))
}

fn instructions_table(rows: &[(Kind, f64)]) -> String {
    let nginx = rows
        .iter()
        .find(|(k, _)| *k == Kind::Nginx)
        .map(|(_, n)| *n);
    let mut out = String::from(
        "| server | instructions per request (callgrind) | vs nginx |\n|---|---|---|\n",
    );
    for (kind, n) in rows {
        let ratio = nginx.map_or("—".to_string(), |base| format!("{:.2}x", n / base));
        let _ = writeln!(out, "| {} | {:.0} | {ratio} |", kind.name(), n);
    }
    out
}

/// What every server start needs.
struct Binaries {
    testapp: PathBuf,
    berth: PathBuf,
    /// The open-files limit children inherit, also given to nginx's workers explicitly.
    nofile: u64,
}

/// Raises this process's soft open-files limit to the hard limit, so that it can hold the
/// idle connections; the servers it starts inherit the raised limit.
fn raise_open_files_limit() -> Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("cannot read RLIMIT_NOFILE")?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("cannot raise RLIMIT_NOFILE")?;
    }
    // Each idle connection costs the client one descriptor, and nginx or berth one more
    // (plus the upstream side); below this the memory figure would measure refused connects.
    let needed = IDLE_CONNECTIONS as u64 + 1_000;
    if hard < needed {
        bail!(
            "the open-files hard limit is {hard}, the bench needs {needed}; \
             raise it (ulimit -Hn) as root"
        );
    }
    Ok(hard)
}

/// Builds testapp (and berth, when measured) in release mode and returns the binaries' directory.
/// One cargo invocation per package: built together, their dependencies' features would be
/// unified into a third combination, which rebuilds every shared dependency for nothing.
fn release_build(root: &Path, with_berth: bool) -> Result<PathBuf> {
    let packages: &[&str] = if with_berth {
        &["testapp", "berth-cli"]
    } else {
        &["testapp"]
    };
    for package in packages {
        crate::cmd::run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--locked", "-p", package])
                .current_dir(root),
        )?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release"))
}

fn check_berth_has_proxy(berth: &Path) -> Result<()> {
    let ok = Command::new(berth)
        .args(["proxy", "run", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !ok {
        bail!(
            "{} has no `proxy run` command yet; measure the others with \
             --servers nginx,haproxy,caddy",
            berth.display()
        );
    }
    Ok(())
}

/// A server this run started. Dropping it stops the server, so that an error or a panic
/// anywhere in the bench does not leave proxies listening behind it.
struct Server {
    kind: Kind,
    port: u16,
    child: Child,
    log: PathBuf,
    ready_deadline: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM first, because nginx's master only takes its workers down when it is asked to
/// stop (SIGKILL would orphan them); SIGKILL after 5 s, to the whole family.
pub(crate) fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let family = children_of(child.id());
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in family {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn start_testapp(ctx: &Binaries, dir: &Path) -> Result<Server> {
    let port = free_port()?;
    let mut command = Command::new(&ctx.testapp);
    // BIND keeps the backend on loopback; the per-request log line goes to /dev/null for
    // every server alike, so it costs the anchor and the proxied runs the same.
    command
        .env("BIND", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir);
    let mut server = spawn(Kind::Direct, command, port, dir, "testapp", None)?;
    wait_for(&mut server, "a 200 on /", || {
        http_status(port, "/") == Some(200)
    })?;
    Ok(server)
}

/// Starts the proxy `kind` in front of the backend on `backend_port` and waits until it
/// answers `/` through its route.
/// With `callgrind`, the server runs under valgrind's callgrind, its counts kept in that
/// directory, and is given longer to start.
fn start(
    kind: Kind,
    ctx: &Binaries,
    dir: &Path,
    backend_port: u16,
    callgrind: Option<&Path>,
) -> Result<Server> {
    let port = free_port()?;
    let dir = dir.join(format!("{}-{port}", kind.name()));
    std::fs::create_dir_all(&dir)?;
    let backend = format!("127.0.0.1:{backend_port}");
    let listen = format!("127.0.0.1:{port}");
    let server = match kind {
        Kind::Direct => bail!("testapp direct is the backend itself, not a proxy to start"),
        Kind::Berth => {
            let socket = dir.join("admin.sock");
            let mut command = Command::new(&ctx.berth);
            command
                .args(["proxy", "run", "--listen", &listen, "--admin-socket"])
                .arg(&socket)
                .arg("--state-file")
                .arg(dir.join("state.json"))
                .args(["--access-log", "off"]);
            let mut server = spawn(kind, command, port, &dir, "berth", callgrind)?;
            wait_for(&mut server, "its admin socket", || socket.exists())?;
            // wrk sends `Host: 127.0.0.1:PORT`, and berth matches the host without the port.
            crate::cmd::output(
                Command::new(&ctx.berth)
                    .args(["proxy", "route", "add", "bench", "--host", "127.0.0.1"])
                    .args([
                        "--target",
                        &backend,
                        "--path-prefix",
                        "/",
                        "--health-path",
                        "/up",
                    ])
                    .arg("--admin-socket")
                    .arg(&socket),
            )?;
            server
        }
        Kind::Nginx => {
            let config = dir.join("nginx.conf");
            let mut text = nginx_config(&dir, &listen, &backend, ctx.nofile);
            if callgrind.is_some() {
                // nginx renames its worker processes, so callgrind_control cannot find them
                // to zero and dump their counts; one process serves the requests itself.
                text = text.replace("master_process on;", "master_process off;");
            }
            std::fs::write(&config, text)?;
            let mut command = Command::new(NGINX);
            command
                .arg("-c")
                .arg(&config)
                .arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("error.log"));
            spawn(kind, command, port, &dir, "nginx", callgrind)?
        }
        Kind::Haproxy => {
            let config = dir.join("haproxy.cfg");
            std::fs::write(&config, haproxy_config(&listen, &backend))?;
            let mut command = Command::new(HAPROXY);
            command.arg("-f").arg(&config).arg("-db");
            spawn(kind, command, port, &dir, "haproxy", callgrind)?
        }
        Kind::Caddy => {
            let config = dir.join("Caddyfile");
            std::fs::write(&config, caddy_config(port, &backend))?;
            let mut command = Command::new(CADDY);
            command
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(&config)
                // Caddy keeps its data, config autosaves and certificates under these; the
                // bench must write nothing outside its tempdir.
                .env("HOME", &dir)
                .env("XDG_DATA_HOME", dir.join("data"))
                .env("XDG_CONFIG_HOME", dir.join("config"));
            spawn(kind, command, port, &dir, "caddy", callgrind)?
        }
    };
    let mut server = server;
    // berth uses a target only after its health check passed, so a 200 on `/` is the sign
    // that the route is live, not merely that the listener is up.
    wait_for(&mut server, "a 200 on /", || {
        http_status(port, "/") == Some(200)
    })?;
    Ok(server)
}

/// Spawns `command` with its output in `name.log` under `dir`; the caller waits for it.
fn spawn(
    kind: Kind,
    command: Command,
    port: u16,
    dir: &Path,
    name: &str,
    callgrind: Option<&Path>,
) -> Result<Server> {
    let log = dir.join(format!("{name}.log"));
    let mut command = match callgrind {
        None => command,
        Some(out_dir) => {
            let mut wrapped = Command::new(VALGRIND);
            wrapped
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}/cg.%p", out_dir.display()))
                .arg(command.get_program())
                .args(command.get_args());
            for (key, value) in command.get_envs() {
                match value {
                    Some(value) => wrapped.env(key, value),
                    None => wrapped.env_remove(key),
                };
            }
            wrapped
        }
    };
    let out = File::create(&log)?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {name}; {INSTALL_HINT}"))?;
    Ok(Server {
        kind,
        port,
        child,
        log,
        ready_deadline: if callgrind.is_some() {
            READY_DEADLINE * 6
        } else {
            READY_DEADLINE
        },
    })
}

/// Polls `ready` until it holds, failing with the server's log when the server exits or the
/// deadline passes.
fn wait_for(server: &mut Server, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + server.ready_deadline;
    loop {
        if ready() {
            return Ok(());
        }
        let log = || std::fs::read_to_string(&server.log).unwrap_or_default();
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!(
                "{} exited with {status} before {what}:\n{}",
                server.kind.name(),
                log()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} gave no {what} within {} s:\n{}",
                server.kind.name(),
                server.ready_deadline.as_secs(),
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port nothing listens on now. Another process could take it before the server binds it;
/// on a bench machine that is rare enough that failing the run is the right answer.
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The status of `GET path` on loopback, or None when nothing (or something not HTTP) answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let line = response.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts
        .next()?
        .starts_with("HTTP/1.")
        .then(|| parts.next()?.parse().ok())?
}

/// nginx as it is deployed in front of an app: keep-alive pool to the upstream, HTTP/1.1 to it
/// with the hop-by-hop Connection header cleared (without both, nginx closes every upstream
/// connection after one request), and no access log.
fn nginx_config(dir: &Path, listen: &str, backend: &str, nofile: u64) -> String {
    let dir = dir.display();
    format!(
        "daemon off;
master_process on;
worker_processes auto;
# Each idle client connection and its upstream side take a descriptor in a worker.
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 20000;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # nginx closes a keep-alive connection after 1,000 requests by default on both sides;
    # berth, HAProxy and Caddy set no such limit, so neither does this config.
    keepalive_requests 1000000000;

    upstream backend {{
        server {backend};
        keepalive 256;
        keepalive_requests 1000000000;
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}

/// HAProxy in HTTP mode with server-side connection reuse and one thread per core; with no
/// `log` line it logs nothing.
fn haproxy_config(listen: &str, backend: &str) -> String {
    format!(
        "global
    nbthread 2

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend bench
    bind {listen}
    default_backend app

backend app
    http-reuse always
    server app1 {backend}
"
    )
}

/// Caddy with the admin endpoint and automatic HTTPS off (they are not part of proxying and
/// would listen or fetch outside the bench; its config autosave lands in the tempdir through
/// XDG_CONFIG_HOME, as 2.6 has no `persist_config`), bound to loopback, and the
/// upstream idle pool raised from its default of 32 to nginx's 256. Caddy writes no access log
/// unless a `log` directive asks for one.
fn caddy_config(port: u16, backend: &str) -> String {
    format!(
        "{{
    admin off
    auto_https off
}}

http://127.0.0.1:{port} {{
    bind 127.0.0.1
    reverse_proxy {backend} {{
        transport http {{
            keepalive 2m
            keepalive_idle_conns 256
            keepalive_idle_conns_per_host 256
        }}
    }}
}}
"
    )
}

/// Runs wrk with `conns` keep-alive connections for `duration` and parses its report. One
/// connection gets one thread, since wrk wants at least one connection per thread.
fn wrk(port: u16, conns: usize, duration: Duration) -> Result<WrkResult> {
    let threads = if conns == 1 { 1 } else { 2 };
    let output = crate::cmd::output(
        Command::new(WRK)
            .arg(format!("-t{threads}"))
            .arg(format!("-c{conns}"))
            .arg(format!("-d{}s", duration.as_secs()))
            .arg("--latency")
            .arg(format!("http://127.0.0.1:{port}/")),
    )?;
    parse_wrk(&output).with_context(|| format!("cannot read wrk's report:\n{output}"))
}

fn parse_wrk(output: &str) -> Result<WrkResult> {
    let mut requests_per_sec = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    let mut in_distribution = false;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["50%", value] => p50 = Some(parse_latency(value)?),
                ["99%", value] => p99 = Some(parse_latency(value)?),
                [percent, _] if percent.ends_with('%') => {}
                _ => in_distribution = false,
            }
        }
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(rate.trim().parse::<f64>()?);
        } else if let Some(counts) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in counts.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    errors += n.parse::<u64>()?;
                }
            }
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += n.trim().parse::<u64>()?;
        }
    }
    Ok(WrkResult {
        requests_per_sec: requests_per_sec.context("no Requests/sec line")?,
        p50: p50.context("no 50% line in the latency distribution")?,
        p99: p99.context("no 99% line in the latency distribution")?,
        errors,
    })
}

/// Reads wrk's `95.00us`, `1.23ms`, `2.00s` or `1.00m`.
fn parse_latency(text: &str) -> Result<Duration> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("latency {text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => bail!("latency {text:?} has an unknown unit"),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Opens the idle connections (each sends one keep-alive `GET /` and reads the answer, then
/// stays open) and reads the proxy's RSS before and while they are open.
fn measure_memory(kind: Kind, server: &Server) -> Result<Memory> {
    let pid = server.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle_kib = rss_kib(pid)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (loaded_kib, established) = runtime.block_on(async {
        let connections = idle::open(server.port, IDLE_CONNECTIONS).await?;
        // Let the proxy finish whatever it does after answering (pool bookkeeping, buffers
        // given back) before reading its memory.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_kib(pid)?;
        let established = established_on(server.port)?;
        drop(connections);
        anyhow::Ok((rss, established))
    })?;
    println!(
        "  {:<8} RSS {} idle, {} with {IDLE_CONNECTIONS} idle connections ({established} established)",
        kind.name(),
        format_mib(idle_kib),
        format_mib(loaded_kib)
    );
    Ok(Memory {
        kind,
        idle_kib,
        loaded_kib,
        established,
    })
}

/// The many-connections client for the memory figures.
mod idle {
    use anyhow::{bail, Context, Result};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::task::JoinSet;

    /// How many connections are being opened at once: enough to be quick, few enough to stay
    /// well inside the listen backlogs (nginx's default is 511).
    const BATCH: usize = 200;

    pub async fn open(port: u16, count: usize) -> Result<Vec<TcpStream>> {
        let mut open = Vec::with_capacity(count);
        while open.len() < count {
            let mut batch = JoinSet::new();
            for _ in 0..BATCH.min(count - open.len()) {
                batch.spawn(async move {
                    tokio::time::timeout(Duration::from_secs(10), one(port))
                        .await
                        .context("a connection took more than 10 s")?
                });
            }
            while let Some(joined) = batch.join_next().await {
                open.push(joined??);
            }
        }
        Ok(open)
    }

    /// Connects, sends one keep-alive `GET /` and reads the whole answer.
    async fn one(port: u16) -> Result<TcpStream> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
        stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server closed the connection before answering in full");
            }
            response.extend_from_slice(&chunk[..n]);
            if let Some(total) = complete_length(&response)? {
                if response.len() >= total {
                    return Ok(stream);
                }
            }
        }
    }

    /// The length of the whole response once its head has arrived; the servers measured
    /// here all answer `/` with a Content-Length.
    pub fn complete_length(response: &[u8]) -> Result<Option<usize>> {
        let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&response[..end]);
        if !head.starts_with("HTTP/1.1 200") {
            bail!(
                "expected a 200, got {:?}",
                head.lines().next().unwrap_or("")
            );
        }
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .context("the answer has no Content-Length")?;
        Ok(Some(end + 4 + length))
    }
}

/// VmRSS of `pid` and its children (nginx's workers), in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    std::iter::once(pid)
        .chain(children_of(pid))
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .with_context(|| format!("cannot read /proc/{pid}/status"))?;
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
        })
        .sum()
}

/// The processes whose parent is `pid`, from /proc/*/stat.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name in parentheses may contain spaces; fields after it
                    // are: state, ppid, ...
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Established TCP connections whose local port is `port` (the server's side of each).
fn established_on(port: u16) -> Result<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let local = format!("0100007F:{port:04X}");
    Ok(table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"01")
        })
        .count())
}

fn format_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn format_secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

fn format_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One result per server and connection count: the median of each figure over the rounds
/// (each figure on its own, so p99 is the median p99, not the p99 of the median run), with the
/// errors of all rounds added up.
fn medians(runs: &[(Kind, usize, WrkResult)]) -> Vec<(Kind, usize, WrkResult)> {
    let mut out: Vec<(Kind, usize, WrkResult)> = Vec::new();
    for (kind, conns, _) in runs {
        if find(&out, *kind, *conns).is_some() {
            continue;
        }
        let same: Vec<&WrkResult> = runs
            .iter()
            .filter(|(k, c, _)| k == kind && c == conns)
            .map(|(_, _, r)| r)
            .collect();
        let mut rates: Vec<f64> = same.iter().map(|r| r.requests_per_sec).collect();
        rates.sort_by(f64::total_cmp);
        let mut p50: Vec<Duration> = same.iter().map(|r| r.p50).collect();
        p50.sort();
        let mut p99: Vec<Duration> = same.iter().map(|r| r.p99).collect();
        p99.sort();
        out.push((
            *kind,
            *conns,
            WrkResult {
                requests_per_sec: rates[rates.len() / 2],
                p50: p50[p50.len() / 2],
                p99: p99[p99.len() / 2],
                errors: same.iter().map(|r| r.errors).sum(),
            },
        ));
    }
    out
}

fn find(results: &[(Kind, usize, WrkResult)], kind: Kind, conns: usize) -> Option<&WrkResult> {
    results
        .iter()
        .find(|(k, c, _)| *k == kind && *c == conns)
        .map(|(_, _, r)| r)
}

fn results_table(conns: &[usize], results: &[(Kind, usize, WrkResult)]) -> String {
    let mut out = String::from(
        "| conns | server | req/s | vs direct | p50 | p99 | added p99 vs direct | errors |\n|---|---|---|---|---|---|---|---|\n",
    );
    for &n in conns {
        let Some(direct) = find(results, Kind::Direct, n) else {
            continue;
        };
        for (kind, _, r) in results.iter().filter(|(_, c, _)| *c == n) {
            let added = if *kind == Kind::Direct {
                "—".to_string()
            } else {
                format!(
                    "{:+.2} ms",
                    (r.p99.as_secs_f64() - direct.p99.as_secs_f64()) * 1000.0
                )
            };
            let _ = writeln!(
                out,
                "| {n} | {} | {:.0} | {:.2}x | {} | {} | {added} | {} |",
                kind.name(),
                r.requests_per_sec,
                r.requests_per_sec / direct.requests_per_sec,
                format_ms(r.p50),
                format_ms(r.p99),
                r.errors
            );
        }
    }
    out
}

/// berth against nginx, and the targets from the proxy's design, stated as met or not.
fn comparison(conns: &[usize], results: &[(Kind, usize, WrkResult)]) -> String {
    let mut out = String::new();
    for &n in conns {
        let (Some(direct), Some(berth)) = (
            find(results, Kind::Direct, n),
            find(results, Kind::Berth, n),
        ) else {
            continue;
        };
        let vs_direct = berth.requests_per_sec / direct.requests_per_sec;
        let _ = write!(
            out,
            "{n} conns: berth {vs_direct:.2}x direct (target >= 0.8x: {})",
            met(vs_direct >= 0.8)
        );
        if let Some(nginx) = find(results, Kind::Nginx, n) {
            let vs_nginx = berth.requests_per_sec / nginx.requests_per_sec;
            let _ = write!(
                out,
                ", {vs_nginx:.2}x nginx (target >= 1.0x: {})",
                met(vs_nginx >= 1.0)
            );
        }
        if n == 64 {
            let added = (berth.p99.as_secs_f64() - direct.p99.as_secs_f64()) * 1000.0;
            let _ = write!(
                out,
                ", added p99 {added:+.2} ms (target <= 1 ms: {})",
                met(added <= 1.0)
            );
        }
        out.push('\n');
    }
    out
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn memory_table(memory: &[Memory]) -> String {
    let mut out = format!(
        "| server | RSS idle | RSS with {IDLE_CONNECTIONS} idle keep-alive connections | added per connection | established |\n|---|---|---|---|---|\n"
    );
    for m in memory {
        let per_connection =
            (m.loaded_kib.saturating_sub(m.idle_kib)) as f64 * 1024.0 / IDLE_CONNECTIONS as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} KiB | {} |",
            m.kind.name(),
            format_mib(m.idle_kib),
            format_mib(m.loaded_kib),
            per_connection / 1024.0,
            m.established
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.34us  301.12us  12.01ms   90.12%
    Req/Sec    52.10k     3.01k   60.00k    70.00%
  Latency Distribution
     50%  580.00us
     75%  700.00us
     90%    1.01ms
     99%    1.52ms
  1036000 requests in 10.00s, 90.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec: 103600.12
Transfer/sec:      9.00MB
";

    #[test]
    fn reads_wrk_report() {
        let result = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(result.requests_per_sec, 103600.12);
        assert_eq!(result.p50, Duration::from_micros(580));
        assert_eq!(result.p99, Duration::from_micros(1520));
        assert_eq!(result.errors, 7);
    }

    #[test]
    fn a_report_without_percentiles_is_an_error() {
        assert!(parse_wrk("Requests/sec: 10.0\n").is_err());
    }

    #[test]
    fn medians_take_each_figure_on_its_own() {
        let run = |rate, p99_ms, errors| WrkResult {
            requests_per_sec: rate,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(p99_ms),
            errors,
        };
        let runs = vec![
            (Kind::Nginx, 64, run(300.0, 1, 0)),
            (Kind::Nginx, 64, run(100.0, 9, 2)),
            (Kind::Nginx, 64, run(200.0, 5, 1)),
        ];
        let out = medians(&runs);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2, run(200.0, 5, 3));
    }

    #[test]
    fn reads_latency_units() {
        assert_eq!(parse_latency("2.00s").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_latency("1.50ms").unwrap(),
            Duration::from_micros(1500)
        );
        assert!(parse_latency("3.0").is_err());
    }

    #[test]
    fn parses_options() {
        let options = Options::parse(&[
            "--duration",
            "5s",
            "--conns",
            "1,8",
            "--servers",
            "nginx",
            "--rounds",
            "1",
        ])
        .unwrap();
        assert_eq!(options.duration, Duration::from_secs(5));
        assert_eq!(options.conns, vec![1, 8]);
        assert_eq!(options.servers, vec![Kind::Nginx]);
        assert_eq!(options.rounds, 1);
        assert!(Options::parse(&["--conns", "0"]).is_err());
        assert!(Options::parse(&["--rounds", "0"]).is_err());
        assert!(Options::parse(&["--duration", "1.5s"]).is_err());
    }

    #[test]
    fn knows_when_a_response_is_complete() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n";
        assert_eq!(idle::complete_length(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert_eq!(idle::complete_length(head).unwrap(), Some(head.len() + 3));
        assert!(idle::complete_length(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").is_err());
    }
}
