//! The request path: route, pick a target, pass the request on, stream the answer back.

use crate::access_log::{AccessLogger, Entry};
use crate::body::{full, BoxError, Guarded, ProxyBody};
use crate::config::ProxyConfig;
use crate::error_page;
use crate::h1_client::{self, Answer, Exchange};
use crate::load_balancer;
use crate::metrics::{ErrorLabels, Metrics, StatusClass};
use crate::request_head::RequestHead;
use crate::request_id::RequestIds;
use crate::router::Router;
use crate::service::Service;
use crate::target::{Health, Target};
use crate::tunnel;
use crate::upstream::{Upstream, UpstreamError};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

thread_local! {
    static UPSTREAM: std::cell::OnceCell<Upstream> = const { std::cell::OnceCell::new() };
}

/// An answer and, for metrics and the access log, the route and target that served it.
type Served = (Reply, Option<Arc<Service>>, Option<Arc<Target>>);

/// A request as the data plane takes it, from whichever server read it.
enum Inbound<'a> {
    /// From hyper's server: HTTP/2, and HTTP/1.1 requests with a body or an upgrade. On
    /// the heap, so that the common request's futures carry no room for it.
    Hyper(Box<Request<Incoming>>),
    /// From berth's own HTTP/1.1 server, its head as it arrived.
    Bodyless(&'a RequestHead<'a>),
}

/// What the data plane needs to know of every request, read once when it arrives.
struct Asked<'a> {
    request_id: HeaderValue,
    host: &'a str,
    path: &'a str,
    method: hyper::Method,
    version: Version,
    conn: ConnInfo,
    /// An HTTP/1 request to upgrade the connection: unless the answer is 101 the
    /// connection closes after it, since `FramingGuard` stops following the client's bytes
    /// after an upgrade head and a request after it would go unjudged.
    upgrade: bool,
}

/// The request as it goes to a target.
enum Outbound {
    /// A head without a body, encoded once: it is the same for every target a retry may
    /// pick.
    Bodyless(Bytes),
    /// A request with a body, for hyper's client (the body is taken by the first attempt).
    WithBody(Box<hyper::http::request::Parts>, Option<Incoming>),
}

/// An answer: a target's, as berth's own client read it, or a response (hyper's client,
/// error pages, upgrades).
pub enum Reply {
    Answer(Answer<ProxyBody>),
    Response(Response<ProxyBody>),
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Answer(answer) => answer.status,
            Reply::Response(response) => response.status(),
        }
    }

    /// Whether the client connection closes after this answer.
    pub fn closes(&self) -> bool {
        match self {
            Reply::Answer(answer) => answer.close,
            Reply::Response(response) => response
                .headers()
                .get_all(header::CONNECTION)
                .iter()
                .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close")),
        }
    }

    /// Adds the request's id and, when the process is draining, `Connection: close`.
    fn finish(&mut self, request_id: HeaderValue, close: bool) {
        match self {
            Reply::Answer(answer) => {
                answer.request_id = Some(request_id);
                answer.close = close;
            }
            Reply::Response(response) => {
                let headers = response.headers_mut();
                headers.insert(&X_REQUEST_ID, request_id);
                if close {
                    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
        }
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        match self {
            Reply::Answer(answer) => answer.into_response(),
            Reply::Response(response) => response,
        }
    }
}

impl From<Response<ProxyBody>> for Reply {
    fn from(response: Response<ProxyBody>) -> Reply {
        Reply::Response(response)
    }
}

/// Where a request came from, fixed per client connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's address as text, formatted once per connection for X-Forwarded-For.
    pub ip: IpText,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        ConnInfo {
            peer,
            tls,
            ip: IpText::new(peer.ip()),
        }
    }
}

/// An IP address as text, kept inline so that `ConnInfo` stays `Copy`.
#[derive(Clone, Copy)]
pub struct IpText {
    bytes: [u8; 45],
    len: u8,
}

