//! Idle keep-alive connections to targets, one pool per data-plane thread.
//!
//! Each worker thread runs a single-threaded runtime (see `server`), so its connections
//! are only ever used on that thread: the pool is a thread-local with no lock, and a
//! checkout is a hash lookup and a `Vec::pop`. A connection is handed out only when the
//! reactor has not seen it become readable since its last answer was read: an idle
//! connection that turns readable was closed by the target (or sent something it should
//! not have), and is dropped instead of being reused.

use bytes::BytesMut;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How often the pool drops connections that expired or were closed while idle, when
/// traffic does not do it first.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A connection to a target, its read buffer, which may keep capacity for the next
/// answer, and the timer that bounds the wait for each answer (`h1_client`). One timer per
/// connection rather than one per request: it is moved on only when it fires before the
/// current request's deadline, about once per response timeout.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub timer: Pin<Box<tokio::time::Sleep>>,
}

impl Conn {
    /// A connection whose first answer is due by `deadline`.
    pub fn new(stream: TcpStream, deadline: tokio::time::Instant) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Target addresses come from the operator's routes, never from a client, so the pool's
/// map needs no defence against chosen keys; std's SipHash cost as much per request as the
/// rest of a checkout and a checkin together.
#[derive(Default)]
struct AddrHasher(u64);

impl AddrHasher {
    fn add(&mut self, word: u64) {
        // The multiply-rotate step of rustc's FxHasher.
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Pool {
    idle: HashMap<SocketAddr, Vec<Idle>, BuildHasherDefault<AddrHasher>>,
    timeout: Duration,
    last_sweep: Instant,
    sweeper: bool,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        idle: HashMap::default(),
        timeout: Duration::from_secs(30),
        last_sweep: Instant::now(),
        sweeper: false,
    });
}

/// A warm connection to `addr`, if this thread has one that is still open.
pub fn checkout(addr: SocketAddr) -> Option<Conn> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let timeout = pool.timeout;
        let list = pool.idle.get_mut(&addr)?;
        // The most recently used connection first: it is the one least likely to have
        // been closed by the target's own idle timeout.
        while let Some(idle) = list.pop() {
            if idle.since.elapsed() < timeout && still_open(&idle.conn.stream) {
                return Some(idle.conn);
            }
        }
        None
    })
}

/// Puts a connection whose last answer was read to the end back for the next request.
/// `idle_timeout` is the proxy's `upstream_idle`; the first call on a thread also starts
/// that thread's sweeper.
pub fn checkin(addr: SocketAddr, conn: Conn, idle_timeout: Duration) {
    let start_sweeper = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.timeout = idle_timeout;
        pool.idle.entry(addr).or_default().push(Idle {
            conn,
            since: Instant::now(),
        });
        if pool.last_sweep.elapsed() >= SWEEP_EVERY {
            sweep(&mut pool);
        }
        !std::mem::replace(&mut pool.sweeper, true)
    });
    if start_sweeper && tokio::runtime::Handle::try_current().is_ok() {
        // Connections left idle when traffic stops would otherwise stay open (and, once
        // the target closes them, half-closed) until the next request on this thread.
        tokio::spawn(async {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                POOL.with(|pool| sweep(&mut pool.borrow_mut()));
            }
        });
    }
}

fn sweep(pool: &mut Pool) {
    let timeout = pool.timeout;
    pool.idle.retain(|_, list| {
        list.retain(|idle| idle.since.elapsed() < timeout && still_open(&idle.conn.stream));
        !list.is_empty()
    });
    pool.last_sweep = Instant::now();
}

/// An idle connection is open while the reactor has seen nothing to read on it. Reading
/// an answer to its end leaves the readiness cleared (a short read shows the socket
/// drained), so this normally costs no system call; when readiness is set, one
/// non-blocking read tells a closed connection from a stale flag.
fn still_open(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (SocketAddr, TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (addr, client, server)
    }

    fn conn(stream: TcpStream) -> Conn {
        Conn::new(stream, tokio::time::Instant::now())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_open_connection_is_handed_out_again() {
        let (addr, client, _server) = pair().await;
        checkin(addr, conn(client), Duration::from_secs(30));
        assert!(checkout(addr).is_some());
        assert!(checkout(addr).is_none(), "a connection is handed out once");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_the_target_closed_is_dropped() {
        let (addr, client, server) = pair().await;
        checkin(addr, conn(client), Duration::from_secs(30));
        drop(server);
        // Let the reactor see the close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(checkout(addr).is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_with_unexpected_data_is_dropped() {
        let (addr, client, mut server) = pair().await;
        checkin(addr, conn(client), Duration::from_secs(30));
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(checkout(addr).is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_expired_connection_is_dropped() {
        let (addr, client, _server) = pair().await;
        checkin(addr, conn(client), Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(checkout(addr).is_none());
    }
}
