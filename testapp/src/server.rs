//! The accept loop and graceful shutdown.
//!
//! The container runs testapp as PID 1, and the kernel gives PID 1 no default signal
//! handlers, so SIGTERM and SIGINT are handled explicitly here: otherwise `docker stop`
//! would wait out its timeout and then SIGKILL in-flight requests.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::counter::Counter;
use crate::routes;

/// How long in-flight work may take after a shutdown signal before the process exits anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// State shared by every request.
pub struct AppState {
    pub config: Config,
    pub counter: Counter,
    /// Flips to `true` when shutdown starts; long-lived work (WebSockets) watches it.
    pub shutdown: watch::Receiver<bool>,
}

/// Held by every connection and WebSocket task. The server waits until all clones are
/// dropped, which is how it knows that in-flight work has finished.
#[derive(Clone)]
pub struct TaskGuard(#[allow(dead_code)] mpsc::Sender<()>);

pub async fn run(config: Config) -> io::Result<()> {
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    println!("testapp {} listening on {addr}", config.version);
    serve(listener, config, shutdown_signal()?).await
}

/// Serves connections from `listener` until `stop` completes, then drains.
/// Split from `run` so tests can drive it with their own listener and stop trigger.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (guard_tx, mut guard_rx) = mpsc::channel::<()>(1);
    let state = Arc::new(AppState {
        counter: Counter::new(&config.data_dir),
        config,
        shutdown: shutdown_rx,
    });
    tokio::pin!(stop);

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let guard = TaskGuard(guard_tx.clone());
                    tokio::spawn(serve_connection(stream, state.clone(), guard));
                }
                // Accept errors (e.g. too many open files) are transient; keep serving.
                Err(err) => eprintln!("testapp: accept failed: {err}"),
            },
            () = &mut stop => break,
        }
    }

    // Stop accepting first, so a proxy or client retrying sees "connection refused" at once.
    drop(listener);
    println!("testapp: shutting down, waiting for in-flight requests");
    let _ = shutdown_tx.send(true);
    drop(guard_tx);
    // `recv` returns None once every TaskGuard has been dropped.
    match tokio::time::timeout(DRAIN_LIMIT, guard_rx.recv()).await {
        Ok(_) => println!("testapp: drained, bye"),
        Err(_) => eprintln!(
            "testapp: in-flight work still running after {}s, exiting anyway",
            DRAIN_LIMIT.as_secs()
        ),
    }
    Ok(())
}

async fn serve_connection(stream: TcpStream, state: Arc<AppState>, guard: TaskGuard) {
    let shutdown = state.shutdown.clone();
    let service_state = state.clone();
    let service_guard = guard.clone();
    let service =
        service_fn(move |req| routes::handle(req, service_state.clone(), service_guard.clone()));
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping(shutdown) => {
            // Finish the request in progress (if any), then close instead of keeping alive.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        // Clients that hang up mid-request are normal; report at low volume.
        eprintln!("testapp: connection error: {err}");
    }
    drop(guard);
}

/// Completes on the first SIGTERM or SIGINT.
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => println!("testapp: got SIGTERM"),
            _ = int.recv() => println!("testapp: got SIGINT"),
        }
    })
}

/// Completes once shutdown has started (or the sender is gone). The borrowed value from
/// `wait_for` is dropped here, so callers' futures stay `Send`.
pub async fn stopping(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}
