//! The proxy process: sockets, accept loops, admin and metrics endpoints, shutdown and
//! handover, in the order they happen.

use crate::access_log::AccessLogger;
use crate::admin::{self, AdminContext};
use crate::balance::{Balance, Handoff, Load};
use crate::body::full;
use crate::config::ProxyConfig;
use crate::control::{Control, HealthHints};
use crate::forward::{ChallengeResponder, ConnInfo, Forwarder};
use crate::framing_guard::FramingGuard;
use crate::h1_server;
use crate::handover::{self, Offer, SocketKind};
use crate::listener;
use crate::metrics::Metrics;
use crate::state;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid proxy settings: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    State(String),
    #[error("upgrade failed: {0}")]
    Takeover(std::io::Error),
    #[error("cannot open the access log: {0}")]
    AccessLog(std::io::Error),
}

/// Extra parts the caller plugs in: TLS (a rustls config for the TLS listeners) and ACME
/// http-01 answers.
#[derive(Default, Clone)]
pub struct Plugins {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub challenges: Option<Arc<dyn ChallengeResponder>>,
}

/// How `run` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The shutdown future completed: sockets closed, connections drained.
    Shutdown,
    /// A new process took the sockets over; this one drained and stopped.
    HandedOver,
}

struct Sockets {
    http: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    metrics: Option<TcpListener>,
    admin: UnixListener,
    /// Set when this process took over from another; it is told we serve once we do.
    takeover: Option<std::os::unix::net::UnixStream>,
    state: state::PersistedState,
    hints: HealthHints,
}

