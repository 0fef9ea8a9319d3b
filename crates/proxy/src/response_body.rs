//! A target's answer body, read straight from its connection as the client takes it.
//!
//! The body follows the answer's framing (a length, chunks, or the connection's end),
//! hands each piece on as soon as it arrives (nothing is buffered beyond one read), and
//! gives the connection back to this thread's pool the moment the last byte is read, so
//! the next request can use it before this answer has even reached the client. A body
//! dropped before its end (the client went away) closes the connection instead: what is
//! left of the answer would otherwise be read as the next one.

use crate::body::BoxError;
use crate::pool::{self, Conn};
use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

/// The longest chunk-size or trailer line accepted from a target.
const MAX_LINE: usize = 4096;
/// How much room each read from a target gets.
const READ_SIZE: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304, or a length of 0).
    Empty,
    Length(u64),
    Chunked,
    /// No length and no chunks: the body ends when the target closes the connection.
    UntilClose,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

pub struct ResponseBody {
    conn: Option<Conn>,
    state: State,
    addr: SocketAddr,
    /// Whether the connection may carry another request once this body is read.
    reusable: bool,
    idle_timeout: Duration,
}

impl ResponseBody {
    /// `conn.buf` holds whatever of the body arrived with the head.
    pub fn new(
        conn: Conn,
        framing: Framing,
        addr: SocketAddr,
        reusable: bool,
        idle_timeout: Duration,
    ) -> ResponseBody {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = ResponseBody {
            conn: Some(conn),
            state,
            addr,
            reusable: reusable && framing != Framing::UntilClose,
            idle_timeout,
        };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// The body is read to its end: the connection goes back to the pool when nothing
    /// beyond the answer arrived on it.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            if self.reusable && conn.buf.is_empty() {
                pool::checkin(self.addr, conn, self.idle_timeout);
            }
        }
    }

    /// Reads more of the answer into the buffer; `Ok(false)` when the target closed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, BoxError>> {
        let conn = self.conn.as_mut().ok_or("the body was already read")?;
        conn.buf.reserve(READ_SIZE);
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut conn.stream),
            cx,
            &mut conn.buf
        ))?;
        Poll::Ready(Ok(n > 0))
    }

    /// The answer broke off or broke the protocol: the connection is dropped, never reused.
    fn fail(&mut self, reason: &'static str) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(reason.into())))
    }

    fn buffered(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.buf.len())
    }

    fn take(&mut self, n: usize) -> Bytes {
        match self.conn.as_mut() {
            Some(conn) => conn.buf.split_to(n).freeze(),
            None => Bytes::new(),
        }
    }

    /// One line (chunk size or trailer) without its CRLF, once it is complete.
    fn take_line(&mut self) -> Result<Option<Bytes>, BoxError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        match conn.buf.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let line = conn.buf.split_to(nl + 1).freeze();
                let text = line
                    .strip_suffix(b"\r\n")
                    .or_else(|| line.strip_suffix(b"\n"))
                    .unwrap_or(&line);
                Ok(Some(line.slice_ref(text)))
            }
            None if conn.buf.len() > MAX_LINE => {
                Err("the target sent a chunk line longer than 4 KiB".into())
            }
            None => Ok(None),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Length(remaining) => {
                    if this.buffered() == 0 {
                        if !ready!(this.poll_fill(cx))? {
                            return this.fail(
                                "the target closed the connection before the end of the body",
                            );
                        }
                        continue;
                    }
                    let n = remaining.min(this.buffered() as u64);
                    let data = this.take(n as usize);
                    this.state = State::Length(remaining - n);
                    if remaining == n {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose => {
                    if this.buffered() == 0 {
                        if !ready!(this.poll_fill(cx))? {
                            this.conn = None;
                            this.state = State::Done;
                            return Poll::Ready(None);
                        }
                        continue;
                    }
                    let n = this.buffered();
                    return Poll::Ready(Some(Ok(Frame::data(this.take(n)))));
                }
                State::ChunkSize | State::Trailers => {
                    let Some(line) = this.take_line()? else {
                        if !ready!(this.poll_fill(cx))? {
                            return this
                                .fail("the target closed the connection inside a chunked body");
                        }
                        continue;
                    };
                    if matches!(this.state, State::Trailers) {
                        // Trailers are not passed on (HTTP/1.1 clients rarely ask for
                        // them); the empty line ends the body.
                        if line.is_empty() {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        continue;
                    }
                    this.state = match parse_chunk_size(&line) {
                        Some(0) => State::Trailers,
                        Some(size) => State::ChunkData(size),
                        None => {
                            return this
                                .fail("the target sent a chunk size that is not a hex number");
                        }
                    };
                }
                State::ChunkData(remaining) => {
                    if this.buffered() == 0 {
                        if !ready!(this.poll_fill(cx))? {
                            return this.fail("the target closed the connection inside a chunk");
                        }
                        continue;
                    }
                    let n = remaining.min(this.buffered() as u64);
                    let data = this.take(n as usize);
                    this.state = if remaining == n {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(remaining - n)
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkEnd => {
                    if this.buffered() < 2 {
                        if !ready!(this.poll_fill(cx))? {
                            return this
                                .fail("the target closed the connection inside a chunked body");
                        }
                        continue;
                    }
                    let ok = this
                        .conn
                        .as_ref()
                        .is_some_and(|c| c.buf.starts_with(b"\r\n"));
                    if !ok {
                        return this.fail("the target sent chunk data longer than its size");
                    }
                    if let Some(conn) = this.conn.as_mut() {
                        conn.buf.advance(2);
                    }
                    this.state = State::ChunkSize;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// A chunk-size line: hex digits, optionally followed by `;extensions`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut size = 0u64;
    for &b in digits {
        size = size * 16 + (b as char).to_digit(16)? as u64;
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::parse_chunk_size;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"FF;name=value"), Some(255));
        assert_eq!(parse_chunk_size(b"  10 "), Some(16));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"zz"), None);
        assert_eq!(parse_chunk_size(b"1234567890abcdef0"), None);
    }
}
