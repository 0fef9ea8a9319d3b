//! Host names as the certificate store keys them, and their file names on disk.

use super::TlsError;

/// Normalises `host` (lowercase, no trailing dot) and checks that it is a DNS name, optionally
/// with a single leading `*.` wildcard label.
pub(crate) fn normalize(host: &str) -> Result<String, TlsError> {
    let invalid = |reason: &str| TlsError::InvalidHost {
        host: host.to_owned(),
        reason: reason.to_owned(),
    };
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower.is_empty() {
        return Err(invalid("it is empty; pass a name such as shop.example.com"));
    }
    if lower.len() > 253 {
        return Err(invalid("it is longer than 253 characters"));
    }
    let rest = lower.strip_prefix("*.").unwrap_or(&lower);
    for label in rest.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(
                "every dot-separated label must have 1 to 63 characters",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "only letters, digits, '-' and '.' are allowed, and '*' only as the whole first label",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label may not start or end with '-'"));
        }
    }
    Ok(lower)
}

/// The stem of the files a host's certificate is stored in. `*` is not portable in file
/// names, and `_` never occurs in a valid host name, so the mapping is reversible.
pub(crate) fn file_stem(host: &str) -> String {
    host.replace('*', "_")
}

/// The host a stored file stem belongs to, if the stem is one that [`file_stem`] produces.
pub(crate) fn from_file_stem(stem: &str) -> Option<String> {
    let host = stem.replacen('_', "*", 1);
    normalize(&host).ok().filter(|h| *h == host)
}

/// The wildcard name that would cover `host`: `a.example.com` -> `*.example.com`. Wildcards
/// cover exactly one label, so there is only one candidate.
pub(crate) fn wildcard_for(host: &str) -> Option<String> {
    let (_, parent) = host.split_once('.')?;
    if parent.contains('.') {
        Some(format!("*.{parent}"))
    } else {
        // `*.com` style wildcards are not issued by any CA; do not look for them.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(
            normalize("Shop.Example.COM.").ok().as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            normalize("*.example.com").ok().as_deref(),
            Some("*.example.com")
        );
        assert!(normalize("").is_err());
        assert!(normalize("a..b").is_err());
        assert!(normalize("a.*.b").is_err());
        assert!(normalize("under_score.com").is_err());
        assert!(normalize("-a.com").is_err());
        assert!(normalize("../etc/passwd").is_err());
    }

    #[test]
    fn file_stems_round_trip() {
        assert_eq!(file_stem("*.example.com"), "_.example.com");
        assert_eq!(
            from_file_stem("_.example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(from_file_stem("shop.test").as_deref(), Some("shop.test"));
        assert_eq!(from_file_stem("a_b.test"), None);
        assert_eq!(from_file_stem("Shop.test"), None);
    }

    #[test]
    fn wildcards() {
        assert_eq!(
            wildcard_for("a.example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(
            wildcard_for("b.a.example.com").as_deref(),
            Some("*.a.example.com")
        );
        assert_eq!(wildcard_for("example.com"), None);
        assert_eq!(wildcard_for("localhost"), None);
    }
}