/// Runs the proxy until `shutdown` completes or another process takes over. Everything is
/// validated and every socket opened before any request is served.
pub async fn run(
    config: ProxyConfig,
    plugins: Plugins,
    takeover: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<Exit, ServeError> {
    config.validate().map_err(ServeError::Config)?;
    let log = AccessLogger::open(&config.access_log).map_err(ServeError::AccessLog)?;
    let sockets = if takeover {
        take_over(&config).await?
    } else {
        bind_all(&config)?
    };

    let metrics = Arc::new(Metrics::new());
    let forwarder = Arc::new(Forwarder::new(
        &config,
        metrics.clone(),
        log,
        plugins.challenges.clone(),
    ));
    let control = Arc::new(Control::new(
        forwarder.clone(),
        config.state_file.clone(),
        config.health.clone(),
    ));
    control.restore(sockets.state, &sockets.hints).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (force_tx, force_rx) = watch::channel(false);
    let (admin_pause_tx, admin_pause_rx) = watch::channel(false);
    let builder = Arc::new(connection_builder(&config));
    let mut offered: Vec<(SocketKind, RawFd)> = Vec::new();
    let accepting = Accepting {
        forwarder: forwarder.clone(),
        builder: builder.clone(),
        stop: stop_rx.clone(),
        force: force_rx.clone(),
        max_head: config.max_header_bytes,
        header_timeout: config.timeouts.header_read,
    };

    // The data plane runs on worker threads of their own, each with a single-threaded
    // runtime, its own upstream pool and its own copy of every listening socket (the kernel
    // hands each connection to one of them). A connection and its upstream requests then
    // stay on one thread: no cross-thread wake-ups, which a profile under load showed to be
    // the largest cost of one shared multi-threaded runtime.
    let mut listen_names = Vec::new();
    let mut data_listeners: Vec<(std::net::TcpListener, Option<tokio_rustls::TlsAcceptor>)> =
        Vec::new();
    let std_listener = |listener: TcpListener| {
        listener.into_std().map_err(|source| ServeError::Bind {
            addr: "a listening socket".into(),
            source,
        })
    };
    for listener in sockets.http {
        listen_names.push(local_name(&listener));
        let listener = std_listener(listener)?;
        offered.push((SocketKind::Http, listener.as_raw_fd()));
        data_listeners.push((listener, None));
    }
    let mut tls_names = Vec::new();
    for listener in sockets.tls {
        tls_names.push(local_name(&listener));
        let listener = std_listener(listener)?;
        offered.push((SocketKind::Tls, listener.as_raw_fd()));
        let acceptor = plugins.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        if acceptor.is_none() {
            return Err(ServeError::Config(
                "a TLS listener needs certificates; give --cert-dir with certificates or --acme"
                    .into(),
            ));
        }
        data_listeners.push((listener, acceptor));
    }
    let (done_tx, done_rx) = watch::channel(false);
    let mut workers = Vec::new();
    let worker_count = config.workers.max(1);
    let (balance, inboxes) = Balance::new(
        (0..worker_count)
            .map(|i| {
                metrics
                    .worker_connections
                    .get_or_create(&crate::metrics::WorkerLabels {
                        worker: i.to_string(),
                    })
                    .clone()
            })
            .collect(),
    );
    for (index, inbox) in inboxes.into_iter().enumerate() {
        let copies = data_listeners
            .iter()
            .map(|(listener, tls)| Ok((listener.try_clone()?, tls.clone())))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| ServeError::Bind {
                addr: "a copy of a listening socket".into(),
                source,
            })?;
        let accepting = accepting.clone();
        let balance = balance.clone();
        let mut done = done_rx.clone();
        let worker = std::thread::Builder::new()
            .name(format!("berth-proxy-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!("worker {index} cannot start: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    spawn_inbox(inbox, accepting.clone());
                    for (listener, tls) in copies {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => spawn_accept(
                                listener,
                                tls,
                                accepting.clone(),
                                index,
                                balance.clone(),
                            ),
                            Err(e) => tracing::error!("worker {index} cannot listen: {e}"),
                        }
                    }
                    // Connections are served until the process is done with its drain.
                    stopped(&mut done).await;
                });
            })
            .map_err(|e| ServeError::Config(format!("cannot start a worker thread: {e}")))?;
        workers.push(worker);
    }
    if let Some(listener) = sockets.metrics {
        offered.push((SocketKind::Metrics, listener.as_raw_fd()));
        spawn_metrics(listener, metrics.clone(), stop_rx.clone());
    }
    offered.push((SocketKind::Admin, sockets.admin.as_raw_fd()));
    let admin_ctx = Arc::new(AdminContext {
        control: control.clone(),
        listen: listen_names,
        tls_listen: tls_names,
    });
    spawn_admin(sockets.admin, admin_ctx, stop_rx.clone(), admin_pause_rx);

    // Tell the previous process we serve, then wait for it to let go of the handover path.
    let handover_path = handover::socket_path(&config.admin_socket);
    if let Some(conn) = sockets.takeover {
        tokio::task::spawn_blocking(move || handover::confirm(conn))
            .await
            .map_err(|e| ServeError::Takeover(std::io::Error::other(e)))?
            .map_err(ServeError::Takeover)?;
        tracing::info!("took over from the previous proxy");
    }
    let _ = std::fs::remove_file(&handover_path);
    let handover_listener = std::os::unix::net::UnixListener::bind(&handover_path)
        .and_then(|l| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&handover_path, std::fs::Permissions::from_mode(0o600))?;
            l.set_nonblocking(true)?;
            UnixListener::from_std(l)
        })
        .map_err(|source| ServeError::Bind {
            addr: handover_path.display().to_string(),
            source,
        })?;

    tracing::info!(pid = std::process::id(), "proxy serving");
    let exit = tokio::select! {
        _ = shutdown => Exit::Shutdown,
        _ = serve_handover(handover_listener, control.clone(), offered, admin_pause_tx, config.handover_drain) => Exit::HandedOver,
    };

    // Stop accepting; connections finish their requests; tunnels get until the drain deadline.
    forwarder.drain();
    let _ = stop_tx.send(true);
    let drain = config.handover_drain;
    // Every open client connection is counted against the worker that serves it.
    let idle = || async { balance.open() == 0 };
    wait_until(drain, idle).await;
    // Connections still open at the deadline are closed (idle ones at once, busy ones
    // after their current request).
    let _ = force_tx.send(true);
    wait_until(Duration::from_secs(5), idle).await;
    wait_until(drain, || async { control.open_connections().await == 0 }).await;
    let _ = done_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || {
        for worker in workers {
            let _ = worker.join();
        }
    })
    .await;
    // The listening sockets close here, after the workers' copies.
    drop(data_listeners);
    if exit == Exit::Shutdown {
        let _ = std::fs::remove_file(&config.admin_socket);
        let _ = std::fs::remove_file(&handover_path);
    }
    Ok(exit)
}

