//! Connections to targets: a keep-alive pool shared by every route.

use crate::body::ProxyBody;
use crate::config::Timeouts;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, ProxyBody>,
}

/// Why a request to a target failed, which decides the client's status code and whether
/// the target is marked down.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection was made, so nothing was sent: safe to try another target.
    Connect(String),
    /// The request body from the client broke (too large, or the client went away).
    RequestBody(String),
    /// The target accepted the request and then failed it.
    Other(String),
    /// No answer head within the response timeout.
    Timeout,
}

impl Upstream {
    pub fn new(timeouts: &Timeouts) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        // The client is the only pool: targets are few and each keeps warm connections,
        // so a request normally reuses one instead of paying for a handshake.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(timeouts.upstream_idle)
            .pool_max_idle_per_host(usize::MAX)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            // Targets speak plain HTTP/1.1; the Host header is the client's, set by the caller.
            .set_host(false)
            .build(connector);
        Upstream { client }
    }

    /// The returned future owns everything it needs, so the pool may live in a
    /// thread-local (see `Forwarder`).
    pub fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> impl std::future::Future<Output = Result<Response<Incoming>, UpstreamError>> + Send + use<>
    {
        let response = self.client.request(request);
        async move { response.await.map_err(classify) }
    }
}

fn classify(err: hyper_util::client::legacy::Error) -> UpstreamError {
    if err.is_connect() {
        return UpstreamError::Connect(chain(&err));
    }
    // A body error from our side of the request is the client's fault, not the target's.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_user() {
                return UpstreamError::RequestBody(chain(&err));
            }
        }
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            return UpstreamError::RequestBody("request body over the limit".to_string());
        }
        source = e.source();
    }
    UpstreamError::Other(chain(&err))
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
