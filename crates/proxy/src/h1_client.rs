//! The client for requests without a body: one HTTP/1.1 exchange on a pooled connection,
//! driven by the client connection's own task.
//!
//! Most requests a proxy sees (GET, HEAD, DELETE…) carry no body. For them berth writes
//! the request head it encoded (`encode_head`) in one system call, reads the answer head
//! with httparse, and returns the answer with a body that reads the rest from the same
//! connection (`ResponseBody`). There is no connection task, no channel between tasks
//! and no lock: hyper's pooled client, which requests with a body still use (it reads
//! the answer while it sends the body), costs about twice the CPU per request in a
//! profile under load. A pooled connection that fails before any byte of an answer
//! arrived (the target closed it while it was idle) is replaced by a fresh one once,
//! which is safe because such a request was never read by the target.

use crate::forward::{connection_named, is_hop_header, is_hop_name, Forwarding};
use crate::pool::{self, Conn};
use crate::request_head::RequestHead;
use crate::response_body::{Framing, ResponseBody};
use crate::upstream::UpstreamError;
use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, COOKIE, HOST};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode, Version};
use std::future::Future;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// More header lines than this in one answer are refused, as hyper's client does.
const MAX_HEADERS: usize = 100;

/// The request head as the target receives it: HTTP/1.1 with the origin-form target,
/// the client's headers without hop-by-hop ones, Host (from the URI for HTTP/2 clients)
/// and the forwarding headers.
pub fn encode_head(parts: &Parts, host: &str, forwarding: &Forwarding<'_>) -> Bytes {
    let headers = &parts.headers;
    let mut buf = BytesMut::with_capacity(256 + 48 * headers.len());
    buf.put_slice(parts.method.as_str().as_bytes());
    buf.put_u8(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    buf.put_slice(target.as_bytes());
    buf.put_slice(b" HTTP/1.1\r\n");
    let named = connection_named(headers);
    let mut has_host = false;
    let mut cookies = 0;
    for (name, value) in headers {
        if is_hop_header(name) || Forwarding::replaces(name) || named.contains(name) {
            continue;
        }
        if name == COOKIE && parts.version == Version::HTTP_2 {
            // HTTP/2 may split cookies over several fields; HTTP/1.1 wants one.
            cookies += 1;
            continue;
        }
        has_host |= name == HOST;
        put_header(&mut buf, name.as_str().as_bytes(), value.as_bytes());
    }
    if cookies > 0 {
        let mut joined = Vec::new();
        for (i, value) in headers.get_all(COOKIE).iter().enumerate() {
            if i > 0 {
                joined.extend_from_slice(b"; ");
            }
            joined.extend_from_slice(value.as_bytes());
        }
        put_header(&mut buf, b"cookie", &joined);
    }
    if !has_host {
        let authority = parts.uri.authority().map_or(host, |a| a.as_str());
        put_header(&mut buf, b"host", authority.as_bytes());
    }
    put_forwarding(&mut buf, forwarding);
    buf.freeze()
}

/// `encode_head` for a head berth's own server read: the client's header lines are
/// copied as they arrived, but for the hop-by-hop ones and those the forwarding headers
/// replace.
pub fn encode_raw_head(req: &RequestHead<'_>, host: &str, forwarding: &Forwarding<'_>) -> Bytes {
    let mut buf = BytesMut::with_capacity(256 + 48 * req.lines().len());
    buf.put_slice(req.method().as_str().as_bytes());
    buf.put_u8(b' ');
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    buf.put_slice(target.as_bytes());
    buf.put_slice(b" HTTP/1.1\r\n");
    // Most requests have no Connection header; only then are names checked against it.
    let connection = req.get("connection").is_some();
    let mut has_host = false;
    for (name, value) in req.lines() {
        if is_hop_name(name)
            || Forwarding::replaces_name(name)
            || (connection && req.connection_names(name))
        {
            continue;
        }
        has_host |= name.eq_ignore_ascii_case(b"host");
        put_header(&mut buf, name, value);
    }
    if !has_host {
        put_header(&mut buf, b"host", host.as_bytes());
    }
    put_forwarding(&mut buf, forwarding);
    buf.freeze()
}

/// The forwarding headers and the end of the head.
fn put_forwarding(buf: &mut BytesMut, forwarding: &Forwarding<'_>) {
    put_header(buf, b"x-forwarded-for", forwarding.forwarded_for.as_bytes());
    put_header(buf, b"x-forwarded-proto", forwarding.proto.as_bytes());
    put_header(buf, b"x-forwarded-host", forwarding.host.as_bytes());
    put_header(buf, b"x-request-id", forwarding.request_id.as_bytes());
    buf.put_slice(b"\r\n");
}

fn put_header(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_slice(b": ");
    buf.put_slice(value);
    buf.put_slice(b"\r\n");
}

/// What one exchange needs besides the request head.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub addr: SocketAddr,
    /// A HEAD request: the answer has no body whatever its headers say.
    pub head_request: bool,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Waiting for the answer head, a fresh connection's connect included; past it the
    /// client gets a 504.
    pub response_timeout: Duration,
    /// The longest answer head accepted.
    pub max_head: usize,
}

