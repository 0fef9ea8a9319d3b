//! A request head as berth's own HTTP/1.1 server read it: the bytes, and where each
//! header line is in them.
//!
//! Building a `HeaderMap` (a name lookup and a hash for every line, two allocations) and
//! encoding it again for the target was the largest part of a request's cost in a
//! profile. A proxy needs only a few of a request's headers itself (Host, X-Request-Id,
//! X-Forwarded-For, Connection), so the head stays as it arrived: those few are found by
//! a scan of the lines, and the rest are copied to the target as they are.

use bytes::Bytes;
use hyper::{Method, Uri};

/// Where one header line's name and value are in the head, as byte offsets (a head is at
/// most `max_header_bytes`, far below 4 GiB).
#[derive(Debug, Clone, Copy, Default)]
pub struct Line {
    pub name: (u32, u32),
    pub value: (u32, u32),
}

/// An HTTP/1.1 request without a body, its header lines checked by httparse.
pub struct RequestHead<'a> {
    head: Bytes,
    method: Method,
    uri: Uri,
    lines: &'a [Line],
}

impl<'a> RequestHead<'a> {
    pub fn new(head: Bytes, method: Method, uri: Uri, lines: &'a [Line]) -> RequestHead<'a> {
        RequestHead {
            head,
            method,
            uri,
            lines,
        }
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Every header line as (name, value), in the order the client sent them.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.lines
            .iter()
            .map(|line| (self.bytes(line.name), self.bytes(line.value)))
    }

    /// The value of the first header line called `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.find(name).map(|line| self.bytes(line.value))
    }

    /// The value of the first header line called `name`, sharing the head's memory.
    pub fn get_shared(&self, name: &str) -> Option<Bytes> {
        self.find(name).map(|line| {
            self.head
                .slice(line.value.0 as usize..line.value.1 as usize)
        })
    }

    /// The value of the first header line called `name` when it is visible ASCII, as
    /// `HeaderValue::to_str` asks.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(visible_ascii)
    }

    /// Whether a Connection header lists `name` (which makes it hop-by-hop too).
    pub fn connection_names(&self, name: &[u8]) -> bool {
        self.lines()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(name))
    }

    fn find(&self, name: &str) -> Option<&Line> {
        let name = name.as_bytes();
        self.lines.iter().find(|line| {
            let (start, end) = line.name;
            (end - start) as usize == name.len() && self.bytes(line.name).eq_ignore_ascii_case(name)
        })
    }

    fn bytes(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.head[start as usize..end as usize]
    }
}

/// `bytes` as text when every byte is visible ASCII, a space or a tab.
pub fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    if bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &'static str, lines: &mut Vec<Line>) -> Bytes {
        let bytes = Bytes::from_static(text.as_bytes());
        let base = bytes.as_ptr() as usize;
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut headers);
        parsed.parse(&bytes).unwrap();
        for h in parsed.headers.iter() {
            let at = |s: &[u8]| {
                let start = (s.as_ptr() as usize - base) as u32;
                (start, start + s.len() as u32)
            };
            lines.push(Line {
                name: at(h.name.as_bytes()),
                value: at(h.value),
            });
        }
        bytes
    }

    #[test]
    fn headers_are_found_by_name_whatever_their_case() {
        let mut lines = Vec::new();
        let bytes = head_of(
            "GET /a?b HTTP/1.1\r\nHOST: app.example\r\nX-Forwarded-For: 10.0.0.1\r\nconnection: x-secret, close\r\nx-secret: 1\r\n\r\n",
            &mut lines,
        );
        let head = RequestHead::new(bytes, Method::GET, Uri::from_static("/a?b"), &lines);
        assert_eq!(head.get("host"), Some(&b"app.example"[..]));
        assert_eq!(head.get_str("x-forwarded-for"), Some("10.0.0.1"));
        assert_eq!(head.get("x-request-id"), None);
        assert!(head.connection_names(b"X-Secret"));
        assert!(!head.connection_names(b"host"));
        assert_eq!(head.lines().count(), 4);
    }

    #[test]
    fn only_visible_ascii_is_text() {
        assert_eq!(visible_ascii(b"a b\tc"), Some("a b\tc"));
        assert_eq!(visible_ascii("é".as_bytes()), None);
        assert_eq!(visible_ascii(b"a\x7f"), None);
    }
}
