//! Port publishing: the short syntax `[[host_ip:]published:]target[/protocol]`, with ranges,
//! turned into the long form.

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
    let s = s.trim();
    if s.is_empty() {
        return Err("empty port specification".into());
    }
    let (body, protocol) = match s.rsplit_once('/') {
        Some((b, p)) => {
            let p = p.to_ascii_lowercase();
            if !matches!(p.as_str(), "tcp" | "udp" | "sctp") {
                return Err(format!("unknown protocol {p:?}; use tcp, udp or sctp"));
            }
            (b, p)
        }
        None => (s, "tcp".to_string()),
    };
    // An IPv6 host address is written in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = if let Some(after) = body.strip_prefix('[') {
        let (ip, rest) = after
            .split_once("]:")
            .ok_or_else(|| format!("bad IPv6 address in {s:?}; write it as [::1]:8080:80"))?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        (None, body.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [t]) => (None, None, *t),
        (None, [p, t]) => (None, Some(*p), *t),
        (None, [ip, p, t]) => (Some(ip.to_string()), Some(*p), *t),
        (Some(ip), [p, t]) => (Some(ip), Some(*p), *t),
        _ => {
            return Err(format!(
                "cannot read port {s:?}; use TARGET, PUBLISHED:TARGET or IP:PUBLISHED:TARGET"
            ))
        }
    };
    let published = published.filter(|p| !p.is_empty());
    let targets = range(target, s)?;
    if targets.0 == 0 {
        return Err(format!(
            "container port 0 in {s:?} is not valid; use 1-65535"
        ));
    }
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
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

/// `8080` or `8000-8010`, every port within 0-65535.
fn range(r: &str, whole: &str) -> Result<(u16, u16), String> {
    let one = |p: &str| -> Result<u16, String> {
        p.trim().parse::<u16>().map_err(|_| {
            format!("invalid port {p:?} in {whole:?}; ports are numbers from 1 to 65535")
        })
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
            "", "abc", "70000", "80/xyz", "1:2:3:4", "0", "9-8", "1-3:1-2",
        ] {
            assert!(parse_short(bad).is_err(), "{bad}");
        }
    }
}
