//! Continuous load for deploy tests: keep-alive HTTP/1.1 clients that record every response.
//!
//! Each client is a thread with one connection it reuses, paced to a request rate, like a
//! browser or an upstream service would be. Any answer that is not 2xx, and any connection or
//! read error, is a failed request: a zero-downtime deploy must not produce a single one.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the request was sent, from the start of the load.
    pub sent_ms: u64,
    /// 0 for a connection or protocol error.
    pub status: u16,
    /// The body (testapp answers `/` with its version), or the error.
    pub body: String,
}

/// A running load; [`Load::stop`] ends it and returns every sample.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Sample>>>,
    started: Instant,
}

/// What the load saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub samples: Vec<Sample>,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn total(&self) -> usize {
        self.samples.len()
    }

    pub fn failed(&self) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| !(200..300).contains(&s.status))
            .collect()
    }

    pub fn rate(&self) -> f64 {
        self.total() as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    /// Successful responses by body.
    pub fn by_body(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for s in self
            .samples
            .iter()
            .filter(|s| (200..300).contains(&s.status))
        {
            *m.entry(s.body.clone()).or_default() += 1;
        }
        m
    }

    /// The longest time between two successful responses (in send order).
    pub fn longest_gap_ms(&self) -> u64 {
        let mut ok: Vec<u64> = self
            .samples
            .iter()
            .filter(|s| (200..300).contains(&s.status))
            .map(|s| s.sent_ms)
            .collect();
        ok.sort_unstable();
        ok.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }

    /// A summary for assertion messages: totals and the first failures.
    pub fn summary(&self) -> String {
        let failed = self.failed();
        let first: Vec<String> = failed
            .iter()
            .take(5)
            .map(|s| format!("{}ms: {} {}", s.sent_ms, s.status, s.body.trim()))
            .collect();
        format!(
            "{} requests in {:.1}s ({:.0}/s), {} failed {:?}, bodies {:?}",
            self.total(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            failed.len(),
            first,
            self.by_body()
        )
    }
}

impl Load {
    /// Starts `clients` threads sending `GET path` with `Host: host` to `addr`, each at about
    /// `per_client` requests per second.
    pub fn start(
        addr: SocketAddr,
        host: &str,
        path: &str,
        clients: usize,
        per_client: u32,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / f64::from(per_client.max(1)));
        let threads = (0..clients)
            .map(|_| {
                let stop = stop.clone();
                let host = host.to_string();
                let path = path.to_string();
                std::thread::spawn(move || client(addr, &host, &path, interval, started, &stop))
            })
            .collect();
        Load {
            stop,
            threads,
            started,
        }
    }

    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Release);
        let mut samples = Vec::new();
        for t in self.threads {
            samples.extend(t.join().expect("a load client panicked"));
        }
        samples.sort_by_key(|s| s.sent_ms);
        LoadReport {
            samples,
            elapsed: self.started.elapsed(),
        }
    }
}

fn client(
    addr: SocketAddr,
    host: &str,
    path: &str,
    interval: Duration,
    started: Instant,
    stop: &AtomicBool,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        if next + interval * 10 < Instant::now() {
            // Far behind (the machine was busy): do not burst to catch up.
            next = Instant::now();
        }
        let sent_ms = started.elapsed().as_millis() as u64;
        let result = (|| -> io::Result<(u16, String, bool)> {
            if conn.is_none() {
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                s.set_nodelay(true)?;
                conn = Some(BufReader::new(s));
            }
            let c = conn.as_mut().expect("connected above");
            write!(
                c.get_mut(),
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-load\r\n\r\n"
            )?;
            read_response(c)
        })();
        match result {
            Ok((status, body, close)) => {
                if close {
                    conn = None;
                }
                out.push(Sample {
                    sent_ms,
                    status,
                    body,
                });
            }
            Err(e) => {
                conn = None;
                out.push(Sample {
                    sent_ms,
                    status: 0,
                    body: e.to_string(),
                });
            }
        }
    }
    out
}

/// Reads one response with a Content-Length body; returns status, body and whether the
/// server will close the connection.
fn read_response(c: &mut BufReader<TcpStream>) -> io::Result<(u16, String, bool)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if c.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before a response",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = 0usize;
    let mut close = false;
    loop {
        line.clear();
        if c.read_line(&mut line)? == 0 {
            return Err(bad("the connection closed in the headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = v.parse().map_err(|_| bad("bad content-length"))?;
            } else if k == "connection" && v.eq_ignore_ascii_case("close") {
                close = true;
            } else if k == "transfer-encoding" {
                return Err(bad("chunked bodies are not read by this client"));
            }
        }
    }
    let mut body = vec![0; length];
    c.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned(), close))
}
