//! Active health checks: one task per target, fast until it is healthy, slower after.

use crate::config::HealthIntervals;
use crate::metrics::{Metrics, TransitionLabels};
use crate::target::{Health, Target};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts checking `target`. The task holds only a weak reference and ends once the
/// target is gone from every routing snapshot.
pub fn spawn(
    target: &Arc<Target>,
    health_path: Option<String>,
    host: Option<String>,
    intervals: HealthIntervals,
    metrics: Arc<Metrics>,
) {
    let weak = Arc::downgrade(target);
    let addr = target.addr;
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let passed = check(
                addr,
                health_path.as_deref(),
                host.as_deref(),
                intervals.timeout,
            )
            .await;
            let Some(target) = weak.upgrade() else { return };
            let current = target.health();
            let next = if passed.is_ok() {
                failures = 0;
                Health::Healthy
            } else {
                failures += 1;
                match current {
                    // A healthy target stays in rotation through one blip; passive
                    // detection removes it at once if it really refuses connections.
                    Health::Healthy if failures < intervals.fall => Health::Healthy,
                    Health::Unknown if failures < intervals.fall => Health::Unknown,
                    _ => Health::Unhealthy,
                }
            };
            if target.set_health(next) != next {
                let to = match next {
                    Health::Healthy => "healthy",
                    Health::Unhealthy => "unhealthy",
                    Health::Unknown => "unknown",
                };
                tracing::info!(target = %target.authority, to, detail = ?passed.err(), "health changed");
                metrics
                    .health_transitions
                    .get_or_create(&TransitionLabels {
                        target: target.authority.clone(),
                        to,
                    })
                    .inc();
            }
            // Re-read: the data plane may have marked it down meanwhile.
            let interval = match target.health() {
                Health::Healthy => intervals.steady,
                Health::Unknown => intervals.fast,
                Health::Unhealthy => (intervals.fast * 3).min(intervals.steady),
            };
            drop(target);
            tokio::time::sleep(interval).await;
        }
    });
}

/// One check: an HTTP GET of `path` answered 2xx or 3xx, or, without a path, an accepted
/// TCP connection. The Host header is the route's own name when it has one: frameworks that
/// check it (Django's ALLOWED_HOSTS, Rails' host authorization) refuse a bare IP address, and
/// a check they refuse would keep a good container out of rotation.
pub async fn check(
    addr: SocketAddr,
    path: Option<&str>,
    host: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let host = host.map(str::to_string).unwrap_or_else(|| addr.to_string());
    let attempt = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let Some(path) = path else { return Ok(()) };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-proxy-health\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut head = [0u8; 64];
        let mut len = 0;
        while len < 12 {
            let n = stream
                .read(&mut head[len..])
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed before answering".to_string());
            }
            len += n;
        }
        // "HTTP/1.1 200 ..."
        let status: u16 = std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "not an HTTP answer".to_string())?;
        if (200..400).contains(&status) {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}
