//! What the deploy demo and `bench deploy` share: berth's proxy as a child process, a berth
//! project in a temp dir with its own state dir, `berth deploy` with its output read line by
//! line as it comes, and a load generator that counts every answer.
//!
//! The load generator is plain threads over `std::net::TcpStream`: each client holds one
//! HTTP/1.1 keep-alive connection, sends `GET /` at a fixed pace and reads the status line,
//! the headers and the body. Every request is recorded with the instant its answer (or its
//! error) arrived, so that failures and gaps can be looked at per time window afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The testapp service both the demo and the bench deploy, routed as `host`: versions and
/// failure modes come from `.env`, rewritten before each deploy.
pub fn compose_yaml(replicas: usize, host: &str) -> String {
    format!(
        r#"services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: ${{VERSION}}
      CRASH: ${{CRASH:-0}}
      HEALTH: ${{HEALTH:-ok}}
      FAIL_ROOT: ${{FAIL_ROOT:-0}}
    deploy:
      replicas: {replicas}
      update_config:
        monitor: 2s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 3
    x-berth:
      proxy: {{ host: {host}, port: 8080, health_path: /up }}
"#
    )
}

/// `berth proxy run` on a free loopback port, with its admin socket and state in `dir`.
/// Dropping it stops the proxy (SIGTERM, then SIGKILL after 5 s).
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    pub socket: PathBuf,
    log: PathBuf,
}

impl Proxy {
    pub fn start(berth: &Path, dir: &Path) -> Result<Proxy> {
        let port = crate::bench_proxy::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let socket = dir.join("proxy.sock");
        let log = dir.join("proxy.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(berth)
            .args(["proxy", "--admin-socket"])
            .arg(&socket)
            .args(["run", "--listen", &addr.to_string(), "--access-log", "off"])
            .arg("--state-file")
            .arg(dir.join("proxy-state.json"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {} proxy run", berth.display()))?;
        let mut proxy = Proxy {
            child,
            addr,
            socket,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                bail!("the proxy exited with {status}:\n{}", proxy.log_text());
            }
            if proxy.socket.exists()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(proxy);
            }
            if Instant::now() > deadline {
                bail!(
                    "the proxy did not listen on {addr} within 10 s:\n{}",
                    proxy.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        crate::bench_proxy::stop(&mut self.child);
    }
}

/// A berth project in its own directory, with the proxy's socket and a private state dir in
/// the environment of every berth command. Dropping it runs `berth down`.
pub struct Project {
    pub berth: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    socket: PathBuf,
    state: PathBuf,
}

impl Project {
    /// Creates `base/NAME` with `compose.yaml` and `base/state` as BERTH_STATE_DIR.
    pub fn create(
        berth: &Path,
        base: &Path,
        name: &str,
        compose: &str,
        socket: &Path,
    ) -> Result<Project> {
        let dir = base.join(name);
        let state = base.join(format!("{name}-state"));
        std::fs::create_dir_all(&dir)?;
        std::fs::create_dir_all(&state)?;
        std::fs::write(dir.join("compose.yaml"), compose)?;
        Ok(Project {
            berth: berth.to_path_buf(),
            dir,
            name: name.to_string(),
            socket: socket.to_path_buf(),
            state,
        })
    }

    /// Writes `.env`: the values the compose file interpolates.
    pub fn set_env(&self, vars: &[(&str, &str)]) -> Result<()> {
        let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.dir.join(".env"), text)?;
        Ok(())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.berth);
        c.args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .env("BERTH_PROXY_SOCKET", &self.socket)
            .env("BERTH_STATE_DIR", &self.state)
            .stdin(Stdio::null());
        c
    }

    /// Runs `berth deploy ARGS`, handing each stdout line to `on_line` as it arrives, with
    /// the time since the start.
    pub fn deploy(
        &self,
        args: &[&str],
        mut on_line: impl FnMut(Duration, &str),
    ) -> Result<DeployRun> {
        let mut full = vec!["deploy"];
        full.extend_from_slice(args);
        let started = Instant::now();
        let mut child = self
            .command(&full)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start berth deploy")?;
        let mut stderr = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut lines = Vec::new();
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let line = line.context("cannot read berth deploy's output")?;
            let at = started.elapsed();
            on_line(at, &line);
            lines.push((at, line));
        }
        let status = child.wait()?;
        let wall = started.elapsed();
        Ok(DeployRun {
            status,
            lines,
            stderr: stderr.join().unwrap_or_default(),
            started,
            wall,
        })
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self
            .command(&["down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One `berth deploy`: its exit status, stdout lines with when they arrived, and stderr.
pub struct DeployRun {
    pub status: ExitStatus,
    pub lines: Vec<(Duration, String)>,
    pub stderr: String,
    pub started: Instant,
    pub wall: Duration,
}

impl DeployRun {
    pub fn ended(&self) -> Instant {
        self.started + self.wall
    }

    /// The `--format json` events, with when each arrived.
    pub fn events(&self) -> Vec<(Duration, serde_json::Value)> {
        self.lines
            .iter()
            .filter_map(|(at, l)| Some((*at, serde_json::from_str(l).ok()?)))
            .collect()
    }
}

/// What one request got.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx answer, with its body (testapp answers `/` with its APP_VERSION).
    Ok(String),
    /// Any other status, with the body.
    Status(u16, String),
    /// The connection failed: refused, reset, closed early, timed out.
    Io(String),
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// When the answer (or the error) arrived.
    pub at: Instant,
    pub outcome: Outcome,
}

/// Clients sending `GET /` at a fixed pace until stopped. Dropping it stops the clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Vec<Sample>>>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Load {
    /// `clients` keep-alive connections to `addr`, each sending `rate` requests per second
    /// for `host`.
    pub fn start(addr: SocketAddr, host: &str, clients: usize, rate: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let interval = Duration::from_secs_f64(1.0 / rate);
        let started = Instant::now();
        let clients = (0..clients)
            .map(|i| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let host = host.to_string();
                // Spread the clients over one interval rather than sending in bursts of N.
                let first = started + interval.mul_f64(i as f64 / clients as f64);
                std::thread::spawn(move || {
                    client(addr, &host, interval, first, &stop, &ok, &failed)
                })
            })
            .collect();
        Load {
            stop,
            clients,
            ok,
            failed,
        }
    }

    /// Answers so far: (2xx, everything else).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Stops the clients and returns every request, in the order the answers arrived.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Sample> = std::mem::take(&mut self.clients)
            .into_iter()
            .flat_map(|c| c.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|s| s.at);
        all
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn client(
    addr: SocketAddr,
    host: &str,
    interval: Duration,
    first: Instant,
    stop: &AtomicBool,
    ok: &AtomicU64,
    failed: &AtomicU64,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut next = first;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_millis(500) {
            // Far behind (a slow answer): go on at the pace from now instead of a burst.
            next = now;
        }
        next += interval;
        let outcome = match request(&mut conn, addr, host, "/") {
            Ok((status, body)) if (200..300).contains(&status) => Outcome::Ok(body),
            Ok((status, body)) => Outcome::Status(status, body),
            Err(e) => {
                conn = None;
                Outcome::Io(e.to_string())
            }
        };
        match outcome {
            Outcome::Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
            _ => failed.fetch_add(1, Ordering::Relaxed),
        };
        samples.push(Sample {
            at: Instant::now(),
            outcome,
        });
    }
    samples
}

/// One `GET path` on the connection in `conn`, opening one when there is none. Returns the
/// status and the body, trimmed; the connection is kept unless the server closes it.
pub fn request(
    conn: &mut Option<BufReader<TcpStream>>,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    if conn.is_none() {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        *conn = Some(BufReader::new(stream));
    }
    let reader = conn.as_mut().expect("connected above");
    reader
        .get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())?;
    let (status, body, close) = read_response(reader)?;
    if close {
        *conn = None;
    }
    Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Reads one HTTP/1.1 response: (status, body, whether the connection ends after it).
fn read_response(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before an answer",
        ));
    }
    let mut parts = line.split_whitespace();
    let status: u16 = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            code.parse().map_err(|_| invalid("bad status code"))?
        }
        _ => return Err(invalid("not an HTTP/1 status line")),
    };
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("connection closed in the headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(invalid("bad header line"));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid("bad content-length"))?,
                )
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        reader.read_to_end(&mut body)?;
        close = true;
    }
    Ok((status, body, close))
}

