//! ARCHITECTURE.md's code map names every source file (issue #15 item 7), so a newcomer can find
//! any file from the map and the map cannot silently fall behind the code.
//!
//! A file counts as named when its path inside the crate's `src/` (for example
//! `commands/proxy/boot.rs`), or its bare file name, appears in a code-map section whose
//! heading names the crate (`### \`crates/deploy\`...`), or its whole path
//! (`crates/cli/src/commands/proxy/boot.rs`) appears anywhere in the page. `lib.rs`, `main.rs` and `mod.rs` are
//! the crates' and modules' roots and need no entry.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of every `###` section whose heading names `crate_dir` (e.g. `crates/deploy`).
fn sections<'a>(architecture: &'a str, crate_dir: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut parts = architecture.split("\n### ");
    parts.next();
    for part in parts {
        let heading = part.lines().next().unwrap_or("");
        let section = part.split("\n## ").next().unwrap_or(part);
        if heading.contains(&format!("`{crate_dir}`"))
            || heading.contains(&format!("`{crate_dir}/`"))
        {
            out.push(section);
        }
    }
    out
}

#[test]
fn the_code_map_names_every_source_file() {
    let root = root();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is read");
    let mut crate_dirs: Vec<String> = std::fs::read_dir(root.join("crates"))
        .expect("crates/ is read")
        .flatten()
        .map(|e| format!("crates/{}", e.file_name().to_string_lossy()))
        .collect();
    crate_dirs.extend(["testapp".to_string(), "xtask".to_string()]);
    crate_dirs.sort();
    let mut missing = Vec::new();
    for dir in &crate_dirs {
        let src = root.join(dir).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        let text = sections(&architecture, dir).join("\n");
        for f in files {
            let rel = f
                .strip_prefix(&src)
                .expect("under src")
                .to_string_lossy()
                .to_string();
            let name = f
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .to_string();
            if ["lib.rs", "main.rs", "mod.rs"].contains(&name.as_str()) {
                continue;
            }
            let full = format!("{dir}/src/{rel}");
            if !text.contains(&rel) && !text.contains(&name) && !architecture.contains(&full) {
                missing.push(format!("{dir}/src/{rel}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name these files (add each to its crate's section): {}",
        missing.join(", ")
    );
}
