//! Continuous load through the proxy from keep-alive clients that record every response.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub ok: u64,
    pub failed: u64,
    /// Successful responses by body (the backend's name).
    pub by_body: BTreeMap<String, u64>,
    /// The first failures, for the assertion message.
    pub errors: Vec<String>,
    /// Bodies with the moment each request was sent.
    pub timeline: Vec<(Instant, String)>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<Report>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `concurrency` clients, each sending `GET path` with `Host: host` back to back.
    pub fn start(proxy: SocketAddr, host: &str, path: &str, concurrency: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(Report::default()));
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        let tasks = (0..concurrency)
            .map(|_| {
                let stop = stop.clone();
                let report = report.clone();
                let client = client.clone();
                let uri: hyper::Uri = format!("http://{proxy}{path}").parse().unwrap();
                let host = host.to_string();
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let sent_at = Instant::now();
                        let request = hyper::Request::builder()
                            .uri(uri.clone())
                            .header("host", &host)
                            .body(Empty::new())
                            .unwrap();
                        let outcome = match client.request(request).await {
                            Ok(response) => {
                                let status = response.status();
                                match response.into_body().collect().await {
                                    Ok(body) if status.is_success() => {
                                        Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
                                    }
                                    Ok(body) => Err(format!(
                                        "status {status}: {}",
                                        String::from_utf8_lossy(&body.to_bytes())
                                    )),
                                    Err(e) => Err(format!("body: {e}")),
                                }
                            }
                            Err(e) => Err(format!("request: {e:?}")),
                        };
                        let mut r = report.lock().unwrap();
                        match outcome {
                            Ok(body) => {
                                r.ok += 1;
                                *r.by_body.entry(body.clone()).or_default() += 1;
                                r.timeline.push((sent_at, body));
                            }
                            Err(e) => {
                                r.failed += 1;
                                if r.errors.len() < 10 {
                                    r.errors.push(e);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            report,
            tasks,
        }
    }

    pub fn snapshot(&self) -> Report {
        self.report.lock().unwrap().clone()
    }

    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            let _ = task.await;
        }
        let report = self.report.lock().unwrap().clone();
        report
    }
}

/// One GET through the proxy, returning status and body.
pub async fn get(proxy: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::builder()
        .uri(format!("http://{proxy}{path}"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let response = client
        .request(request)
        .await
        .expect("request through the proxy");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
