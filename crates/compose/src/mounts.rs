//! Service volumes: the short syntax `[source:]target[:mode]` turned into the long form.

/// A mount in long syntax, as far as the short syntax can express it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountSpec {
    /// `bind` or `volume`.
    pub kind: &'static str,
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    pub selinux: Option<String>,
    pub propagation: Option<String>,
    pub nocopy: bool,
    pub consistency: Option<String>,
}

/// Parses `data:/var/lib/x:ro`, `/host:/ctr`, `/anonymous`. Sources are already absolute when
/// they are paths (see `paths`); anything else names a volume.
pub fn parse_short(s: &str) -> Result<MountSpec, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => {
            return Err(format!(
                "cannot read volume {s:?}; use TARGET, SOURCE:TARGET or SOURCE:TARGET:MODE"
            ))
        }
    };
    if target.is_empty() {
        return Err(format!("volume {s:?} has an empty container path"));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "volume {s:?}: the container path {target:?} must be absolute"
        ));
    }
    let source = source.filter(|s| !s.is_empty());
    let is_path = source
        .map(|s| s.starts_with('/') || s.starts_with('.') || s.starts_with('~'))
        .unwrap_or(false);
    let mut m = MountSpec {
        kind: if is_path { "bind" } else { "volume" },
        source: source.map(String::from),
        target: target.to_string(),
        ..Default::default()
    };
    if let Some(mode) = mode {
        for opt in mode.split(',') {
            match opt {
                "ro" => m.read_only = true,
                "rw" => m.read_only = false,
                "z" | "Z" => m.selinux = Some(opt.to_string()),
                "nocopy" => m.nocopy = true,
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                    m.propagation = Some(opt.to_string())
                }
                "consistent" | "cached" | "delegated" => m.consistency = Some(opt.to_string()),
                other => {
                    return Err(format!(
                        "unknown volume mode {other:?} in {s:?}; use ro, rw, z, Z, nocopy or a propagation mode"
                    ))
                }
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let m = parse_short("/abs/src:/app:ro").unwrap();
        assert_eq!((m.kind, m.read_only), ("bind", true));
        let m = parse_short("data:/var/lib/postgresql/data").unwrap();
        assert_eq!((m.kind, m.source.as_deref()), ("volume", Some("data")));
        let m = parse_short("/usr/src/app/node_modules").unwrap();
        assert_eq!((m.kind, m.source), ("volume", None));
        assert!(parse_short("a:b").is_err());
        assert!(parse_short("a:/b:xx").is_err());
        assert!(parse_short("a:/b:ro:x").is_err());
    }
}
