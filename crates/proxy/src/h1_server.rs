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

use crate::forward::{ConnInfo, Forwarder, Reply};
use crate::request_head::{Line, RequestHead};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::{Method, StatusCode, Uri};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
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
    // Where the current request's header lines are; kept for the connection's life so
    // that its room is allocated once.
    let mut lines: Vec<Line> = Vec::new();
    // Made once: a wait made anew for every read would register with the channel each time.
    let forced = async move {
        let _ = force.wait_for(|f| *f).await;
    };
    tokio::pin!(forced);
    // One timer for the connection's life instead of one per read: registering a timer and
    // taking it out again for every request was a measurable part of a request's cost. It
    // fires at most once per `idle_timeout` and is pushed back to the real deadline, the
    // last progress plus the timeout, when that is later.
    let idle = tokio::time::sleep(settings.idle_timeout);
    tokio::pin!(idle);
    let mut progress = Instant::now();
    loop {
        // Read until a whole head is buffered.
        let (taken, close) = loop {
            if !buf.is_empty() {
                match take_request(&mut buf, settings.max_head, &mut lines) {
                    Taken::Request(taken, close) => break (taken, close),
                    Taken::Partial => {}
                    // hyper answers what it cannot parse (400, 431), takes requests with a
                    // body or an upgrade, and speaks HTTP/2.
                    Taken::ForHyper => return Some(Rewind::new(io, buf)),
                }
            }
            let read = tokio::select! {
                read = std::future::poll_fn(|cx| poll_fill(&mut io, &mut buf, cx)) => Some(read),
                // The drain deadline passed: an idle connection closes now.
                _ = &mut forced, if buf.is_empty() => Some(Ok(0)),
                () = &mut idle => {
                    let deadline = progress + settings.idle_timeout;
                    if Instant::now() < deadline {
                        idle.as_mut().reset(deadline.into());
                        continue;
                    }
                    None
                }
            };
            match read {
                Some(Ok(n)) if n > 0 => progress = Instant::now(),
                // End of stream, an error, or idle too long. A partial head at the end goes
                // to hyper, which reports it.
                Some(Ok(_)) if !buf.is_empty() => return Some(Rewind::new(io, buf)),
                _ => {
                    // `FramingGuard` writes a deferred 400 on shutdown.
                    let _ = io.shutdown().await;
                    return None;
                }
            }
        };
        let head_request = taken.method == Method::HEAD;
        let request = RequestHead::new(taken.head, taken.method, taken.uri, &lines);
        let reply = forwarder.handle_bodyless(&request, info).await;
        drop(request);
        let close = close || reply.closes();
        if write_reply(&mut io, &mut out, reply, head_request, close)
            .await
            .is_err()
            || close
        {
            let _ = io.shutdown().await;
            return None;
        }
        progress = Instant::now();
    }
}

/// How much room each read from a client gets.
const READ_SIZE: usize = 4096;
/// Spare read buffers a data-plane thread keeps at most.
const SPARES: usize = 64;

thread_local! {
    /// Read buffers lent to connections while bytes arrive. Most of a busy proxy's
    /// connections are idle keep-alive ones, waiting for their next request; they give their
    /// empty buffer back here instead of holding 4 KiB each, and the next connection that
    /// has bytes to read takes one (each worker thread has its own, like the upstream pool).
    static SPARE: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads what the client sent into `buf`, with a buffer from `SPARE` when `buf` has none,
/// and gives an empty buffer back when there is nothing to read yet.
fn poll_fill<IO: AsyncRead + Unpin>(
    io: &mut IO,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() == 0 {
        *buf = SPARE
            .with(|spare| spare.borrow_mut().pop())
            .unwrap_or_else(|| BytesMut::with_capacity(READ_SIZE));
    } else {
        buf.reserve(READ_SIZE);
    }
    let polled = tokio_util::io::poll_read_buf(Pin::new(io), cx, buf);
    if polled.is_pending() && buf.is_empty() {
        let mut lent = std::mem::take(buf);
        // Made whole again before it is kept: the memory of heads already answered comes
        // back to it without a new allocation when nothing else holds it.
        lent.reserve(READ_SIZE);
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARES {
                spare.push(lent);
            }
        });
    }
    polled
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

/// A request head split off the buffer, its header lines in the `lines` given to
/// `take_request`.
struct TakenHead {
    head: Bytes,
    method: Method,
    uri: Uri,
}

/// What `take_request` found at the start of the buffer.
enum Taken {
    /// A whole request this server takes, and whether the client asked to close after it.
    Request(TakenHead, bool),
    /// The head is not complete yet.
    Partial,
    /// A request for hyper, or bytes hyper answers with an error; `buf` is as it was.
    ForHyper,
}

/// Parses the head at the start of `buf` once and, when this server takes the request,
/// splits it off the buffer and notes where its header lines are in `lines`.
fn take_request(buf: &mut BytesMut, max_head: usize, lines: &mut Vec<Line>) -> Taken {
    // Uninitialised: filling a header array before every parse cost more than the parse.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_head => return Taken::Partial,
        _ => return Taken::ForHyper,
    };
    let Some(close) = takes(&parsed) else {
        return Taken::ForHyper;
    };
    // Offsets into the head, so that the lines can be found in it once it is split off
    // the buffer (the parsed lines borrow the buffer until then). `max_head` is far below
    // 4 GiB (see `ProxyConfig::validate`).
    let base = buf.as_ptr() as usize;
    let span = |part: &[u8]| {
        let at = (part.as_ptr() as usize - base) as u32;
        (at, at + part.len() as u32)
    };
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Taken::ForHyper;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Taken::ForHyper;
    };
    let path = span(path.as_bytes());
    lines.clear();
    lines.extend(parsed.headers.iter().map(|h| Line {
        name: span(h.name.as_bytes()),
        value: span(h.value),
    }));
    let head = buf.split_to(len).freeze();
    // httparse checked every name and value as HeaderName and HeaderValue would; the
    // request target is checked as a URI, as hyper would (it answers 400).
    let Ok(uri) = Uri::from_maybe_shared(head.slice(path.0 as usize..path.1 as usize)) else {
        // Put the head back for hyper, which answers 400.
        let mut restored = BytesMut::from(&head[..]);
        restored.unsplit(std::mem::take(buf));
        *buf = restored;
        return Taken::ForHyper;
    };
    Taken::Request(TakenHead { head, method, uri }, close)
}

/// Writes the answer: status line, headers, then the body with its length when it is
/// known and in chunks when it is not. Single-frame bodies go out with the head in one
/// system call.
async fn write_reply<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    out: &mut BytesMut,
    reply: Reply,
    head_request: bool,
    close: bool,
) -> io::Result<()> {
    out.clear();
    let (status, mut body, has_length, has_date) = match reply {
        // A target's answer: its header lines go on as they arrived.
        Reply::Answer(answer) => {
            put_status(out, answer.status);
            out.put_slice(&answer.lines);
            if let Some(id) = &answer.request_id {
                put_header(out, b"x-request-id", id.as_bytes());
            }
            (
                answer.status,
                answer.body,
                answer.has_length,
                answer.has_date,
            )
        }
        Reply::Response(response) => {
            let (parts, body) = response.into_parts();
            put_status(out, parts.status);
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
            (parts.status, body, has_length, has_date)
        }
    };
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
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

fn put_status(out: &mut BytesMut, status: StatusCode) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
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
