//! A tiny blocking HTTP/1.1 client, enough for tests to check status codes and bodies
//! without pulling an HTTP client stack into every test crate.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// `GET path` on `addr` with `Connection: close`. Only Content-Length or read-to-close
/// bodies are understood, which is all testapp sends.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<HttpResponse> {
    http_get_host(addr, &addr.to_string(), path)
}

/// `GET path` on `addr` with `host` as the Host header: a request through berth's proxy.
pub fn http_get_host(addr: SocketAddr, host: &str, path: &str) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<HttpResponse> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no end of headers in the response"))?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line in the response"))?;
    Ok(HttpResponse {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let response =
            parse(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\nno").unwrap();
        assert_eq!(response.status, 503);
        assert_eq!(response.body, "no");
        assert!(parse(b"garbage").is_err());
    }
}
