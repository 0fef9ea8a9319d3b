//! A reader in front of hyper's HTTP/1 parser that refuses ambiguous request framing.
//!
//! hyper already handles a request with both `Content-Length` and `Transfer-Encoding`
//! safely (it ignores the length and closes the connection afterwards) and accepts
//! repeated identical `Content-Length` headers, and it gives the handler no way to tell
//! that either happened. Request smuggling depends on two parsers disagreeing, so berth
//! refuses every such message outright with a 400, as the issue asks, instead of
//! normalizing it. To find where each request head starts on a keep-alive connection this
//! reader follows the body framing (lengths and chunk sizes), releasing a head to hyper
//! only once it is complete and checked. It finds a head's end by parsing it with httparse,
//! as hyper and berth's own server do, so no head ends earlier for them than for the check.
//! It also refuses what a target could read otherwise than the proxy did (two Host lines,
//! codings besides `chunked`), CONNECT, and the HTTP/2 preface after a request.

use bytes::{Buf, BytesMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
const MAX_CHUNK_LINE: usize = 4096;

/// Why a request is refused; each has its own answer, and the connection closes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Content-Length with Transfer-Encoding, or more than one Content-Length.
    AmbiguousLength,
    /// More than one Host line: a target reading another one than the proxy routed on is
    /// open to host-header poisoning (nginx and HAProxy answer 400 too).
    DuplicateHost,
    /// More than one Transfer-Encoding line (nginx answers 400).
    DuplicateTransferEncoding,
    /// A transfer coding besides `chunked`, which the proxy would have to drop or decode
    /// (nginx answers 501).
    UnknownCoding,
    /// CONNECT: a reverse proxy opens no tunnel to where a client names.
    Connect,
    /// The HTTP/2 preface after a request: hyper's automatic version detection would
    /// switch the connection to HTTP/2 mid-stream.
    LatePreface,
}

impl Refusal {
    fn answer(self) -> Box<[u8]> {
        let (status, text) = match self {
            Refusal::AmbiguousLength => (
                "400 Bad Request",
                "bad request: ambiguous message length refused; send either content-length or transfer-encoding: chunked, once",
            ),
            Refusal::DuplicateHost => (
                "400 Bad Request",
                "bad request: more than one host header; send exactly one",
            ),
            Refusal::DuplicateTransferEncoding => (
                "400 Bad Request",
                "bad request: more than one transfer-encoding header; send one, with chunked alone",
            ),
            Refusal::UnknownCoding => (
                "501 Not Implemented",
                "not implemented: the only transfer coding accepted is chunked alone; send that or a content-length",
            ),
            Refusal::Connect => (
                "501 Not Implemented",
                "not implemented: connect is not supported by this proxy; send requests with a path",
            ),
            Refusal::LatePreface => (
                "400 Bad Request",
                "bad request: the http/2 preface is accepted only at the start of a connection; open a new one",
            ),
        };
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}\n",
            text.len() + 1
        )
        .into_bytes()
        .into_boxed_slice()
    }
}

#[derive(Debug)]
enum State {
    /// Collecting a request head; nothing of it has reached hyper yet.
    Head,
    Length(u64),
    Chunked(Chunk),
    /// HTTP/2, an upgraded connection, or framing this reader gave up following (hyper
    /// refuses what it cannot parse itself).
    Passthrough,
    /// A refused message: the 400 is written, then the reader reports end of stream.
    Refused {
        answer: Box<[u8]>,
        written: usize,
    },
}

#[derive(Debug)]
enum Chunk {
    SizeLine,
    Data(u64),
    DataEnd,
    Trailers,
}

