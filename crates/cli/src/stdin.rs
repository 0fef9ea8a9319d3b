//! The process's standard input as an async reader, for `exec` and `run` to stream into a
//! container, read by a thread of its own.
//!
//! tokio's `stdin` reads on the runtime's blocking pool, and a runtime waits for its blocking
//! reads when it is dropped: with an input that never ends (a terminal, a CI runner's open
//! pipe) berth would hang after the command in the container has exited. A detached thread
//! does not hold the process back when it exits.

use std::io::Read;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Chunks read ahead of the container; a few keep the pipe busy without holding much.
const AHEAD: usize = 4;
const CHUNK: usize = 64 * 1024;

pub struct Stdin {
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

/// Starts reading standard input; the reader ends at its end, or at the first read error.
pub fn stdin() -> Stdin {
    let (tx, rx) = mpsc::channel(AHEAD);
    // Without a thread there is no input: the reader then ends at once, which the command
    // sees as an empty input.
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut input = std::io::stdin().lock();
            loop {
                let mut buf = vec![0; CHUNK];
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
    Stdin {
        chunks: rx,
        current: Vec::new(),
        at: 0,
    }
}

impl AsyncRead for Stdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at == this.current.len() {
            match ready!(this.chunks.poll_recv(cx)) {
                // The end of input: a read that fills nothing.
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok(chunk)) => {
                    this.current = chunk;
                    this.at = 0;
                }
            }
        }
        let n = (this.current.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.current[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}
