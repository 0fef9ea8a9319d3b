//! Which files make up the project, and what the project is called — as Compose decides it.

use crate::error::{LoadError, Problem};
use std::path::{Path, PathBuf};

/// The names Compose looks for, in order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Finds the default compose file in `dir` or, like Compose, in the nearest parent that has one.
/// Returns the file and its matching override file when present.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut current = Some(dir);
    while let Some(d) = current {
        for name in DEFAULT_FILES {
            let candidate = d.join(name);
            if candidate.is_file() {
                let mut files = vec![candidate];
                if let Some(o) = override_for(d, name) {
                    files.push(o);
                }
                return Ok(files);
            }
        }
        current = d.parent();
    }
    Err(Problem::plain(format!(
        "no compose file found in {} or its parents (looked for {})",
        dir.display(),
        DEFAULT_FILES.join(", ")
    ))
    .with_help("create compose.yaml, or name the file with -f FILE or COMPOSE_FILE")
    .into())
}

/// `compose.yaml` pairs with `compose.override.yaml` (or `.yml`), `docker-compose.yml` with
/// `docker-compose.override.yml` (or `.yaml`).
fn override_for(dir: &Path, name: &str) -> Option<PathBuf> {
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.override.{ext}")))
        .find(|p| p.is_file())
}

/// The dev-mode file added by `--dev`, when the project has one.
pub fn dev_file(dir: &Path) -> Option<PathBuf> {
    [
        "compose.dev.yaml",
        "compose.dev.yml",
        "docker-compose.dev.yaml",
        "docker-compose.dev.yml",
    ]
    .iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

/// Normalizes a name the way Compose does for names derived from a directory: lowercase, and
/// only `a-z`, `0-9`, `_` and `-` kept, leading `_`/`-` removed.
pub fn normalize_project_name(raw: &str) -> String {
    let s: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

/// A name given explicitly (`-p`, `COMPOSE_PROJECT_NAME`, `name:`) must already be valid.
pub fn is_valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_like_compose() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x-Y"), "x-y");
        assert!(is_valid_project_name("shop-1"));
        assert!(!is_valid_project_name("Shop"));
        assert!(!is_valid_project_name("-x"));
        assert!(!is_valid_project_name(""));
    }
}
