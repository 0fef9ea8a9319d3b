//! berth's own HTTP/1.1 server for the common request: no body, no upgrade.
//!
//! Most requests a proxy serves are keep-alive GETs. For them this loop reads the head
//! (already checked by `FramingGuard`), builds the request parts, runs the same
//! `Forwarder` path as every other request, and writes the answer itself, in the client
//! connection's task with no dispatcher in between. The first request it does not take
//! (one with a body, an upgrade, `Expect`, HTTP/1.0, the HTTP/2 preface, a head it cannot
//! parse) hands the connection to hyper for the rest of its life, with the bytes already
//! read put back in front (`Rewind`): hyper then answers exactly as before, including its
//! own 400s and 431s.

use crate::body::ProxyBody;
use crate::forward::{ConnInfo, Forwarder};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

/// Requests with more header lines than this go to hyper (which allows 100).
const MAX_HEADERS: usize = 64;

pub struct Settings {
    /// An idle keep-alive connection is closed when no request head starts within this,
    /// as hyper's header timeout did; incomplete heads are timed by `FramingGuard`.
    pub idle_timeout: Duration,
    pub max_head: usize,
}

/// Serves requests on `io` until the connection ends (`None`) or a request needs hyper:
/// then the connection is returned for hyper with what was read and not yet answered put
/// back in front.
pub async fn serve<IO>(
    mut io: IO,
    forwarder: Arc<Forwarder>,
    info: ConnInfo,
    settings: Settings,
    mut force: watch::Receiver<bool>,
) -> Option<Rewind<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    // Made once: a wait made anew for every read would register with the channel each time.
    let forced = async move {
        let _ = force.wait_for(|f| *f).await;
    };
    tokio::pin!(forced);
    loop {
        // Read until a whole head is buffered.
        let (len, close) = loop {
            if !buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Request::new(&mut headers);
                match parsed.parse(&buf) {
                    Ok(httparse::Status::Complete(len)) => match takes(&parsed) {
                        Some(close) => break (len, close),
                        None => return Some(Rewind::new(io, buf)),
                    },
                    Ok(httparse::Status::Partial) if buf.len() <= settings.max_head => {}
                    // hyper answers what it cannot parse (400, 431) or speaks HTTP/2.
                    _ => return Some(Rewind::new(io, buf)),
                }
            }
            buf.reserve(4096);
            let read = tokio::select! {
                read = tokio::time::timeout(settings.idle_timeout, io.read_buf(&mut buf)) => read,
                // The drain deadline passed: an idle connection closes now.
                _ = &mut forced, if buf.is_empty() => Ok(Ok(0)),
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                // End of stream, an error, or idle too long. A partial head at the end goes
                // to hyper, which reports it.
                Ok(Ok(_)) if !buf.is_empty() => return Some(Rewind::new(io, buf)),
                _ => {
                    // `FramingGuard` writes a deferred 400 on shutdown.
                    let _ = io.shutdown().await;
                    return None;
                }
            }
        };
        let Some(parts) = take_request(&mut buf, len) else {
            return Some(Rewind::new(io, buf));
        };
        let head_request = parts.method == Method::HEAD;
        let response = forwarder.handle_bodyless(parts, info).await;
        let close = close || response_closes(&response);
        if write_response(&mut io, &mut out, response, head_request, close)
            .await
            .is_err()
            || close
        {
            let _ = io.shutdown().await;
            return None;
        }
    }
}

/// Whether this server takes the request (`Some`, with whether the client asked to close
/// after the answer) or leaves it to hyper: only HTTP/1.1 without a body, upgrade or
/// `Expect`, with an origin-form target.
fn takes(parsed: &httparse::Request<'_, '_>) -> Option<bool> {
    if parsed.version != Some(1) {
        return None;
    }
    let method = parsed.method?;
    let path = parsed.path?;
    if method == "CONNECT" || !path.starts_with('/') {
        return None;
    }
    let mut close = false;
    for h in parsed.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if h.value.trim_ascii() != b"0" {
                return None;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return None;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
                close |= token.eq_ignore_ascii_case(b"close");
            }
        }
    }
    Some(close)
}

