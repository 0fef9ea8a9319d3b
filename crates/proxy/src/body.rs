//! Body types the proxy streams through, and a body that keeps a target's in-flight count.

use crate::target::InflightGuard;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy sends or receives, boxed once so that streaming bodies (uploads,
/// server-sent events) pass through frame by frame, never buffered.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    full(Bytes::new())
}

/// A response body from a target; the target counts as busy until it is fully sent or
/// the client goes away, which is what a drain waits for.
pub struct Guarded<B> {
    inner: B,
    _guard: InflightGuard,
}

impl<B> Guarded<B> {
    pub fn new(inner: B, guard: InflightGuard) -> Guarded<B> {
        Guarded {
            inner,
            _guard: guard,
        }
    }
}

impl<B> Body for Guarded<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