/// Sends `head` to the target and returns its answer; the body streams from the
/// connection. Hop-by-hop headers are already removed from the answer.
pub async fn send(head: &[u8], ex: Exchange) -> Result<Answer<ResponseBody>, UpstreamError> {
    // One deadline for the whole request, a retry on a fresh connection included.
    let deadline = tokio::time::Instant::now() + ex.response_timeout;
    if let Some(conn) = pool::checkout(ex.addr) {
        match exchange(conn, head, &ex, deadline).await {
            Ok(response) => return Ok(response),
            // Nothing of an answer came back: the target closed the idle connection
            // before it read the request, so a fresh connection may carry it.
            Err(Failure::BeforeAnswer(_)) => {}
            Err(Failure::Answer(e)) => return Err(UpstreamError::Other(e)),
            Err(Failure::Timeout) => return Err(UpstreamError::Timeout),
        }
    }
    let conn = match tokio::time::timeout_at(deadline, connect(&ex, deadline)).await {
        Ok(conn) => conn?,
        Err(_) => return Err(UpstreamError::Timeout),
    };
    exchange(conn, head, &ex, deadline)
        .await
        .map_err(|f| match f {
            Failure::BeforeAnswer(e) | Failure::Answer(e) => UpstreamError::Other(e),
            Failure::Timeout => UpstreamError::Timeout,
        })
}

