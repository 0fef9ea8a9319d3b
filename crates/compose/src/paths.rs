//! Relative paths in a file resolved to absolute ones.
//!
//! Compose resolves the paths of every `-f` file against the project directory, but those of an
//! `include`d project or of a file named by `extends.file` against that file's own directory. We
//! therefore resolve each file's tree right after reading it, with the right base, so that merging
//! and `extends` only ever see absolute paths.

use crate::node::{Kind, Node};
use std::path::{Component, Path, PathBuf};

pub struct Resolver<'a> {
    pub base: &'a Path,
    pub home: Option<&'a str>,
}

impl Resolver<'_> {
    /// Resolves `p` against the base, expanding a leading `~`, and removes `.` and `..`
    /// components lexically (the path need not exist).
    pub fn path(&self, p: &str) -> String {
        let expanded = match (p.strip_prefix('~'), self.home) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                format!("{home}{rest}")
            }
            _ => p.to_string(),
        };
        let joined = self.base.join(&expanded);
        clean(&joined).to_string_lossy().into_owned()
    }

    /// Resolves the path fields of a whole top-level file tree in place.
    pub fn file(&self, root: &mut Node) {
        if let Some(Kind::Map(services)) = root.get_mut("services").map(|n| &mut n.kind) {
            for e in services.values_mut() {
                self.service(&mut e.value);
            }
        }
        for section in ["secrets", "configs"] {
            if let Some(Kind::Map(items)) = root.get_mut(section).map(|n| &mut n.kind) {
                for e in items.values_mut() {
                    self.str_field(e.value.get_mut("file"));
                }
            }
        }
    }

    pub fn service(&self, svc: &mut Node) {
        if let Some(build) = svc.get_mut("build") {
            match &mut build.kind {
                Kind::Str(s) if !is_remote(s) => *s = self.path(s),
                Kind::Map(_) => {
                    if let Some(ctx) = build.get_mut("context") {
                        if let Kind::Str(s) = &mut ctx.kind {
                            if !is_remote(s) {
                                *s = self.path(s);
                            }
                        }
                    }
                    // Named contexts are paths too, unless they are another kind of context
                    // (`docker-image://`, `service:`, a URL), as compose-go decides.
                    let local = |s: &str| !(is_remote(s) || s.starts_with("service:"));
                    match build.get_mut("additional_contexts").map(|n| &mut n.kind) {
                        Some(Kind::Map(m)) => {
                            for e in m.values_mut() {
                                if let Kind::Str(s) = &mut e.value.kind {
                                    if local(s) {
                                        *s = self.path(s);
                                    }
                                }
                            }
                        }
                        Some(Kind::Seq(items)) => {
                            for item in items {
                                if let Kind::Str(s) = &mut item.kind {
                                    if let Some((k, v)) = s.split_once('=') {
                                        if local(v) {
                                            *s = format!("{k}={}", self.path(v));
                                        }
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if let Some(Kind::Seq(vols)) = svc.get_mut("volumes").map(|n| &mut n.kind) {
            for v in vols {
                match &mut v.kind {
                    Kind::Str(s) => {
                        if let Some(resolved) = self.short_volume(s) {
                            *s = resolved;
                        }
                    }
                    Kind::Map(_) => {
                        let is_bind = v.get("type").and_then(Node::as_str) == Some("bind");
                        if is_bind {
                            if let Some(src) = v.get_mut("source") {
                                if let Kind::Str(s) = &mut src.kind {
                                    *s = self.path(s);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for key in ["env_file", "label_file"] {
            if let Some(n) = svc.get_mut(key) {
                match &mut n.kind {
                    Kind::Str(s) => *s = self.path(s),
                    Kind::Seq(items) => {
                        for item in items {
                            match &mut item.kind {
                                Kind::Str(s) => *s = self.path(s),
                                Kind::Map(_) => self.str_field(item.get_mut("path")),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(ext) = svc.get_mut("extends") {
            self.str_field(ext.get_mut("file"));
        }
        if let Some(Kind::Seq(watch)) = svc
            .get_mut("develop")
            .and_then(|d| d.get_mut("watch"))
            .map(|n| &mut n.kind)
        {
            for w in watch {
                self.str_field(w.get_mut("path"));
            }
        }
    }

    fn str_field(&self, n: Option<&mut Node>) {
        if let Some(Node {
            kind: Kind::Str(s), ..
        }) = n
        {
            *s = self.path(s);
        }
    }

    /// `./src:/app:ro` → `/abs/src:/app:ro`. Only sources that are paths (starting with `.`, `/`
    /// or `~`) change; `data:/var/lib` names a volume and is left alone.
    fn short_volume(&self, s: &str) -> Option<String> {
        if !(s.starts_with('.') || s.starts_with('~')) {
            return None;
        }
        let (src, rest) = match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => return None,
        };
        Some(format!("{}{}", self.path(src), rest))
    }
}

/// Build contexts may be git URLs or other remote references, which are not paths.
pub fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

/// Lexical normalization: drops `.`, folds `..` into its parent.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_cleans() {
        let r = Resolver {
            base: Path::new("/p/app"),
            home: Some("/home/u"),
        };
        assert_eq!(r.path("./src"), "/p/app/src");
        assert_eq!(r.path("../x"), "/p/x");
        assert_eq!(r.path("/abs"), "/abs");
        assert_eq!(r.path("~/d"), "/home/u/d");
        assert_eq!(
            r.short_volume("./a:/b:ro").as_deref(),
            Some("/p/app/a:/b:ro")
        );
        assert_eq!(r.short_volume("data:/b"), None);
    }
}
