//! A directory as a snapshot source: rustic's local walk, plus the directory's own entry.
//!
//! rustic's walk skips the root directory of a backup path, so a snapshot taken with an
//! `as_path` would hold a made-up root (mode 0755, owned by root, no times). A volume's root
//! is often not that (a database's data directory is 0700 and owned by its server's user),
//! and restoring it so would break the service; this source adds the root's real metadata
//! in front of the walk, and [`apply_root`] writes it back after a restore.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustic_core::jiff::Timestamp;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{
    IndexedFull, LocalDestination, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions,
    LsOptions, ReadSource, ReadSourceEntry, Repository, RestoreOptions, RusticError, RusticResult,
};

/// Go's `fs.ModeDir` and friends, which restic's format stores (rustic maps the same way).
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

pub(crate) struct DirSource {
    root: PathBuf,
    /// The root's name in the snapshot: the last component of the item's snapshot path,
    /// not the directory's own name (a volume's directory is always `_data`).
    name: std::ffi::OsString,
    walk: LocalSource,
}

impl DirSource {
    pub(crate) fn new(root: &Path, as_path: &Path) -> RusticResult<DirSource> {
        let walk = LocalSource::new(
            LocalSourceSaveOptions::default(),
            &Default::default(),
            &LocalSourceFilterOptions::default(),
            &[root],
        )?;
        Ok(DirSource {
            root: root.to_path_buf(),
            name: as_path.file_name().unwrap_or_default().to_os_string(),
            walk,
        })
    }

    fn root_entry(&self) -> Option<ReadSourceEntry<<LocalSource as ReadSource>::Open>> {
        let m = std::fs::symlink_metadata(&self.root).ok()?;
        let time = |secs: i64, nanos: i64| Timestamp::new(secs, nanos as i32).ok();
        let mut mode = (m.mode() & 0o777) | GO_MODE_DIR;
        for (bit, go) in [
            (0o4000, GO_MODE_SETUID),
            (0o2000, GO_MODE_SETGID),
            (0o1000, GO_MODE_STICKY),
        ] {
            if m.mode() & bit != 0 {
                mode |= go;
            }
        }
        let meta = Metadata {
            mode: Some(mode),
            mtime: time(m.mtime(), m.mtime_nsec()),
            atime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            uid: Some(m.uid()),
            gid: Some(m.gid()),
            inode: m.ino(),
            device_id: m.dev(),
            ..Default::default()
        };
        Some(ReadSourceEntry {
            path: self.root.clone(),
            node: Node::new_node(&self.name, NodeType::Dir, meta),
            open: None,
        })
    }
}

impl ReadSource for DirSource {
    type Open = <LocalSource as ReadSource>::Open;
    type Iter = std::iter::Chain<
        std::option::IntoIter<RusticResult<ReadSourceEntry<Self::Open>>>,
        <LocalSource as ReadSource>::Iter,
    >;

    fn size(&self) -> RusticResult<Option<u64>> {
        self.walk.size()
    }

    fn entries(&self) -> Self::Iter {
        self.root_entry()
            .map(Ok)
            .into_iter()
            .chain(self.walk.entries())
    }
}

/// Gives the restored directory `path` the owner, mode and modification time its snapshot
/// recorded for it (see the module's comment). A root recorded without them (a snapshot
/// taken by another tool) is left as it is.
pub(crate) fn apply_root(path: &Path, node: &Node) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = &node.meta;
    if meta.mtime.is_none() {
        return Ok(());
    }
    if let (Some(uid), Some(gid)) = (meta.uid, meta.gid) {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    if let Some(go) = meta.mode {
        let mut mode = go & 0o777;
        for (bit, go_bit) in [
            (0o4000, GO_MODE_SETUID),
            (0o2000, GO_MODE_SETGID),
            (0o1000, GO_MODE_STICKY),
        ] {
            if go & go_bit != 0 {
                mode |= bit;
            }
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    if let Some(mtime) = meta.mtime {
        let when = std::time::SystemTime::from(mtime);
        std::fs::File::open(path)?.set_modified(when)?;
    }
    Ok(())
}

/// Names of berth's working directories inside a restore's target.
const STAGING: &str = ".berth-restore-";
const REPLACED: &str = ".berth-replaced-";

#[derive(Debug)]
pub(crate) enum RestoreDirError {
    Repository(Box<RusticError>),
    Io(std::io::Error),
}

impl From<std::io::Error> for RestoreDirError {
    fn from(e: std::io::Error) -> Self {
        RestoreDirError::Io(e)
    }
}

/// Makes the directory `target` exactly the tree `node`: files the tree does not hold are
/// removed, and the root gets the tree's owner and mode.
///
/// The tree is first written into an empty directory inside the target (so on the same
/// file system, whatever is mounted where), and only when all of it is there does it take
/// the place of the target's old entries, by renames. A restore that fails (a damaged pack,
/// a full disk) therefore leaves the target as it was.
pub(crate) fn restore_dir<S: IndexedFull>(
    repo: &Repository<S>,
    node: &Node,
    target: &Path,
) -> Result<(), RestoreDirError> {
    let pid = std::process::id();
    let staging = target.join(format!("{STAGING}{pid}"));
    let replaced = target.join(format!("{REPLACED}{pid}"));
    // A staging directory left by a killed restore holds nothing of the user's.
    for entry in std::fs::read_dir(target)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(STAGING) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    std::fs::create_dir(&staging)?;

    // Phase 1: the whole tree into the staging directory.
    let written = quietly_catching(|| -> RusticResult<()> {
        let mut options = RestoreOptions::default();
        // Ids, not names: the names inside a container are not the host's.
        options.numeric_id = true;
        let dest = LocalDestination::new(&format!("{}/", staging.display()), true, false)?;
        let ls = repo.ls(node, &LsOptions::default())?;
        let plan = repo.prepare_restore(&options, ls.clone(), &dest, false)?;
        repo.restore(plan, &options, ls, &dest)
    });
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(RestoreDirError::Repository(e));
        }
        Err(stopped) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(RestoreDirError::Io(std::io::Error::other(stopped)));
        }
    }

    // Phase 2: the old entries aside, the new ones in, by renames on one file system.
    std::fs::create_dir(&replaced)?;
    for entry in std::fs::read_dir(target)? {
        let entry = entry?;
        let path = entry.path();
        if path != staging && path != replaced {
            std::fs::rename(&path, replaced.join(entry.file_name()))?;
        }
    }
    for entry in std::fs::read_dir(&staging)? {
        let entry = entry?;
        std::fs::rename(entry.path(), target.join(entry.file_name()))?;
    }

    // Phase 3: the old entries go, and the root takes the snapshot's metadata.
    std::fs::remove_dir(&staging)?;
    std::fs::remove_dir_all(&replaced)?;
    apply_root(target, node)?;
    Ok(())
}

/// Runs `f`, turning a panic into an error message.
///
/// rustic_core 0.13's restore unwraps the results of reading and writing blobs in its worker
/// threads (restore.rs, `restore_contents`), so a blob that fails authentication or a write to
/// a full disk panics instead of returning an error. berth authenticates every blob of the
/// snapshot before it restores (`verify::read_back`), which leaves the disk and the
/// unforeseen: those must still end as an error with the target untouched, not as a crash
/// with services stopped. The panic hook is silenced for the call so that the user sees
/// berth's message, not a backtrace; berth runs nothing else on other threads meanwhile.
fn quietly_catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        let why = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown cause".into());
        format!("the restore stopped: {why}")
    })
}
