//! The content hashes of a tree's files, kept between backups so that
//! [`crate::tree_hash::tree_hash_reusing`] reads only the files that changed.
//!
//! A file is known by its device, inode, size, modification time and change time. The change
//! time cannot be set from user space: any write to the file, or to its metadata, moves it to
//! the present. So a file whose key is unchanged still holds the bytes it held when its hash
//! was taken (the rule restic and git use to skip unchanged files). A key that does not match
//! exactly is read again, so a stale or damaged cache costs time, never a wrong hash.
//!
//! The cache lives in berth's state directory, one file per project and item, and is
//! rewritten whole (atomically) after each backup with only the files that tree still holds.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the cache file starts with; a file without it is ignored (read as empty).
const MAGIC: &[u8] = b"berth content hashes 1\n";

/// One record: seven little-endian 64-bit numbers, then the 32-byte hash.
const RECORD: usize = 7 * 8 + 32;

/// What identifies a file's contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileKey {
    pub fn of(m: &Metadata) -> FileKey {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        }
    }

    fn to_bytes(self) -> [u8; 56] {
        let mut out = [0u8; 56];
        let fields = [
            self.dev,
            self.ino,
            self.size,
            self.mtime as u64,
            self.mtime_nsec as u64,
            self.ctime as u64,
            self.ctime_nsec as u64,
        ];
        for (i, f) in fields.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&f.to_le_bytes());
        }
        out
    }

    fn from_bytes(b: &[u8]) -> FileKey {
        let n = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        FileKey {
            dev: n(0),
            ino: n(1),
            size: n(2),
            mtime: n(3) as i64,
            mtime_nsec: n(4) as i64,
            ctime: n(5) as i64,
            ctime_nsec: n(6) as i64,
        }
    }
}

/// Content hashes (blake3) by file key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContentHashes {
    hashes: HashMap<FileKey, [u8; 32]>,
}

impl ContentHashes {
    /// Where the cache of `item` (its [`crate::Item::id`]) of `project` is kept.
    pub fn path(state_dir: &Path, project: &str, item: &str) -> PathBuf {
        // The item's id holds `/` and `:` (a bind mount's path); its hash is a file name.
        let name = blake3::hash(item.as_bytes()).to_hex();
        state_dir.join(format!("backup-hashes-{project}-{}", &name[..16]))
    }

    /// The cache at `path`; empty when there is none or it cannot be read, since a cache
    /// only saves reading.
    pub fn load(path: &Path) -> ContentHashes {
        let Ok(bytes) = std::fs::read(path) else {
            return ContentHashes::default();
        };
        let Some(body) = bytes.strip_prefix(MAGIC) else {
            return ContentHashes::default();
        };
        let hashes = body
            .chunks_exact(RECORD)
            .map(|r| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&r[56..]);
                (FileKey::from_bytes(&r[..56]), hash)
            })
            .collect();
        ContentHashes { hashes }
    }

    /// Replaces the cache at `path` with these hashes, atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = Vec::with_capacity(MAGIC.len() + self.hashes.len() * RECORD);
        out.extend_from_slice(MAGIC);
        for (key, hash) in &self.hashes {
            out.extend_from_slice(&key.to_bytes());
            out.extend_from_slice(hash);
        }
        berth_base::atomic::write_mode(path, &out, 0o600)
    }

    pub fn get(&self, key: &FileKey) -> Option<[u8; 32]> {
        self.hashes.get(key).copied()
    }

    pub fn insert(&mut self, key: FileKey, hash: [u8; 32]) {
        self.hashes.insert(key, hash);
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cache_loads_equal_and_a_foreign_file_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let key = FileKey::of(&std::fs::metadata(dir.path().join("f")).unwrap());
        let mut cache = ContentHashes::default();
        cache.insert(key, [7u8; 32]);
        let path = ContentHashes::path(dir.path(), "p", "bind:/srv/data");
        cache.save(&path).unwrap();
        assert_eq!(ContentHashes::load(&path), cache);

        std::fs::write(&path, "not a cache").unwrap();
        assert!(ContentHashes::load(&path).is_empty());
        assert!(ContentHashes::load(&dir.path().join("missing")).is_empty());
    }
}