pub struct FramingGuard<S> {
    inner: S,
    state: State,
    /// Bytes read from the client and not yet classified.
    pending: BytesMut,
    /// Checked bytes waiting for hyper.
    ready: BytesMut,
    first: bool,
    eof: bool,
    max_head: usize,
    /// Heads passed to hyper on this connection; a refusal after the first waits for
    /// hyper to finish answering them.
    released: usize,
    header_timeout: std::time::Duration,
    /// Runs while a head is incomplete. hyper's own header timeout cannot see a head this
    /// reader still holds back, so slow-header clients are timed here.
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FramingGuard<S> {
    pub fn new(inner: S, max_head: usize, header_timeout: std::time::Duration) -> FramingGuard<S> {
        FramingGuard {
            inner,
            state: State::Head,
            pending: BytesMut::new(),
            ready: BytesMut::new(),
            first: true,
            eof: false,
            max_head,
            released: 0,
            header_timeout,
            head_deadline: None,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Follows the framing over `data` (bytes the client sent after everything scanned
    /// before) and returns how many of them may go to hyper now: whole checked heads and
    /// body bytes. The rest is an incomplete head or chunk-size line, to be scanned again
    /// with what follows, or a refused message.
    fn scan(&mut self, data: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            match &mut self.state {
                State::Passthrough => return data.len(),
                State::Refused { .. } => return pos,
                State::Head => {
                    // httparse (so hyper and berth's own server) skips empty lines before
                    // a request line: they pass as they are, and no head starts before them.
                    let blank = leading_empty_lines(rest);
                    if blank > 0 {
                        self.first = false;
                        self.start_head_deadline();
                        pos += blank;
                        continue;
                    }
                    if rest.is_empty() {
                        return pos;
                    }
                    if self.first {
                        let n = rest.len().min(H2_PREFACE.len());
                        if rest[..n] == H2_PREFACE[..n] {
                            if n < H2_PREFACE.len() && !self.eof {
                                return pos; // Could still be the preface; wait for more.
                            }
                            self.state = State::Passthrough;
                            continue;
                        }
                    }
                    // Where a head ends is the parser's own rule (a line ending in LF or
                    // CRLF, then an empty one), so no head can end earlier for hyper than
                    // for this check.
                    match check_head(rest, self.first) {
                        HeadVerdict::Partial => {
                            self.start_head_deadline();
                            if rest.len() > self.max_head {
                                // hyper answers 431 for heads over its own limit.
                                self.state = State::Passthrough;
                                continue;
                            }
                            return pos;
                        }
                        HeadVerdict::Refuse(refusal) => {
                            self.state = State::Refused {
                                answer: refusal.answer(),
                                written: 0,
                            };
                            return pos;
                        }
                        HeadVerdict::Next(len, state) => {
                            self.first = false;
                            self.head_deadline = None;
                            self.released += 1;
                            pos += len;
                            self.state = state;
                        }
                    }
                }
                State::Length(remaining) => {
                    if rest.is_empty() {
                        return pos;
                    }
                    let n = (*remaining).min(rest.len() as u64) as usize;
                    *remaining -= n as u64;
                    pos += n;
                    if *remaining == 0 {
                        self.state = State::Head;
                    }
                }
                State::Chunked(chunk) => {
                    if rest.is_empty() {
                        return pos;
                    }
                    match chunk {
                        Chunk::SizeLine | Chunk::Trailers => {
                            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                                if rest.len() > MAX_CHUNK_LINE {
                                    self.state = State::Passthrough;
                                    continue;
                                }
                                return pos;
                            };
                            let Some(text) = rest[..=nl].strip_suffix(b"\r\n") else {
                                self.state = State::Passthrough;
                                continue;
                            };
                            let next = if matches!(chunk, Chunk::Trailers) {
                                if text.is_empty() {
                                    State::Head
                                } else {
                                    State::Chunked(Chunk::Trailers)
                                }
                            } else {
                                match parse_chunk_size(text) {
                                    Some(0) => State::Chunked(Chunk::Trailers),
                                    Some(size) => State::Chunked(Chunk::Data(size)),
                                    None => State::Passthrough,
                                }
                            };
                            pos += nl + 1;
                            self.state = next;
                        }
                        Chunk::Data(remaining) => {
                            let n = (*remaining).min(rest.len() as u64) as usize;
                            *remaining -= n as u64;
                            pos += n;
                            if *remaining == 0 {
                                *chunk = Chunk::DataEnd;
                            }
                        }
                        Chunk::DataEnd => {
                            if rest.len() < 2 {
                                return pos;
                            }
                            if &rest[..2] != b"\r\n" {
                                self.state = State::Passthrough;
                                continue;
                            }
                            pos += 2;
                            *chunk = Chunk::SizeLine;
                        }
                    }
                }
            }
        }
    }
}

enum HeadVerdict {
    /// The head is not complete yet.
    Partial,
    Refuse(Refusal),
    /// The head's length and how to follow what comes after it.
    Next(usize, State),
}

/// How many bytes of empty lines (CRLF or a bare LF) `buf` starts with.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match buf[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => return at,
        }
    }
}