async fn connect(ex: &Exchange, deadline: tokio::time::Instant) -> Result<Conn, UpstreamError> {
    let stream = match tokio::time::timeout(ex.connect_timeout, TcpStream::connect(ex.addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
        Err(_) => {
            return Err(UpstreamError::Connect(format!(
                "no connection within {} ms",
                ex.connect_timeout.as_millis()
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(Conn::new(stream, deadline))
}

enum Failure {
    /// The connection failed before any byte of an answer arrived.
    BeforeAnswer(String),
    /// The target answered, but not with a valid HTTP/1.1 answer, or broke off inside it.
    Answer(String),
    /// No whole answer head arrived by the deadline.
    Timeout,
}

/// Sends the head and reads the answer head, both bounded by `deadline`.
async fn exchange(
    mut conn: Conn,
    head: &[u8],
    ex: &Exchange,
    deadline: tokio::time::Instant,
) -> Result<Answer<ResponseBody>, Failure> {
    let Conn { stream, buf, timer } = &mut conn;
    let work = async {
        stream
            .write_all(head)
            .await
            .map_err(|e| Failure::BeforeAnswer(format!("cannot send the request: {e}")))?;
        buf.clear();
        loop {
            buf.reserve(8192);
            let n = stream.read_buf(buf).await.map_err(|e| {
                if buf.is_empty() {
                    Failure::BeforeAnswer(format!("connection failed before an answer: {e}"))
                } else {
                    Failure::Answer(format!("connection failed inside the answer head: {e}"))
                }
            })?;
            if n == 0 {
                return Err(if buf.is_empty() {
                    Failure::BeforeAnswer(
                        "the target closed the connection without answering".into(),
                    )
                } else {
                    Failure::Answer(
                        "the target closed the connection inside the answer head".into(),
                    )
                });
            }
            match parse_head(buf, ex)? {
                Some(head) => return Ok(head),
                None if buf.len() > ex.max_head => {
                    return Err(Failure::Answer(format!(
                        "the answer head is larger than {} bytes",
                        ex.max_head
                    )))
                }
                None => continue,
            }
        }
    };
    tokio::pin!(work);
    let head = std::future::poll_fn(|cx| {
        if let Poll::Ready(outcome) = work.as_mut().poll(cx) {
            return Poll::Ready(outcome);
        }
        // The timer still holds an earlier request's deadline when that one is before
        // this request's: then it fired early, and is moved on to this one's.
        while timer.as_mut().poll(cx).is_ready() {
            if timer.deadline() >= deadline {
                return Poll::Ready(Err(Failure::Timeout));
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await?;
    let body = ResponseBody::new(conn, head.framing, ex.addr, head.reusable, ex.idle_timeout);
    Ok(Answer {
        status: head.status,
        lines: head.lines,
        has_date: head.has_date,
        has_length: head.has_length,
        body,
        request_id: None,
        close: false,
    })
}

/// A target's answer as this client read it: the header lines to pass on as bytes (no
/// `HeaderMap` is built unless hyper's server is to send it), and the body streaming
/// from the connection.
pub struct Answer<B> {
    pub status: StatusCode,
    /// The header lines to pass on, each ending in CRLF; hop-by-hop headers and the
    /// target's X-Request-Id are not among them.
    pub lines: Bytes,
    /// Whether `lines` has a Date header.
    pub has_date: bool,
    /// Whether `lines` has a Content-Length header.
    pub has_length: bool,
    pub body: B,
    /// The request's id, sent with the answer; set by the `Forwarder`.
    pub request_id: Option<HeaderValue>,
    /// The answer closes the client connection (the process is draining).
    pub close: bool,
}

impl<B> Answer<B> {
    pub fn map_body<C>(self, f: impl FnOnce(B) -> C) -> Answer<C> {
        Answer {
            status: self.status,
            lines: self.lines,
            has_date: self.has_date,
            has_length: self.has_length,
            body: f(self.body),
            request_id: self.request_id,
            close: self.close,
        }
    }

    /// The answer as a hyper response, for hyper's server (HTTP/2 clients, requests it
    /// read).
    pub fn into_response(self) -> Response<B> {
        let mut headers = HeaderMap::with_capacity(8);
        // The lines were checked by httparse when they arrived, or written by `kept_lines`.
        for line in self.lines.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = line[colon + 1..].trim_ascii();
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_maybe_shared(self.lines.slice_ref(value)),
            ) {
                headers.append(name, value);
            }
        }
        if let Some(id) = self.request_id {
            headers.insert(HeaderName::from_static("x-request-id"), id);
        }
        if self.close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = headers;
        response
    }
}

/// An answer head, hop-by-hop headers removed.
struct Head {
    status: StatusCode,
    lines: Bytes,
    has_date: bool,
    has_length: bool,
    framing: Framing,
    /// The connection may carry another request after this answer.
    reusable: bool,
}

/// Parses the answer head at the start of `conn.buf` once it is complete, skipping
/// interim (1xx) answers. What follows the head stays in `buf`: the start of the body.
fn parse_head(buf: &mut BytesMut, ex: &Exchange) -> Result<Option<Head>, Failure> {
    loop {
        // Uninitialised: filling a header array before every parse cost more than the parse.
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let parsing = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            buf,
            &mut headers,
        );
        let len = match parsing {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(Failure::Answer(format!(
                    "the target's answer is not HTTP/1.1: {e}"
                )))
            }
        };
        let code = parsed.code.unwrap_or(502);
        let status = StatusCode::from_u16(code)
            .map_err(|_| Failure::Answer(format!("the target answered status {code}")))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Failure::Answer(
                "the target switched protocols for a request that asked for no upgrade".into(),
            ));
        }
        if status.is_informational() {
            // 100 Continue or 103 Early Hints before the real answer: not passed on.
            let _ = buf.split_to(len);
            continue;
        }
        let http10 = parsed.version == Some(0);

        // First pass over the raw lines: framing and what Connection names.
        let base = buf.as_ptr() as usize;
        let count = parsed.headers.len();
        // Offsets of each name and value, for slicing them out of the head once it is split
        // off the buffer (the parsed lines borrow the buffer until then). On the stack: a
        // vector here was one more allocation for every answer.
        let mut lines = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut close = http10;
        let mut keep_alive = false;
        let mut connection_names: Vec<&[u8]> = Vec::new();
        for (line, h) in lines.iter_mut().zip(parsed.headers.iter()) {
            // A head is at most `max_head` bytes, far below 4 GiB.
            let name_at = (h.name.as_ptr() as usize - base) as u32;
            let value_at = (h.value.as_ptr() as usize - base) as u32;
            *line = (
                name_at,
                name_at + h.name.len() as u32,
                value_at,
                value_at + h.value.len() as u32,
            );
            if h.name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        Failure::Answer("the target sent an invalid Content-Length".into())
                    })?;
                if length.is_some_and(|l| l != value) {
                    return Err(Failure::Answer(
                        "the target sent two different Content-Length headers".into(),
                    ));
                }
                length = Some(value);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // Only a final `chunked` frames the body; anything else reads until close.
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                if !chunked {
                    close = true;
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    } else if !token.is_empty() {
                        connection_names.push(token);
                    }
                }
            }
        }
        if http10 && keep_alive {
            close = false;
        }
        let framing = if ex.head_request
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else if chunked {
            // Transfer-Encoding wins over Content-Length (RFC 9112 6.3); a target that
            // sends both is not trusted with another request on this connection.
            if length.is_some() {
                close = true;
            }
            Framing::Chunked
        } else if let Some(length) = length {
            Framing::Length(length)
        } else {
            Framing::UntilClose
        };

        // Second pass: which lines are passed on. Not passed on are the hop-by-hop ones,
        // those Connection names, X-Request-Id (the proxy sends its own) and a
        // Content-Length beside chunks (the body goes on with its real length or chunked).
        let mut dropped: u128 = 0;
        let mut has_date = false;
        let mut has_length = false;
        for (i, h) in parsed.headers.iter().enumerate() {
            let name = h.name.as_bytes();
            let is_length = name.eq_ignore_ascii_case(b"content-length");
            if is_hop_name(name)
                || name.eq_ignore_ascii_case(b"x-request-id")
                || (is_length && chunked)
                || connection_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name))
            {
                dropped |= 1 << i;
                continue;
            }
            has_date |= name.eq_ignore_ascii_case(b"date");
            has_length |= is_length;
        }
        drop(connection_names);

        let head = buf.split_to(len).freeze();
        let lines = kept_lines(&head, &lines[..count], dropped);
        return Ok(Some(Head {
            status,
            lines,
            has_date,
            has_length,
            framing,
            reusable: !close,
        }));
    }
}

