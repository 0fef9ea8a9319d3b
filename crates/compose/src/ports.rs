//! Port publishing: the short syntax `[[host_ip:]published:]target[/protocol]`, with ranges,
//! turned into the long form.
//!
//! The rules are Docker's (`nat.ParsePortSpec`, which Compose calls): the string is split on
//! `:` first, the last part being the container port and the one before it the published port;
//! whatever precedes them is the host IP, so an IPv6 address may be written in brackets
//! (`[::1]:8080:80`) or bare (`::1:8080:80`). The protocol is a suffix of the container port
//! only. A host IP must be an IP address: `8080:80:90` is refused rather than read as the host
//! "8080".

use std::net::IpAddr;

/// One published port in long syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<String>,
    pub target: u16,
    /// A port or a range (`8000-8010`), kept as a string as Compose prints it.
    pub published: Option<String>,
    pub protocol: String,
}

/// Parses the short syntax; a range of targets gives one entry per port.
pub fn parse_short(s: &str) -> Result<Vec<PortSpec>, String> {
    if s.is_empty() {
        return Err("empty port specification".into());
    }
    // From the right: the container port, then the published port, then the host IP, which
    // may itself hold colons (IPv6).
    let mut parts = s.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let published = parts.next().unwrap_or_default();
    let host_ip = parts.next().unwrap_or_default();
    let host_ip = if host_ip.is_empty() {
        None
    } else {
        Some(parse_host_ip(host_ip).ok_or_else(|| {
            format!(
                "invalid host IP {host_ip:?} in {s:?}; use an IP address like 127.0.0.1 or [::1]"
            )
        })?)
    };
    let (target, protocol) = match container.split_once('/') {
        None => (container, "tcp".to_string()),
        Some((t, p)) => {
            let p = p.to_ascii_lowercase();
            match p.as_str() {
                // Docker reads `80/` as tcp.
                "" => (t, "tcp".to_string()),
                "tcp" | "udp" | "sctp" => (t, p),
                _ => {
                    return Err(format!(
                        "unknown protocol {p:?} in {s:?}; use tcp, udp or sctp"
                    ))
                }
            }
        }
    };
    if target.is_empty() {
        return Err(format!(
            "no container port in {s:?}; use TARGET, PUBLISHED:TARGET or IP:PUBLISHED:TARGET"
        ));
    }
    let targets = range(target, s)?;
    if targets.0 == 0 {
        return Err(format!(
            "container port 0 in {s:?} is not valid; use 1-65535"
        ));
    }
    let published = Some(published).filter(|p| !p.is_empty());
    let count = targets.1 - targets.0 + 1;
    let mut out = Vec::new();
    match published {
        None => {
            for t in targets.0..=targets.1 {
                out.push(PortSpec {
                    host_ip: host_ip.clone(),
                    target: t,
                    published: None,
                    protocol: protocol.clone(),
                });
            }
        }
        Some(p) => {
            let pubs = range(p, s)?;
            let pub_count = pubs.1 - pubs.0 + 1;
            if count == 1 {
                // One container port may take any free port of a published range.
                out.push(PortSpec {
                    host_ip,
                    target: targets.0,
                    published: Some(p.to_string()),
                    protocol,
                });
            } else if pub_count == count {
                for i in 0..count {
                    out.push(PortSpec {
                        host_ip: host_ip.clone(),
                        target: targets.0 + i,
                        published: Some((pubs.0 + i).to_string()),
                        protocol: protocol.clone(),
                    });
                }
            } else {
                return Err(format!(
                    "port ranges in {s:?} have different sizes ({pub_count} published, {count} container ports)"
                ));
            }
        }
    }
    Ok(out)
}

/// A host IP as Docker accepts it: an IPv4 or IPv6 address, IPv6 optionally in brackets.
/// Returns the address without brackets, as Compose prints it.
pub fn parse_host_ip(ip: &str) -> Option<String> {
    let bare = match ip.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None => ip,
    };
    bare.parse::<IpAddr>().ok().map(|_| bare.to_string())
}

/// `8080` or `8000-8010`, every port within 0-65535. No spaces are allowed, as in Docker.
fn range(r: &str, whole: &str) -> Result<(u16, u16), String> {
    let one = |p: &str| -> Result<u16, String> {
        if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = p.parse::<u16>() {
                return Ok(n);
            }
        }
        Err(format!(
            "invalid port {p:?} in {whole:?}; ports are numbers from 1 to 65535"
        ))
    };
    match r.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(format!("port range {r:?} in {whole:?} runs backwards"));
            }
            Ok((a, b))
        }
        None => {
            let p = one(r)?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortSpec {
        let mut v = parse_short(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.remove(0)
    }

    #[test]
    fn short_forms() {
        assert_eq!(one("80").target, 80);
        assert_eq!(one("80").published, None);
        let p = one("127.0.0.1:8080:80/udp");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.published.as_deref(), Some("8080"));
        assert_eq!(p.protocol, "udp");
        let p = one("[::1]:8080:80");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        assert_eq!(one("::1:8080:80").host_ip.as_deref(), Some("::1"));
        assert_eq!(one("127.0.0.1::80").published, None);
        assert_eq!(one("8000-8010:80").published.as_deref(), Some("8000-8010"));
        assert_eq!(parse_short("3000-3002").unwrap().len(), 3);
        let v = parse_short("9090-9091:8080-8081").unwrap();
        assert_eq!(
            (v[1].target, v[1].published.as_deref()),
            (8081, Some("9091"))
        );
    }

    #[test]
    fn bad_forms() {
        for bad in [
            "",
            "abc",
            "70000",
            "80/xyz",
            "1:2:3:4",
            "0",
            "9-8",
            "1-3:1-2",
            "8080:80:90",
            "8080/tcp:80",
            " 80",
            "+80",
            "[::1:80:80",
        ] {
            assert!(parse_short(bad).is_err(), "{bad}");
        }
    }
}