impl IpText {
    fn new(ip: std::net::IpAddr) -> IpText {
        use std::io::Write;
        let mut bytes = [0u8; 45];
        let mut rest = &mut bytes[..];
        // The longest IPv6 text (with an embedded IPv4 address) is 45 characters.
        let _ = write!(rest, "{ip}");
        let len = (45 - rest.len()) as u8;
        IpText { bytes, len }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for IpText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Answers for `/.well-known/acme-challenge/` on plain HTTP, so ACME http-01 works without
/// a route for the host.
pub trait ChallengeResponder: Send + Sync {
    fn respond(&self, token: &str) -> Option<String>;
}

/// The data plane: everything a request needs, shared by every connection.
pub struct Forwarder {
    pub router: ArcSwap<Router>,
    timeouts: crate::config::Timeouts,
    pub metrics: Arc<Metrics>,
    log: AccessLogger,
    ids: RequestIds,
    max_body: u64,
    /// The longest answer head accepted from a target.
    max_head: usize,
    response_timeout: std::time::Duration,
    connect_timeout: std::time::Duration,
    challenges: Option<Arc<dyn ChallengeResponder>>,
    draining: std::sync::atomic::AtomicBool,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

impl Forwarder {
    pub fn new(
        config: &ProxyConfig,
        metrics: Arc<Metrics>,
        log: AccessLogger,
        challenges: Option<Arc<dyn ChallengeResponder>>,
    ) -> Forwarder {
        Forwarder {
            router: ArcSwap::from_pointee(Router::default()),
            timeouts: config.timeouts.clone(),
            metrics,
            log,
            ids: RequestIds::new(),
            max_body: config.max_body,
            max_head: config.max_header_bytes,
            response_timeout: config.timeouts.response,
            connect_timeout: config.timeouts.connect,
            challenges,
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The process is stopping: every HTTP/1.1 response from now on closes its connection,
    /// so clients move to the next process without a request lost on a closed socket.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Sends on this thread's pool: each data-plane worker keeps its own, so a request and
    /// its upstream connection stay on one thread.
    fn send_upstream(
        &self,
        request: Request<ProxyBody>,
    ) -> impl std::future::Future<Output = Result<Response<Incoming>, UpstreamError>> + Send + use<>
    {
        UPSTREAM.with(|pool| {
            pool.get_or_init(|| Upstream::new(&self.timeouts))
                .send(request)
        })
    }

    /// A request from hyper's server (HTTP/2, and HTTP/1.1 requests with a body or an
    /// upgrade).
    pub async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let request_id = self.request_id(req.headers().get(&X_REQUEST_ID).cloned());
        let host = RequestHost::of(&req);
        // A copy shares the URI's memory; the request itself moves on to the target.
        let uri = req.uri().clone();
        let asked = Asked {
            request_id,
            host: host.as_str(),
            path: uri.path(),
            method: req.method().clone(),
            version: req.version(),
            conn,
            upgrade: req.version() != Version::HTTP_2
                && req.headers().contains_key(header::UPGRADE),
        };
        self.handle_request(Inbound::Hyper(Box::new(req)), asked)
            .await
            .into_response()
    }

    /// A request without a body from berth's own HTTP/1.1 server (`h1_server`).
    pub async fn handle_bodyless(&self, req: &RequestHead<'_>, conn: ConnInfo) -> Reply {
        let given = req
            .get_shared("x-request-id")
            .and_then(|v| HeaderValue::from_maybe_shared(v).ok());
        let request_id = self.request_id(given);
        let asked = Asked {
            request_id,
            host: req.get_str("host").unwrap_or(""),
            path: req.uri().path(),
            method: req.method().clone(),
            version: Version::HTTP_11,
            conn,
            upgrade: false,
        };
        self.handle_request(Inbound::Bodyless(req), asked).await
    }

    /// The client's request id when it sent a usable one, else a new one.
    fn request_id(&self, given: Option<HeaderValue>) -> HeaderValue {
        given
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .unwrap_or_else(|| self.ids.next())
    }

    /// Every request, whichever server read it.
    async fn handle_request(&self, req: Inbound<'_>, asked: Asked<'_>) -> Reply {
        let started = Instant::now();
        let (mut reply, route, target) = self.dispatch(req, &asked).await;
        let status = reply.status();
        let close = asked.version != Version::HTTP_2
            && status != StatusCode::SWITCHING_PROTOCOLS
            && (asked.upgrade || self.draining.load(std::sync::atomic::Ordering::Acquire));
        let request_id = asked.request_id;
        let status = status.as_u16();
        let elapsed = started.elapsed();
        if let Some(service) = &route {
            // Handles were made when the route was published, so counting takes no lock
            // and allocates nothing.
            service.metrics.duration.observe(elapsed.as_secs_f64());
            let class = StatusClass::of(status) as usize;
            match &target {
                Some(t) => {
                    t.count_response(class);
                    t.observe_latency(elapsed.as_secs_f64());
                }
                None => {
                    service.metrics.untargeted[class].inc();
                }
            }
        }
        if self.log.enabled() {
            self.log.write(&Entry {
                time: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default(),
                request_id: request_id.to_str().unwrap_or_default(),
                client: asked.conn.ip.as_str().to_string(),
                method: asked.method.as_str(),
                host: asked.host,
                path: asked.path,
                protocol: version_name(asked.version),
                status,
                route: route.as_ref().map(|s| s.spec.name.as_str()).unwrap_or(""),
                target: target.as_ref().map(|t| t.authority.as_str()).unwrap_or(""),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
            });
        }
        reply.finish(request_id, close);
        reply
    }

    /// Returns the answer and, for metrics and the log, the route and target that served it.
    async fn dispatch(&self, req: Inbound<'_>, asked: &Asked<'_>) -> Served {
        let (host, path, conn) = (asked.host, asked.path, asked.conn);
        if let Inbound::Hyper(req) = &req {
            if let Some(reason) = framing_problem(req.headers()) {
                return (error_page::bad_request(reason).into(), None, None);
            }
            // `FramingGuard` refuses HTTP/1 CONNECT; over HTTP/2 it arrives here.
            if req.method() == hyper::Method::CONNECT {
                let page = error_page::page(
                    StatusCode::NOT_IMPLEMENTED,
                    "connect is not supported by this proxy; send requests with a path",
                );
                return (page.into(), None, None);
            }
        }
        if !conn.tls {
            if let (Some(challenges), Some(token)) = (
                &self.challenges,
                path.strip_prefix("/.well-known/acme-challenge/"),
            ) {
                if let Some(key_authorization) = challenges.respond(token) {
                    return (Response::new(full(key_authorization)).into(), None, None);
                }
            }
        }
        let service = {
            let router = self.router.load();
            match router.find(host, path) {
                Some(service) => service.clone(),
                None => return (error_page::no_route(host).into(), None, None),
            }
        };
        if let Some(message) = &service.spec.maintenance {
            let page = error_page::maintenance(message);
            return (page.into(), Some(service), None);
        }
        if !service.control.wait_unpaused().await {
            let page = error_page::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "the route is paused for longer than requests are held; try again shortly",
            );
            return (page.into(), Some(service), None);
        }
        if let Inbound::Hyper(req) = &req {
            if content_length(req.headers()).is_some_and(|len| len > self.max_body) {
                return (
                    error_page::too_large(self.max_body).into(),
                    Some(service),
                    None,
                );
            }
        }
        let inflight = &service.metrics.inflight;
        inflight.inc();
        let _inflight = scopeguard(|| {
            inflight.dec();
        });
        let request_id = &asked.request_id;
        let outbound = match req {
            // Only hyper's server hands over upgrades (berth's own takes requests without
            // one), so an upgrade always has hyper's body, which carries the upgraded
            // connection.
            Inbound::Hyper(req) => {
                let (parts, body) = (*req).into_parts();
                if tunnel::is_upgrade(&parts) {
                    let req = Request::from_parts(parts, body);
                    // On the heap: upgrades are rare, and the two paths' futures do not
                    // share their memory, so inline this one would make every request's
                    // larger.
                    let (response, target) =
                        Box::pin(self.upgrade(req, &service, host, request_id, conn)).await;
                    drop(_inflight);
                    return (response.into(), Some(service), target);
                }
                // A request without a body can be sent again to another target when the
                // first refuses the connection: nothing reached it, so nothing runs twice.
                if body.is_end_stream() {
                    let forwarding = Forwarding::new(&parts.headers, host, request_id, &conn);
                    let head = h1_client::encode_head(&parts, host, &forwarding);
                    Outbound::Bodyless(head)
                } else {
                    Outbound::WithBody(Box::new(parts), Some(body))
                }
            }
            Inbound::Bodyless(req) => {
                let previous = req.get_str("x-forwarded-for");
                let forwarding = Forwarding::with_previous(previous, host, request_id, &conn);
                Outbound::Bodyless(h1_client::encode_raw_head(req, host, &forwarding))
            }
        };
        let (reply, target) = self.forward(outbound, &service, asked).await;
        drop(_inflight);
        (reply, Some(service), target)
    }

    /// Joins an `Upgrade` request (a WebSocket) to a target through `tunnel`.
    async fn upgrade(
        &self,
        req: Request<Incoming>,
        service: &Arc<Service>,
        host: &str,
        request_id: &HeaderValue,
        conn: ConnInfo,
    ) -> (Response<ProxyBody>, Option<Arc<Target>>) {
        // As in `forward`: a snapshot taken just before a swap may hold only draining
        // targets; the current one is asked once more.
        let picked = load_balancer::pick(service).cloned().or_else(|| {
            self.current_service(host, req.uri().path(), service)
                .and_then(|current| load_balancer::pick(&current).cloned())
        });
        let Some(target) = picked else {
            return (error_page::no_target(&service.spec.name), None);
        };
        let response =
            tunnel::open(req, &target, host, conn, request_id, self.connect_timeout).await;
        if response.status() == StatusCode::BAD_GATEWAY {
            self.passive_failure(service, &target, "connect");
        }
        (response, Some(target))
    }

    /// The route's service in the current router snapshot, when it is not `seen`.
    fn current_service(&self, host: &str, path: &str, seen: &Arc<Service>) -> Option<Arc<Service>> {
        let router = self.router.load();
        router
            .find(host, path)
            .filter(|s| !Arc::ptr_eq(s, seen))
            .cloned()
    }

    /// Returns the answer and the target that served it.
    async fn forward(
        &self,
        outbound: Outbound,
        original: &Arc<Service>,
        asked: &Asked<'_>,
    ) -> (Reply, Option<Arc<Target>>) {
        let (host, path, conn, request_id) =
            (asked.host, asked.path, asked.conn, &asked.request_id);
        let mut refreshed: Option<Arc<Service>> = None;
        let mut outbound = outbound;
        // A request without a body can be sent again to another target when the first
        // refuses the connection: nothing reached it, so nothing runs twice.
        let replayable = matches!(outbound, Outbound::Bodyless(_));
        let idempotent = matches!(
            asked.method,
            hyper::Method::GET
                | hyper::Method::HEAD
                | hyper::Method::OPTIONS
                | hyper::Method::TRACE
        );
        let mut excluded: Option<Arc<Target>> = None;
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let service = refreshed.as_ref().unwrap_or(original);
            let Some(target) = load_balancer::pick_excluding(service, excluded.as_ref()) else {
                if last_error.is_empty() {
                    // A request that loaded the router snapshot just before a deploy's swap
                    // can find only draining targets in it; the current snapshot has the new
                    // set, so look once more there before answering 503.
                    if refreshed.is_none() {
                        if let Some(current) = self.current_service(host, path, service) {
                            refreshed = Some(current);
                            continue;
                        }
                    }
                    return (error_page::no_target(&service.spec.name).into(), None);
                }
                break;
            };
            let target = target.clone();
            let guard = target.begin();
            let sent = match &mut outbound {
                // Requests without a body: berth's own client, on this thread's pool.
                Outbound::Bodyless(head) => {
                    let exchange = Exchange {
                        addr: target.addr,
                        head_request: asked.method == hyper::Method::HEAD,
                        connect_timeout: self.connect_timeout,
                        idle_timeout: self.timeouts.upstream_idle,
                        response_timeout: self.response_timeout,
                        max_head: self.max_head,
                    };
                    // The client bounds the wait itself, with a timer kept per connection.
                    h1_client::send(head, exchange).await.map(|answer| {
                        Reply::Answer(
                            answer.map_body(|body| Guarded::new(body, guard).boxed_unsync()),
                        )
                    })
                }
                // Requests with a body: hyper's client sends it while it reads the answer.
                Outbound::WithBody(parts, body) => {
                    let upstream_body: ProxyBody = match body.take() {
                        Some(b) => Limited::new(b, self.max_body as usize)
                            .map_err(BoxError::from)
                            .boxed_unsync(),
                        None => crate::body::empty(),
                    };
                    let upstream_req = match build_upstream_request(
                        parts,
                        &target,
                        host,
                        request_id,
                        conn,
                        upstream_body,
                    ) {
                        Ok(r) => r,
                        Err(reason) => return (error_page::bad_request(&reason).into(), None),
                    };
                    match tokio::time::timeout(
                        self.response_timeout,
                        self.send_upstream(upstream_req),
                    )
                    .await
                    {
                        Ok(sent) => sent.map(|response| {
                            let (mut parts, incoming) = response.into_parts();
                            strip_hop_headers(&mut parts.headers);
                            let body = Guarded::new(incoming, guard)
                                .map_err(BoxError::from)
                                .boxed_unsync();
                            Reply::Response(Response::from_parts(parts, body))
                        }),
                        Err(_) => Err(UpstreamError::Timeout),
                    }
                }
            };
            match sent {
                Ok(reply) => return (reply, Some(target)),
                Err(UpstreamError::Connect(e)) => {
                    self.passive_failure(service, &target, "connect");
                    last_error = format!("target {} refused the connection: {e}", target.authority);
                    if !replayable {
                        return (error_page::bad_gateway(&last_error).into(), Some(target));
                    }
                    excluded = Some(target);
                }
                Err(UpstreamError::RequestBody(e)) => {
                    let response = if e.contains("limit") {
                        error_page::too_large(self.max_body)
                    } else {
                        error_page::bad_request(&format!("the request body could not be read: {e}"))
                    };
                    return (response.into(), Some(target));
                }
                Err(UpstreamError::Other(e)) => {
                    target.record_failure();
                    self.count_error(service, &target, "other");
                    // A connection that broke before any answer (a target killed with
                    // requests on its keep-alive connections) is retried elsewhere when the
                    // request is idempotent and has no body, as nginx's
                    // `proxy_next_upstream error` does.
                    if replayable && idempotent {
                        last_error = format!("target {} failed the request: {e}", target.authority);
                        excluded = Some(target);
                        continue;
                    }
                    return (
                        error_page::bad_gateway(&format!(
                            "target {} failed the request: {e}",
                            target.authority
                        ))
                        .into(),
                        Some(target),
                    );
                }
                Err(UpstreamError::Timeout) => {
                    target.record_failure();
                    self.count_error(service, &target, "timeout");
                    return (
                        error_page::gateway_timeout(&format!(
                            "target {} did not answer within {} s",
                            target.authority,
                            self.response_timeout.as_secs()
                        ))
                        .into(),
                        Some(target),
                    );
                }
            }
        }
        (error_page::bad_gateway(&last_error).into(), None)
    }

    /// A refused connection takes the target out of rotation at once; the health checker
    /// brings it back when it answers again.
    fn passive_failure(&self, service: &Service, target: &Arc<Target>, kind: &'static str) {
        target.record_failure();
        self.count_error(service, target, kind);
        if target.set_health(Health::Unhealthy) != Health::Unhealthy {
            tracing::warn!(target = %target.authority, route = %service.spec.name, "target refused a connection; taken out of rotation");
            self.metrics
                .health_transitions
                .get_or_create(&crate::metrics::TransitionLabels {
                    target: target.authority.clone(),
                    to: "unhealthy",
                })
                .inc();
        }
    }

    fn count_error(&self, service: &Service, target: &Target, kind: &'static str) {
        self.metrics
            .upstream_errors
            .get_or_create(&ErrorLabels {
                route: service.spec.name.clone(),
                target: target.authority.clone(),
                kind,
            })
            .inc();
    }
}

/// The request as the target receives it: HTTP/1.1, absolute URI for the pool, the
/// client's Host, forwarding headers, no hop-by-hop headers.
fn build_upstream_request(
    req: &hyper::http::request::Parts,
    target: &Target,
    host: &str,
    request_id: &HeaderValue,
    conn: ConnInfo,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, String> {
    let mut uri = hyper::http::uri::Parts::default();
    uri.scheme = Some(hyper::http::uri::Scheme::HTTP);
    uri.authority = Some(target.uri_authority.clone());
    uri.path_and_query = Some(
        req.uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/")),
    );
    let uri = Uri::from_parts(uri).map_err(|e| format!("the request target is not valid: {e}"))?;
    let mut headers = req.headers.clone();
    strip_hop_headers(&mut headers);
    if !headers.contains_key(header::HOST) {
        if let Ok(value) =
            HeaderValue::from_str(req.uri.authority().map(|a| a.as_str()).unwrap_or(host))
        {
            headers.insert(header::HOST, value);
        }
    }
    set_forwarding_headers(&mut headers, host, request_id, conn);
    if body.size_hint().exact().is_none() && !body.is_end_stream() {
        // The client's own Transfer-Encoding went with the hop-by-hop headers. Said
        // again, so that hyper's client sends the body even on a GET or HEAD, where
        // it otherwise assumes none and drops it.
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    }
    let mut upstream = Request::new(body);
    *upstream.method_mut() = req.method.clone();
    *upstream.uri_mut() = uri;
    *upstream.version_mut() = Version::HTTP_11;
    *upstream.headers_mut() = headers;
    Ok(upstream)
}

/// The forwarding headers' values: X-Forwarded-For (the client appended), -Proto, -Host
/// and X-Request-Id, for requests and upgrades alike.
pub(crate) struct Forwarding<'a> {
    pub forwarded_for: std::borrow::Cow<'a, str>,
    pub proto: &'static str,
    pub host: &'a str,
    pub request_id: &'a HeaderValue,
}

impl<'a> Forwarding<'a> {
    pub fn new(
        headers: &HeaderMap,
        host: &'a str,
        request_id: &'a HeaderValue,
        conn: &'a ConnInfo,
    ) -> Forwarding<'a> {
        let previous = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok());
        Forwarding::with_previous(previous, host, request_id, conn)
    }