fn local_name(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

fn bind_all(config: &ProxyConfig) -> Result<Sockets, ServeError> {
    let bind = |addr: SocketAddr| {
        listener::bind_tcp(addr)
            .and_then(TcpListener::from_std)
            .map_err(|source| ServeError::Bind {
                addr: addr.to_string(),
                source,
            })
    };
    // The admin socket first: if another proxy runs, say so before touching its ports.
    let admin = listener::bind_unix(&config.admin_socket)
        .and_then(UnixListener::from_std)
        .map_err(|source| ServeError::Bind {
            addr: config.admin_socket.display().to_string(),
            source,
        })?;
    let state = state::load(&config.state_file).map_err(ServeError::State)?;
    Ok(Sockets {
        http: config
            .listen
            .iter()
            .map(|a| bind(*a))
            .collect::<Result<_, _>>()?,
        tls: config
            .tls_listen
            .iter()
            .map(|a| bind(*a))
            .collect::<Result<_, _>>()?,
        metrics: config.metrics_listen.map(bind).transpose()?,
        admin,
        takeover: None,
        state,
        hints: HealthHints::new(),
    })
}

async fn take_over(config: &ProxyConfig) -> Result<Sockets, ServeError> {
    let path = handover::socket_path(&config.admin_socket);
    let received = tokio::task::spawn_blocking(move || handover::request(&path))
        .await
        .map_err(|e| ServeError::Takeover(std::io::Error::other(e)))?
        .map_err(ServeError::Takeover)?;
    let mut sockets = Sockets {
        http: vec![],
        tls: vec![],
        metrics: None,
        admin: UnixListener::from_std(placeholder_unix()?).map_err(ServeError::Takeover)?,
        takeover: Some(received.conn),
        state: received.offer.state,
        hints: received
            .offer
            .health
            .into_iter()
            .map(|(route, addr, h)| ((route, addr), h))
            .collect(),
    };
    let mut admin = None;
    for (kind, fd) in received.offer.sockets.into_iter().zip(received.fds) {
        match kind {
            SocketKind::Admin => {
                let std_listener = std::os::unix::net::UnixListener::from(fd);
                std_listener
                    .set_nonblocking(true)
                    .map_err(ServeError::Takeover)?;
                admin = Some(UnixListener::from_std(std_listener).map_err(ServeError::Takeover)?);
            }
            kind => {
                let listener = tcp_from(fd)?;
                match kind {
                    SocketKind::Http => sockets.http.push(listener),
                    SocketKind::Tls => sockets.tls.push(listener),
                    _ => sockets.metrics = Some(listener),
                }
            }
        }
    }
    sockets.admin = admin.ok_or_else(|| {
        ServeError::Takeover(std::io::Error::other(
            "the running proxy did not pass its admin socket",
        ))
    })?;
    Ok(sockets)
}

fn tcp_from(fd: OwnedFd) -> Result<TcpListener, ServeError> {
    let std_listener = std::net::TcpListener::from(fd);
    std_listener
        .set_nonblocking(true)
        .map_err(ServeError::Takeover)?;
    TcpListener::from_std(std_listener).map_err(ServeError::Takeover)
}

/// An unbound unix listener stands in until the real admin socket arrives.
fn placeholder_unix() -> Result<std::os::unix::net::UnixListener, ServeError> {
    let dir = std::env::temp_dir().join(format!("berth-proxy-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("placeholder.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).map_err(ServeError::Takeover)?;
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    listener
        .set_nonblocking(true)
        .map_err(ServeError::Takeover)?;
    Ok(listener)
}

fn connection_builder(config: &ProxyConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.timeouts.header_read)
        .max_buf_size(config.max_header_bytes)
        // A refused smuggled message after a good one ends the stream hyper reads (see
        // `FramingGuard`); half-close lets hyper still answer the good one, then shut down.
        .half_close(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// Serves one client connection; when the process stops, in-flight requests finish and
/// the connection closes (idle keep-alive connections at once). A macro because the
/// connection type's bounds are hyper's own and do not name well in a generic function.
macro_rules! serve_conn {
    ($conn:expr, $stop:ident, $force:ident, $is_h2:ident) => {{
        // On the heap: only connections that leave berth's own server (HTTP/2, requests
        // with a body or an upgrade) pay for hyper's state, instead of every connection's
        // task carrying room for it.
        let mut conn = Box::pin($conn);
        let mut stop = $stop;
        let mut force = $force;
        let finished = tokio::select! {
            _ = conn.as_mut() => true,
            _ = stopped(&mut stop) => false,
        };
        if !finished {
            // HTTP/2 clients retry what a GOAWAY did not take, so those connections shut
            // down at once. An HTTP/1.1 client may be sending on an idle keep-alive
            // connection at the very moment it closes, which fails its request; instead
            // its next response carries `Connection: close` (see `Forwarder::drain`),
            // and only connections still open at the drain deadline are closed.
            let finished = if $is_h2.load(Ordering::Acquire) {
                false
            } else {
                tokio::select! {
                    _ = conn.as_mut() => true,
                    _ = stopped(&mut force) => false,
                }
            };
            if !finished {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }};
}

/// What every accept loop shares.
#[derive(Clone)]
struct Accepting {
    forwarder: Arc<Forwarder>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// Stop accepting and start draining.
    stop: watch::Receiver<bool>,
    /// The drain deadline passed: close what is left.
    force: watch::Receiver<bool>,
    max_head: usize,
    header_timeout: Duration,
}

/// What travels with a connection passed to another worker: the TLS acceptor of the
/// listener it came in on.
type Moved = Option<tokio_rustls::TlsAcceptor>;

/// A worker's accept loop on one listener: each connection is served here or, when this
/// worker holds more than its share, passed to the least-loaded worker (`balance`).
fn spawn_accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Accepting,
    me: usize,
    balance: Arc<Balance<Moved>>,
) {
    tokio::spawn(async move {
        let mut stop = ctx.stop.clone();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped(&mut stop) => return,
            };
            let _ = stream.set_nodelay(true);
            let (to, load) = balance.place(me);
            let Some(to) = to else {
                tokio::spawn(serve_client(stream, peer, tls.clone(), ctx.clone(), load));
                continue;
            };
            // Moving the socket takes it out of this worker's reactor; the receiving worker
            // registers it with its own. It stays counted, against that worker, on its way.
            let Ok(std_stream) = stream.into_std() else {
                continue;
            };
            let handoff = Handoff {
                stream: std_stream,
                peer,
                extra: tls.clone(),
                load,
            };
            match balance.send(to, handoff) {
                Ok(()) => {
                    ctx.forwarder.metrics.connections_moved.inc();
                }
                Err(back) => {
                    // That worker has stopped: serve the connection here after all.
                    let Ok(stream) = TcpStream::from_std(back.stream) else {
                        continue;
                    };
                    let load = balance.load_of(me);
                    tokio::spawn(serve_client(stream, peer, back.extra, ctx.clone(), load));
                }
            }
        }
    });
}

/// A worker's inbox: serves the connections other workers passed to it.
fn spawn_inbox(mut inbox: tokio::sync::mpsc::UnboundedReceiver<Handoff<Moved>>, ctx: Accepting) {
    tokio::spawn(async move {
        while let Some(handoff) = inbox.recv().await {
            let Ok(stream) = TcpStream::from_std(handoff.stream) else {
                continue;
            };
            tokio::spawn(serve_client(
                stream,
                handoff.peer,
                handoff.extra,
                ctx.clone(),
                handoff.load,
            ));
        }
    });
}

/// Serves one client connection until it ends; `load` keeps it counted while it is open.
async fn serve_client(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Accepting,
    load: Load,
) {
    let _load = load;
    match tls {
        None => serve_plain(stream, peer, ctx).await,
        // On the heap: a plain connection's task then carries no room for TLS state (the
        // two paths' futures do not share their memory inside one task).
        Some(acceptor) => Box::pin(serve_tls(stream, peer, acceptor, ctx)).await,
    }
}

/// hyper's service for one client connection: every request goes to the `Forwarder`, and
/// an HTTP/2 request marks the connection as HTTP/2 for the drain (see `serve_conn!`).
macro_rules! hyper_service {
    ($forwarder:expr, $info:expr, $is_h2:expr) => {{
        let forwarder = $forwarder;
        let info = $info;
        let seen_h2 = $is_h2.clone();
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            if req.version() == hyper::Version::HTTP_2 {
                seen_h2.store(true, Ordering::Release);
            }
            let forwarder = forwarder.clone();
            async move { Ok::<_, Infallible>(forwarder.handle(req, info).await) }
        })
    }};
}

