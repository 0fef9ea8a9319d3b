//! One hash of a directory tree and everything a restore must give back of it: names,
//! types, permissions, owners, modification times, file contents, symlink targets and which
//! files are hard links of each other. `backup create` records it for each volume and bind
//! mount; `backup verify` restores the snapshot into a scratch volume and compares.
//!
//! Extended attributes are not in the hash (std has no call to read them); restic's own
//! check covers the bytes that hold them.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The tree hash of `root`, as 64 hex digits.
pub fn tree_hash(root: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    entry(root, b".", &mut hasher, &mut links)?;
    walk(root, b"", &mut hasher, &mut links)?;
    Ok(hasher.finalize().to_hex().to_string())
}

fn walk(
    dir: &Path,
    prefix: &[u8],
    hasher: &mut blake3::Hasher,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> std::io::Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = dir.join(&name);
        let mut rel = prefix.to_vec();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        if entry(&path, &rel, hasher, links)? {
            walk(&path, &rel, hasher, links)?;
        }
    }
    Ok(())
}

/// Hashes one entry; true when it is a directory to descend into.
fn entry(
    path: &Path,
    rel: &[u8],
    hasher: &mut blake3::Hasher,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> std::io::Result<bool> {
    let m = std::fs::symlink_metadata(path)?;
    let t = m.file_type();
    let kind: &[u8] = if t.is_dir() {
        b"d"
    } else if t.is_symlink() {
        b"l"
    } else if t.is_file() {
        b"f"
    } else if t.is_fifo() {
        b"p"
    } else if t.is_socket() {
        b"s"
    } else {
        b"c"
    };
    hasher.update(rel);
    hasher.update(b"\0");
    hasher.update(kind);
    let meta = format!("\0{:o}\0{}\0{}", m.mode() & 0o7777, m.uid(), m.gid());
    hasher.update(meta.as_bytes());
    // A symlink's own time is not restored by every tool (nor needed by anyone).
    if !t.is_symlink() {
        hasher.update(format!("\0{}.{:09}", m.mtime(), m.mtime_nsec()).as_bytes());
    }
    if t.is_symlink() {
        hasher.update(b"\0");
        hasher.update(std::fs::read_link(path)?.as_os_str().as_bytes());
    } else if t.is_file() {
        hasher.update(format!("\0{}", m.len()).as_bytes());
        if m.nlink() > 1 {
            // Hard links: every name after the first says which name it shares data with.
            let first = links
                .entry((m.dev(), m.ino()))
                .or_insert_with(|| rel.to_vec());
            hasher.update(b"\0=");
            hasher.update(first);
        }
        let mut content = blake3::Hasher::new();
        let mut file = std::fs::File::open(path)?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            content.update(&buffer[..n]);
        }
        hasher.update(b"\0");
        hasher.update(content.finalize().as_bytes());
    } else if !t.is_dir() {
        hasher.update(format!("\0{}", m.rdev()).as_bytes());
    }
    hasher.update(b"\n");
    Ok(t.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    #[test]
    fn the_hash_sees_content_modes_links_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/a"), "one").unwrap();
        std::fs::write(root.join("b"), "two").unwrap();
        std::os::unix::fs::symlink("d/a", root.join("l")).unwrap();
        let base = tree_hash(root).unwrap();
        assert_eq!(base, tree_hash(root).unwrap(), "the hash is stable");

        type Change = Box<dyn Fn(&Path)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "content",
                Box::new(|r: &Path| std::fs::write(r.join("b"), "twO").unwrap()),
            ),
            (
                "mode",
                Box::new(|r: &Path| {
                    std::fs::set_permissions(r.join("b"), std::fs::Permissions::from_mode(0o600))
                        .unwrap()
                }),
            ),
            (
                "hard link",
                Box::new(|r: &Path| std::fs::hard_link(r.join("b"), r.join("d/hb")).unwrap()),
            ),
            (
                "symlink target",
                Box::new(|r: &Path| {
                    std::fs::remove_file(r.join("l")).unwrap();
                    std::os::unix::fs::symlink("b", r.join("l")).unwrap();
                }),
            ),
        ];
        for (what, change) in changes {
            let copy = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("cp")
                .args(["-a", "--"])
                .arg(format!("{}/.", root.display()))
                .arg(copy.path())
                .status()
                .unwrap();
            assert!(status.success());
            let same = tree_hash(copy.path()).unwrap();
            change(copy.path());
            assert_ne!(same, tree_hash(copy.path()).unwrap(), "{what} is not seen");
        }
    }
}