    /// `previous` is the X-Forwarded-For value the client sent, if any.
    pub fn with_previous(
        previous: Option<&str>,
        host: &'a str,
        request_id: &'a HeaderValue,
        conn: &'a ConnInfo,
    ) -> Forwarding<'a> {
        let client_ip = conn.ip.as_str();
        let forwarded_for = match previous {
            Some(previous) => format!("{previous}, {client_ip}").into(),
            None => client_ip.into(),
        };
        Forwarding {
            forwarded_for,
            proto: if conn.tls { "https" } else { "http" },
            host,
            request_id,
        }
    }

    /// Whether `name` is one of the headers these values replace.
    pub fn replaces(name: &HeaderName) -> bool {
        Forwarding::replaces_name(name.as_str().as_bytes())
    }

    /// `replaces` for a name in any case, as a client sent it.
    pub fn replaces_name(name: &[u8]) -> bool {
        match name.len() {
            12 => name.eq_ignore_ascii_case(b"x-request-id"),
            15 => name.eq_ignore_ascii_case(b"x-forwarded-for"),
            16 => name.eq_ignore_ascii_case(b"x-forwarded-host"),
            17 => name.eq_ignore_ascii_case(b"x-forwarded-proto"),
            _ => false,
        }
    }
}

pub(crate) fn set_forwarding_headers(
    headers: &mut HeaderMap,
    host: &str,
    request_id: &HeaderValue,
    conn: ConnInfo,
) {
    let forwarding = Forwarding::new(headers, host, request_id, &conn);
    if let Ok(value) = HeaderValue::from_str(&forwarding.forwarded_for) {
        headers.insert(&X_FORWARDED_FOR, value);
    }
    headers.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(forwarding.proto),
    );
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert(&X_FORWARDED_HOST, value);
    }
    headers.insert(&X_REQUEST_ID, request_id.clone());
}