/// HTTP/1.1 connections start on berth's own server (requests without a body) and move to
/// hyper at the first request it does not take; HTTP/2 (by preface) goes to hyper at once.
async fn serve_plain(stream: TcpStream, peer: SocketAddr, ctx: Accepting) {
    let info = ConnInfo::new(peer, false);
    let guard = FramingGuard::new(stream, ctx.max_head, ctx.header_timeout);
    let settings = h1_server::Settings {
        idle_timeout: ctx.header_timeout,
        max_head: ctx.max_head,
    };
    let Some(io) = h1_server::serve(
        guard,
        ctx.forwarder.clone(),
        info,
        settings,
        ctx.force.clone(),
    )
    .await
    else {
        return;
    };
    let is_h2 = Arc::new(AtomicBool::new(false));
    let Accepting {
        forwarder,
        builder,
        stop,
        force,
        ..
    } = ctx;
    let service = hyper_service!(forwarder, info, is_h2);
    serve_conn!(
        builder.serve_connection_with_upgrades(TokioIo::new(io), service),
        stop,
        force,
        is_h2
    );
}

/// The TLS handshake, then the same servers as plain HTTP; ALPN `h2` goes to hyper at once.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    ctx: Accepting,
) {
    let info = ConnInfo::new(peer, true);
    let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
    else {
        return;
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let guard = FramingGuard::new(stream, ctx.max_head, ctx.header_timeout);
    let io = if h2 {
        h1_server::Rewind::new(guard, bytes::BytesMut::new())
    } else {
        let settings = h1_server::Settings {
            idle_timeout: ctx.header_timeout,
            max_head: ctx.max_head,
        };
        match h1_server::serve(
            guard,
            ctx.forwarder.clone(),
            info,
            settings,
            ctx.force.clone(),
        )
        .await
        {
            Some(io) => io,
            None => return,
        }
    };
    let is_h2 = Arc::new(AtomicBool::new(false));
    let Accepting {
        forwarder,
        builder,
        stop,
        force,
        ..
    } = ctx;
    let service = hyper_service!(forwarder, info, is_h2);
    serve_conn!(
        builder.serve_connection_with_upgrades(TokioIo::new(io), service),
        stop,
        force,
        is_h2
    );
}

fn spawn_metrics(listener: TcpListener, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
                _ = stopped(&mut stop) => return,
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let response = if req.uri().path() == "/metrics" {
                            let mut r = hyper::Response::new(full(metrics.encode()));
                            r.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static(
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                ),
                            );
                            r
                        } else {
                            crate::error_page::page(
                                hyper::StatusCode::NOT_FOUND,
                                "metrics are at /metrics",
                            )
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn spawn_admin(
    listener: UnixListener,
    ctx: Arc<AdminContext>,
    mut stop: watch::Receiver<bool>,
    mut paused: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            // During a handover this process stops taking admin requests, so that the
            // routes it hands over cannot change behind the new process's back.
            if *paused.borrow() {
                tokio::select! {
                    _ = paused.changed() => continue,
                    _ = stopped(&mut stop) => return,
                }
            }
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
                _ = paused.changed() => continue,
                _ = stopped(&mut stop) => return,
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let ctx = ctx.clone();
                    async move { Ok::<_, Infallible>(admin::handle(ctx, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Old process: answers a takeover request. Returns once a new process serves on our
/// sockets; a failed attempt resumes normal service and keeps waiting.
async fn serve_handover(
    listener: UnixListener,
    control: Arc<Control>,
    offered: Vec<(SocketKind, RawFd)>,
    admin_pause: watch::Sender<bool>,
    ready_timeout: Duration,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(std_stream) = stream.into_std() else {
            continue;
        };
        let _ = std_stream.set_nonblocking(false);
        let std_stream = Arc::new(std_stream);
        let conn = std_stream.clone();
        if tokio::task::spawn_blocking(move || handover::read_request(&conn))
            .await
            .ok()
            .and_then(Result::ok)
            .is_none()
        {
            continue;
        }
        admin_pause.send_replace(true);
        let offer = if control.busy().await {
            Offer {
                sockets: vec![],
                state: Default::default(),
                health: vec![],
                error: Some("a deploy is in progress; upgrade after it finishes".into()),
            }
        } else {
            let (state, health) = control.snapshot().await;
            Offer {
                sockets: offered.iter().map(|(k, _)| *k).collect(),
                state,
                health,
                error: None,
            }
        };
        let refused = offer.error.is_some();
        let fds: Vec<RawFd> = if refused {
            vec![]
        } else {
            offered.iter().map(|(_, fd)| *fd).collect()
        };
        let conn = std_stream.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            handover::send_offer(&conn, &offer, &fds)?;
            if refused {
                return Err(std::io::Error::other("refused"));
            }
            handover::wait_ready(&conn, ready_timeout)
        })
        .await;
        if matches!(outcome, Ok(Ok(()))) {
            // Dropping the listener frees the handover path; closing the connection tells
            // the new process it may bind there.
            drop(listener);
            drop(std_stream);
            return;
        }
        tracing::warn!("a takeover attempt failed; this proxy keeps serving");
        admin_pause.send_replace(false);
    }
}

/// Resolves once `stop` says stop; the borrow of the channel ends inside, so callers'
/// futures stay `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Polls `done` every 20 ms until it holds or `limit` passes.
async fn wait_until<F, Fut>(limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let _ = tokio::time::timeout(limit, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
