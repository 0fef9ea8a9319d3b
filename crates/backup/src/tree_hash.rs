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

use crate::content_hashes::{ContentHashes, FileKey};

/// The tree hash of `root`, as 64 hex digits, reading every file.
pub fn tree_hash(root: &Path) -> std::io::Result<String> {
    tree_hash_reusing(root, &ContentHashes::default()).map(|(hash, _)| hash)
}

/// The tree hash of `root`, taking the contents' hashes of unchanged files from `known`
/// instead of reading them; also returns the contents' hashes of every file the tree holds
/// now, for the next call.
pub fn tree_hash_reusing(
    root: &Path,
    known: &ContentHashes,
) -> std::io::Result<(String, ContentHashes)> {
    let mut walk_state = Walk {
        hasher: blake3::Hasher::new(),
        links: HashMap::new(),
        known,
        seen: ContentHashes::default(),
    };
    entry(root, b".", &mut walk_state)?;
    walk(root, b"", &mut walk_state)?;
    Ok((
        walk_state.hasher.finalize().to_hex().to_string(),
        walk_state.seen,
    ))
}

/// What a walk carries from entry to entry.
struct Walk<'a> {
    hasher: blake3::Hasher,
    /// The first name of each file with several hard links.
    links: HashMap<(u64, u64), Vec<u8>>,
    known: &'a ContentHashes,
    seen: ContentHashes,
}

fn walk(dir: &Path, prefix: &[u8], state: &mut Walk) -> std::io::Result<()> {
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
        if entry(&path, &rel, state)? {
            walk(&path, &rel, state)?;
        }
    }
    Ok(())
}

/// Hashes one entry; true when it is a directory to descend into.
fn entry(path: &Path, rel: &[u8], state: &mut Walk) -> std::io::Result<bool> {
    let hasher = &mut state.hasher;
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
            let first = state
                .links
                .entry((m.dev(), m.ino()))
                .or_insert_with(|| rel.to_vec());
            hasher.update(b"\0=");
            hasher.update(first);
        }
        let key = FileKey::of(&m);
        let content = match state.known.get(&key) {
            Some(known) => known,
            None => content_hash(path)?,
        };
        state.seen.insert(key, content);
        hasher.update(b"\0");
        hasher.update(&content);
    } else if !t.is_dir() {
        hasher.update(format!("\0{}", m.rdev()).as_bytes());
    }
    hasher.update(b"\n");
    Ok(t.is_dir())
}

/// The blake3 hash of the file's bytes.
fn content_hash(path: &Path) -> std::io::Result<[u8; 32]> {
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
    Ok(*content.finalize().as_bytes())
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

    #[test]
    fn unchanged_files_come_from_the_cache_and_a_rewritten_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a"), "one").unwrap();
        std::fs::write(root.join("b"), "two").unwrap();
        let fresh = tree_hash(root).unwrap();
        let (reused, seen) = tree_hash_reusing(root, &ContentHashes::default()).unwrap();
        assert_eq!(fresh, reused);
        assert_eq!(seen.len(), 2);
        let (again, _) = tree_hash_reusing(root, &seen).unwrap();
        assert_eq!(fresh, again, "the cached hashes give the same tree hash");

        // The cache is really used: a wrong hash under a file's exact key shows through.
        let a = FileKey::of(&std::fs::metadata(root.join("a")).unwrap());
        let mut lying = seen.clone();
        lying.insert(a, [0u8; 32]);
        assert_ne!(fresh, tree_hash_reusing(root, &lying).unwrap().0);

        // New bytes of the same size with the old mtime put back: only ctime tells, and it does.
        let mtime = std::fs::metadata(root.join("a"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("a"), "One").unwrap();
        std::fs::File::options()
            .write(true)
            .open(root.join("a"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let changed = tree_hash(root).unwrap();
        assert_ne!(fresh, changed);
        assert_eq!(changed, tree_hash_reusing(root, &lying).unwrap().0);
    }
}