/// Splits the head of `len` bytes off `buf` and builds the request parts, or `None`
/// (with `buf` as it was) when hyper should answer it instead.
fn take_request(buf: &mut BytesMut, len: usize) -> Option<hyper::http::request::Parts> {
    // Parsed again from the frozen head, so header values share its memory instead of
    // being copied.
    let head = buf.split_to(len).freeze();
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let _ = parsed.parse(&head);
    let count = parsed.headers.len();
    let uri = Uri::from_maybe_shared(head.slice_ref(parsed.path?.as_bytes())).ok();
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok();
    // Put the head back for hyper, which answers 400.
    let put_back = |buf: &mut BytesMut| {
        let mut restored = BytesMut::from(&head[..]);
        restored.unsplit(std::mem::take(buf));
        *buf = restored;
    };
    let (Some(uri), Some(method)) = (uri, method) else {
        put_back(buf);
        return None;
    };
    let mut map = HeaderMap::with_capacity(count);
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_maybe_shared(head.slice_ref(h.value)),
        ) else {
            put_back(buf);
            return None;
        };
        map.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    Some(request.into_parts().0)
}

/// `Forwarder` marks answers that must close the connection (the process is draining).
fn response_closes(response: &Response<ProxyBody>) -> bool {
    response
        .headers()
        .get_all(hyper::header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Writes the answer: status line, headers, then the body with its length when it is
/// known and in chunks when it is not. Single-frame bodies go out with the head in one
/// system call.
async fn write_response<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    out: &mut BytesMut,
    response: Response<ProxyBody>,
    head_request: bool,
    close: bool,
) -> io::Result<()> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    out.clear();
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
    let mut has_length = false;
    let mut has_date = false;
    for (name, value) in &parts.headers {
        if crate::forward::is_hop_header(name) {
            continue;
        }
        has_length |= name == hyper::header::CONTENT_LENGTH;
        has_date |= name == hyper::header::DATE;
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !has_date {
        crate::http_date::with_now(|date| put_header(out, b"date", date));
    }
    if close {
        put_header(out, b"connection", b"close");
    }
    if bodiless {
        out.put_slice(b"\r\n");
        return write_all(io, out, &[]).await;
    }
    let exact = body.size_hint().exact();
    let chunked = exact.is_none() && !has_length;
    if !has_length {
        if let Some(len) = exact {
            put_header(out, b"content-length", len.to_string().as_bytes());
        } else {
            put_header(out, b"transfer-encoding", b"chunked");
        }
    }
    out.put_slice(b"\r\n");
    if body.is_end_stream() {
        write_all(io, out, &[]).await?;
        return io.flush().await;
    }
    let mut head_sent = false;
    loop {
        let frame = match body.frame().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => break,
        };
        let Ok(data) = frame.into_data() else {
            // Trailers are not passed on (see `response_body`).
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let head: &[u8] = if head_sent { &[] } else { &out[..] };
        if chunked {
            let size = format!("{:x}\r\n", data.len());
            let mut framed = BytesMut::with_capacity(head.len() + size.len() + data.len() + 2);
            framed.put_slice(head);
            framed.put_slice(size.as_bytes());
            framed.put_slice(&data);
            framed.put_slice(b"\r\n");
            write_all(io, &framed, &[]).await?;
        } else {
            write_all(io, head, &data).await?;
        }
        head_sent = true;
        // Streaming answers (server-sent events) reach the client frame by frame.
        io.flush().await?;
    }
    if !head_sent {
        write_all(io, out, &[]).await?;
    }
    if chunked {
        write_all(io, b"0\r\n\r\n", &[]).await?;
    }
    io.flush().await
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes `first` then `second` completely, in one vectored call when the socket takes it.
async fn write_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    mut first: &[u8],
    mut second: &[u8],
) -> io::Result<()> {
    while !first.is_empty() || !second.is_empty() {
        let n = if first.is_empty() {
            io.write(second).await?
        } else if second.is_empty() {
            io.write(first).await?
        } else {
            io.write_vectored(&[io::IoSlice::new(first), io::IoSlice::new(second)])
                .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_first = n.min(first.len());
        first = &first[from_first..];
        second = &second[n - from_first..];
    }
    Ok(())
}

/// A connection with bytes already read put back in front, for hyper after a handoff.
pub struct Rewind<IO> {
    prefix: Bytes,
    inner: IO,
}

impl<IO> Rewind<IO> {
    pub fn new(inner: IO, prefix: BytesMut) -> Rewind<IO> {
        Rewind {
            prefix: prefix.freeze(),
            inner,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