/// Parses the head at the start of `buf` (no empty line first) once, with httparse as
/// hyper and berth's own server do, and judges it.
fn check_head(buf: &[u8], first: bool) -> HeadVerdict {
    // Uninitialised: filling a header array before every parse cost more than the parse.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 128];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return HeadVerdict::Partial,
        // After a request, hyper would take the preface for a new HTTP/2 connection.
        Err(_) if !first && buf.starts_with(b"PRI ") => {
            return HeadVerdict::Refuse(Refusal::LatePreface)
        }
        // hyper parses it again with the same rules and answers malformed or oversized
        // heads itself, then closes the connection.
        Err(_) => return HeadVerdict::Next(buf.len(), State::Passthrough),
    };
    if req.method == Some("CONNECT") {
        return HeadVerdict::Refuse(Refusal::Connect);
    }
    let mut lengths = 0;
    let mut length = None;
    let mut codings = 0;
    let mut chunked = false;
    let mut hosts = 0;
    let mut upgrade = false;
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        // By length first, as `forward::is_hop_name` does: most names are none of these.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => hosts += 1,
            7 if name.eq_ignore_ascii_case(b"upgrade") => upgrade = true,
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                lengths += 1;
                length = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                codings += 1;
                chunked = header.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
            }
            _ => {}
        }
    }
    if (codings > 0 && lengths > 0) || lengths > 1 {
        return HeadVerdict::Refuse(Refusal::AmbiguousLength);
    }
    if hosts > 1 {
        return HeadVerdict::Refuse(Refusal::DuplicateHost);
    }
    if codings > 1 {
        return HeadVerdict::Refuse(Refusal::DuplicateTransferEncoding);
    }
    if codings == 1 && !chunked {
        return HeadVerdict::Refuse(Refusal::UnknownCoding);
    }
    let next = if upgrade {
        // After a 101 the bytes are another protocol; hyper hands them to the tunnel. An
        // upgrade answered otherwise closes the connection (`Forwarder::handle`), so no
        // request after it goes unjudged.
        State::Passthrough
    } else if chunked {
        State::Chunked(Chunk::SizeLine)
    } else {
        match (lengths, length) {
            (0, _) | (_, Some(0)) => State::Head,
            (_, Some(n)) => State::Length(n),
            // An unparsable length: hyper refuses it with its own 400.
            (_, None) => State::Passthrough,
        }
    };
    HeadVerdict::Next(len, next)
}

fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let size = match line.iter().position(|&b| b == b';') {
        Some(i) => &line[..i],
        None => line,
    };
    let size = std::str::from_utf8(size)
        .ok()?
        .trim_end_matches([' ', '\t']);
    if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(size, 16).ok()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for FramingGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                if this.ready.is_empty() {
                    // Idle keep-alive connections are most of a busy proxy's connections;
                    // they hold no buffer of ours between requests.
                    this.ready = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if let State::Refused { .. } = this.state {
                if this.released == 0 {
                    // Nothing of this connection is in hyper's hands: answer now.
                    ready!(this.poll_write_refusal(cx))?;
                }
                // Otherwise hyper first finishes the responses it owes, sees the end of
                // the stream and shuts the connection down; the 400 goes out then.
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // A partial head at end of stream goes to hyper, which reports it.
                let rest = this.pending.split();
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.ready.unsplit(rest);
                continue;
            }
            if this.pending.is_empty() {
                // The common case: read straight into hyper's buffer and check in place,
                // with no copy and no buffer of ours.
                let before = buf.filled().len();
                match Pin::new(&mut this.inner).poll_read(cx, buf) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return this.poll_head_deadline(cx),
                }
                let filled = buf.filled().len();
                if filled == before {
                    this.eof = true;
                    continue;
                }
                let n = this.scan(&buf.filled()[before..]);
                if before + n < filled {
                    if !matches!(this.state, State::Refused { .. }) {
                        this.pending.extend_from_slice(&buf.filled()[before + n..]);
                    }
                    buf.set_filled(before + n);
                }
                if n > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Part of a head is held back: add to it until it can be checked whole.
            this.pending.reserve(8192);
            let polled = {
                let spare = this.pending.spare_capacity_mut();
                let mut read_buf = ReadBuf::uninit(spare);
                match Pin::new(&mut this.inner).poll_read(cx, &mut read_buf) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(read_buf.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            };
            let filled = match polled {
                Poll::Ready(result) => result?,
                Poll::Pending => return this.poll_head_deadline(cx),
            };
            if filled == 0 {
                this.eof = true;
            } else {
                // SAFETY: `poll_read` initialized the first `filled` bytes of the spare
                // capacity, as `ReadBuf::filled` reports.
                unsafe { this.pending.set_len(this.pending.len() + filled) };
            }
            let mut pending = std::mem::take(&mut this.pending);
            let n = this.scan(&pending);
            this.ready = pending.split_to(n);
            if matches!(this.state, State::Refused { .. }) || pending.is_empty() {
                pending = BytesMut::new();
            }
            this.pending = pending;
        }
    }
}

impl<S> FramingGuard<S> {
    /// A head has begun: it must be complete within the header timeout.
    fn start_head_deadline(&mut self) {
        if self.head_deadline.is_none() {
            self.head_deadline = Some(Box::pin(tokio::time::sleep(self.header_timeout)));
        }
    }