/// Removes the headers that describe one hop (RFC 9110 7.6.1), including those the
/// Connection header names.
pub fn strip_hop_headers(headers: &mut HeaderMap) {
    for name in connection_named(headers) {
        headers.remove(name);
    }
    for name in HOP_HEADERS {
        headers.remove(name);
    }
}

/// The headers that describe one hop (RFC 9110 7.6.1), besides those Connection names.
static HOP_HEADERS: [&HeaderName; 7] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

pub(crate) fn is_hop_header(name: &HeaderName) -> bool {
    is_hop_name(name.as_str().as_bytes())
}

/// `is_hop_header` for a name in any case, as it arrived.
pub(crate) fn is_hop_name(name: &[u8]) -> bool {
    // By length first: this runs for every header of every request and answer, and most
    // headers (host, date, content-type, content-length…) are no hop header's length.
    match name.len() {
        2 => name.eq_ignore_ascii_case(b"te"),
        7 => name.eq_ignore_ascii_case(b"trailer") || name.eq_ignore_ascii_case(b"upgrade"),
        10 => name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive"),
        16 => name.eq_ignore_ascii_case(b"proxy-connection"),
        17 => name.eq_ignore_ascii_case(b"transfer-encoding"),
        _ => false,
    }
}

/// The header names a Connection header lists: hop-by-hop too.
pub(crate) fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// The host a request is for: the Host header, or the URI's authority (HTTP/2). Both
/// share the request's memory, so keeping the host costs a reference count, not a copy.
enum RequestHost {
    Header(HeaderValue),
    Authority(hyper::http::uri::Authority),
    Missing,
}