/// One `GET /` for `host` on a fresh connection: (status, body).
pub fn get(addr: SocketAddr, host: &str) -> Result<(u16, String)> {
    let mut conn = None;
    request(&mut conn, addr, host, "/").with_context(|| format!("GET / on {addr}"))
}

/// Requests whose answer arrived in `[from, to]`.
pub fn window(samples: &[Sample], from: Instant, to: Instant) -> &[Sample] {
    let a = samples.partition_point(|s| s.at < from);
    let b = samples.partition_point(|s| s.at <= to);
    &samples[a..b.max(a)]
}

/// The longest time in `[from, to]` without a successful answer, counting from `from` to the
/// first and from the last to `to`.
pub fn longest_gap(samples: &[Sample], from: Instant, to: Instant) -> Duration {
    longest_gap_at(samples, from, to).0
}

/// The longest gap as in [`longest_gap`], and when it started.
pub fn longest_gap_at(samples: &[Sample], from: Instant, to: Instant) -> (Duration, Instant) {
    let mut last = from;
    let mut longest = (Duration::ZERO, from);
    for at in window(samples, from, to)
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Ok(_)))
        .map(|s| s.at)
        .chain([to])
    {
        let gap = at.saturating_duration_since(last);
        if gap > longest.0 {
            longest = (gap, last);
        }
        last = at;
    }
    longest
}

/// Successful answers per body (the version that answered).
pub fn by_version(samples: &[Sample]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for s in samples {
        if let Outcome::Ok(body) = &s.outcome {
            *counts.entry(body.clone()).or_default() += 1;
        }
    }
    counts
}

/// The kinds of failure, for a message: "3 x 502 (no target), 1 x connection refused".
pub fn describe_failures<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples {
        let kind = match &s.outcome {
            Outcome::Ok(_) => continue,
            Outcome::Status(code, body) => {
                format!("{code} ({})", body.chars().take(60).collect::<String>())
            }
            Outcome::Io(e) => e.clone(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_responses() {
        let mut r: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nv1HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(read_response(&mut r).unwrap(), (200, b"v1".to_vec(), false));
        assert_eq!(read_response(&mut r).unwrap(), (500, b"abc".to_vec(), true));
        assert!(read_response(&mut r).is_err());
    }

    #[test]
    fn gaps_count_the_edges() {
        let t = Instant::now();
        let at = |ms: u64, ok: bool| Sample {
            at: t + Duration::from_millis(ms),
            outcome: if ok {
                Outcome::Ok("v".into())
            } else {
                Outcome::Io("refused".into())
            },
        };
        let s = vec![at(10, true), at(20, false), at(50, false), at(60, true)];
        let ms = Duration::from_millis;
        assert_eq!(longest_gap(&s, t, t + ms(70)), ms(50));
        assert_eq!(longest_gap(&s, t, t + ms(200)), ms(140));
        assert_eq!(window(&s, t + ms(15), t + ms(50)).len(), 2);
        assert_eq!(longest_gap_at(&s, t, t + ms(70)), (ms(50), t + ms(10)));
    }
}