    /// Nothing to read: a slow-header client is cut off once its deadline passes.
    fn poll_head_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(deadline) = self.head_deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not send a complete request head in time",
                )));
            }
        }
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> FramingGuard<S> {
    fn poll_write_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Refused { answer, written } = &mut self.state {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FramingGuard<S> {
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
        // A refusal deferred until hyper answered the messages before it.
        let _ = ready!(self.poll_write_refusal(cx));
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Feeds `input` through the guard and returns what hyper would see and what the client got back.
    async fn run(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(input).await.unwrap();
        client_write.shutdown().await.unwrap();
        let mut guard = FramingGuard::new(server, 65536, std::time::Duration::from_secs(5));
        let mut seen = Vec::new();
        guard.read_to_end(&mut seen).await.unwrap();
        // hyper shuts the connection down after the end of the stream.
        let _ = guard.shutdown().await;
        drop(guard);
        let mut reply = Vec::new();
        client_read.read_to_end(&mut reply).await.unwrap();
        (seen, reply)
    }

    #[tokio::test]
    async fn clean_keep_alive_requests_pass_unchanged() {
        let input = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let (seen, reply) = run(input).await;
        assert_eq!(seen, input);
        assert!(reply.is_empty());
    }

    #[tokio::test]
    async fn both_lengths_are_refused_before_hyper_sees_them() {
        let input = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let (seen, reply) = run(input).await;
        assert_eq!(seen, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(reply.starts_with(b"HTTP/1.1 400"));
    }

    #[tokio::test]
    async fn duplicate_content_length_is_refused() {
        let input =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
        let (seen, reply) = run(input).await;
        assert!(seen.is_empty());
        assert!(reply.starts_with(b"HTTP/1.1 400"));
    }

    #[tokio::test]
    async fn http2_and_garbage_pass_to_hyper() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00";
        assert_eq!(run(preface).await.0, preface);
        let garbage = b"\x16\x03\x01 not http\r\n\r\nmore";
        assert_eq!(run(garbage).await.0, garbage);
    }

    /// Heads and chunk lines split across reads are held back and checked whole.
    #[tokio::test]
    async fn split_heads_are_checked_whole() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            for part in [
                &b"POST /a HTTP/1.1\r\nHo"[..],
                b"st: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r",
                b"\nhello\r\n0\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 1\r\n",
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ] {
                client_write.write_all(part).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            client_write.shutdown().await.unwrap();
        });
        let mut guard = FramingGuard::new(server, 65536, std::time::Duration::from_secs(5));
        let mut seen = Vec::new();
        guard.read_to_end(&mut seen).await.unwrap();
        let _ = guard.shutdown().await;
        drop(guard);
        writer.await.unwrap();
        let mut reply = Vec::new();
        client_read.read_to_end(&mut reply).await.unwrap();
        assert_eq!(
            seen,
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        assert!(reply.starts_with(b"HTTP/1.1 400"));
    }

    /// issue #14 item 10: a head ends where httparse says (here `\r\n\n`), so the
    /// request after it is judged on its own; empty lines before a request pass.
    #[tokio::test]
    async fn every_head_is_judged_where_the_parser_ends_it() {
        let input = b"\r\nGET /a HTTP/1.1\nHost: x\r\n\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let (seen, reply) = run(input).await;
        assert_eq!(seen, b"\r\nGET /a HTTP/1.1\nHost: x\r\n\n");
        assert!(reply.starts_with(b"HTTP/1.1 400"), "{reply:?}");
    }

    #[tokio::test]
    async fn refusals_carry_their_own_status_and_length() {
        for (input, status) in [
            (&b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..], "400"),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "501",
            ),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "501"),
        ] {
            let (seen, reply) = run(input).await;
            assert!(seen.is_empty());
            let reply = String::from_utf8(reply).unwrap();
            assert!(reply.starts_with(&format!("HTTP/1.1 {status} ")), "{reply}");
            let (head, body) = reply.split_once("\r\n\r\n").unwrap();
            assert!(
                head.contains(&format!("content-length: {}\r\n", body.len())),
                "{reply}"
            );
        }
    }

    #[test]
    fn chunk_sizes_are_strict() {
        assert_eq!(parse_chunk_size(b"1f"), Some(31));
        assert_eq!(parse_chunk_size(b"1f;name=v"), Some(31));
        assert_eq!(parse_chunk_size(b"-1"), None);
        assert_eq!(parse_chunk_size(b"0x10"), None);
        assert_eq!(parse_chunk_size(b"11111111111111111"), None);
    }
}