impl RequestHost {
    fn of<B>(req: &Request<B>) -> RequestHost {
        match req.headers().get(header::HOST) {
            Some(v) if v.to_str().is_ok() => RequestHost::Header(v.clone()),
            _ => match req.uri().authority() {
                Some(a) => RequestHost::Authority(a.clone()),
                None => RequestHost::Missing,
            },
        }
    }

    fn as_str(&self) -> &str {
        match self {
            RequestHost::Header(v) => v.to_str().unwrap_or_default(),
            RequestHost::Authority(a) => a.as_str(),
            RequestHost::Missing => "",
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// What `FramingGuard` cannot see on HTTP/2 (where framing is the protocol's own) is
/// checked here: a Transfer-Encoding header is not allowed there at all.
fn framing_problem(headers: &HeaderMap) -> Option<&'static str> {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    if lengths > 1 {
        return Some("more than one Content-Length header; send exactly one");
    }
    None
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP",
    }
}

struct ScopeGuard<F: FnMut()>(F);

impl<F: FnMut()> Drop for ScopeGuard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn scopeguard<F: FnMut()>(f: F) -> ScopeGuard<F> {
    ScopeGuard(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_headers_are_told_apart_by_name() {
        for name in HOP_HEADERS {
            assert!(is_hop_header(name), "{name}");
        }
        for name in [
            "host",
            "date",
            "content-type",
            "content-length",
            "x-request-id",
            "set-cookie",
            "tea",
            "upgrades",
            "connections",
            "transfer-encodings",
        ] {
            assert!(!is_hop_header(&HeaderName::from_static(name)), "{name}");
        }
    }
}