/// The answer's header lines to pass on, each ending in CRLF: the head's own bytes when
/// every line is passed on and ends in CRLF (most answers), else the kept lines copied.
fn kept_lines(head: &Bytes, lines: &[(u32, u32, u32, u32)], dropped: u128) -> Bytes {
    let Some(first) = lines.first() else {
        return Bytes::new();
    };
    // The block runs from the first name to the blank line that ends the head.
    let end = head.len() - 2;
    let verbatim = dropped == 0
        && head.ends_with(b"\r\n")
        && lines.iter().enumerate().all(|(i, _)| {
            let next = lines.get(i + 1).map_or(end, |l| l.0 as usize);
            head.get(next - 2..next) == Some(&b"\r\n"[..])
        });
    if verbatim {
        return head.slice(first.0 as usize..end);
    }
    let mut kept = BytesMut::with_capacity(head.len());
    for (i, &(ns, ne, vs, ve)) in lines.iter().enumerate() {
        if dropped & (1 << i) == 0 {
            put_header(
                &mut kept,
                &head[ns as usize..ne as usize],
                &head[vs as usize..ve as usize],
            );
        }
    }
    kept.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> Exchange {
        Exchange {
            addr: "127.0.0.1:1".parse().unwrap(),
            head_request: false,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            max_head: 8192,
        }
    }

    fn head_of(text: &str) -> Head {
        let mut buf = BytesMut::from(text.as_bytes());
        match parse_head(&mut buf, &exchange()) {
            Ok(Some(head)) => head,
            _ => panic!("no head in {text:?}"),
        }
    }

    #[test]
    fn an_answer_with_nothing_to_drop_keeps_its_own_lines() {
        let head = head_of(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ndate: x\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_eq!(
            &head.lines[..],
            b"Content-Type: text/plain\r\ndate: x\r\nContent-Length: 2\r\n"
        );
        assert!(head.has_date && head.has_length && head.reusable);
        assert_eq!(head.framing, Framing::Length(2));
    }

    #[test]
    fn dropped_lines_and_bare_line_feeds_are_written_anew() {
        let head = head_of(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-a\r\nx-a: 1\r\nx-b:  2 \r\nx-request-id: t\r\n\r\n",
        );
        assert_eq!(&head.lines[..], b"x-b: 2\r\n");
        assert!(!head.has_date && !head.has_length);
        let head = head_of("HTTP/1.1 200 OK\nx-b: 2\ncontent-length: 0\n\n");
        assert_eq!(&head.lines[..], b"x-b: 2\r\ncontent-length: 0\r\n");
        let head =
            head_of("HTTP/1.1 200 OK\r\ncontent-length: 9\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(&head.lines[..], b"", "no length beside chunks");
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.reusable);
    }

    #[test]
    fn an_answer_becomes_a_response_for_hyper() {
        let answer = Answer {
            status: StatusCode::CREATED,
            lines: Bytes::from_static(
                b"Content-Type: text/plain\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n",
            ),
            has_date: false,
            has_length: false,
            body: (),
            request_id: Some(HeaderValue::from_static("id-1")),
            close: true,
        };
        let response = answer.into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(headers["x-request-id"], "id-1");
        assert_eq!(headers["connection"], "close");
        assert_eq!(headers.len(), 5);
    }
}
