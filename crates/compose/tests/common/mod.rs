//! Shared helpers for the loader's integration tests.
#![allow(dead_code)]

use berth_compose::{load, LoadError, LoadOptions, Loaded};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

/// The external conformance corpus (`shared/corpus`). `BERTH_CORPUS_DIR` names it; when unset
/// the checkout's sibling `shared/corpus` is used. A missing corpus fails the test: it must
/// never be skipped silently.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("BERTH_CORPUS_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.is_dir(),
                "BERTH_CORPUS_DIR={} does not exist",
                d.display()
            );
            d
        }
        None => {
            let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
            assert!(
                d.is_dir(),
                "the compose corpus is missing at {}; set BERTH_CORPUS_DIR",
                d.display()
            );
            d.canonicalize().unwrap()
        }
    }
}

/// Loads a project from `dir` with a controlled environment (never the test process's own).
pub fn load_dir(
    dir: &Path,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut LoadOptions),
) -> Result<Loaded, LoadError> {
    let mut opts = LoadOptions {
        working_dir: dir.to_path_buf(),
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<IndexMap<_, _>>(),
        ..Default::default()
    };
    tweak(&mut opts);
    load(&opts)
}

/// Writes `files` (name, contents) into a fresh temporary directory named `dirname`.
pub fn project(dirname: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(dirname);
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    (tmp, dir)
}

/// The canonical YAML with the project directory replaced by a placeholder, for snapshots.
pub fn yaml(l: &Loaded) -> String {
    let text = berth_compose::output::to_yaml(&l.canonical);
    text.replace(&l.project_dir.display().to_string(), "$PROJECT_DIR")
}
