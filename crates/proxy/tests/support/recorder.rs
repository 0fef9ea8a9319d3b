//! A backend on a raw socket that records every byte it receives and every request it
//! parses, so a test can tell exactly what a hostile client got through the proxy. It
//! answers each request with a 200 (the health path `/up` included) and is not a
//! WebSocket server: a request to upgrade is answered 200, that is, refused.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the recorder parsed it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Every header line, in order, repeated names included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The values of every header line called `name`.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Seen {
    /// Every byte received on every connection, health checks included.
    raw: Vec<u8>,
    /// Every parsed request but health checks.
    requests: Vec<Recorded>,
}

pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let accept_seen = seen.clone();
        tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            let accept = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    connections.spawn(serve(stream, accept_seen.clone()));
                }
            };
            tokio::select! {
                _ = accept => {}
                _ = stopped => {}
            }
        });
        Recorder {
            addr,
            seen,
            stop: Some(stop),
        }
    }

    /// The requests received so far, health checks left out.
    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().requests.clone()
    }

    /// Everything received so far as text (bytes that are not UTF-8 replaced).
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap().raw).into_owned()
    }

    /// Forgets what was received, for the next case of a test.
    pub fn clear(&self) {
        let mut seen = self.seen.lock().unwrap();
        seen.raw.clear();
        seen.requests.clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads requests off one connection until it closes or sends what the recorder cannot
/// parse, answering each.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(request) = next_request(&mut stream, &mut buf, &seen).await else {
            return;
        };
        let close = request
            .values("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("close"));
        if request.target != "/up" {
            seen.lock().unwrap().requests.push(request);
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nrecorded";
        if stream.write_all(answer).await.is_err() || close {
            return;
        }
    }
}

/// Reads more bytes into `buf`, recording them; `None` at the end of the stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, seen: &Mutex<Seen>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    seen.lock().unwrap().raw.extend_from_slice(&chunk[..n]);
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

/// The next whole request on the connection, its body decoded.
async fn next_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    seen: &Mutex<Seen>,
) -> Option<Recorded> {
    let (len, mut request) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let request = Recorded {
                    method: parsed.method.unwrap_or_default().to_string(),
                    target: parsed.path.unwrap_or_default().to_string(),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    body: Vec::new(),
                };
                break (len, request);
            }
            Ok(httparse::Status::Partial) => fill(stream, buf, seen).await?,
            Err(_) => return None,
        }
    };
    buf.drain(..len);
    let chunked = request
        .values("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(stream, buf, seen).await?;
    } else if let Some(length) = request
        .values("content-length")
        .first()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while buf.len() < length {
            fill(stream, buf, seen).await?;
        }
        request.body = buf.drain(..length).collect();
    }
    Some(request)
}

/// A chunked body, decoded; trailers are read and dropped.
async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    seen: &Mutex<Seen>,
) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buf, seen).await?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            while !read_line(stream, buf, seen).await?.is_empty() {}
            return Some(body);
        }
        while buf.len() < size + 2 {
            fill(stream, buf, seen).await?;
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

/// One line without its line ending.
async fn read_line(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    seen: &Mutex<Seen>,
) -> Option<String> {
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            return Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        fill(stream, buf, seen).await?;
    }
}
