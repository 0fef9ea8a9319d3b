//! `berth/postgres:15`: Debian bookworm's PostgreSQL 15 in an image built without a registry.
//!
//! debootstrap makes a minimal root filesystem from the machine's own Debian mirror, the
//! rootfs is imported as a base image, and a tiny Dockerfile adds the entrypoint settings and
//! the content-key label. The rootfs tarball is kept under `.cache/` so a fresh Docker
//! engine gets the image back without running debootstrap again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::cmd;
use crate::{Outcome, CONTENT_KEY_LABEL, XTASK_VERSION};

const IMAGE: &str = "berth/postgres:15";
const BASE_IMAGE: &str = "berth/postgres-rootfs:15";
const SUITE: &str = "bookworm";
const DEBOOTSTRAP_ARGS: &[&str] = &["--variant=minbase", "--include=postgresql-15"];
const ENTRYPOINT_PATH: &str = "usr/local/bin/berth-postgres-entrypoint";
const ENTRYPOINT: &str = include_str!("../assets/berth-postgres-entrypoint");

/// Postgres treats SIGTERM as "smart" shutdown, which waits for every client to leave;
/// SIGINT is the "fast" shutdown that still checkpoints cleanly, as the official image does.
const DOCKERFILE: &str = "FROM berth/postgres-rootfs:15
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT [\"/usr/local/bin/berth-postgres-entrypoint\"]
";

pub fn ensure(root: &Path, force: bool) -> Result<Outcome> {
    let key = content_key();
    if !force && cmd::image_content_key(IMAGE)?.as_deref() == Some(key.as_str()) {
        return Ok(Outcome::Cached);
    }

    let old_id = cmd::image_id(IMAGE);
    let old_base_id = cmd::image_id(BASE_IMAGE);
    let cache_dir = root.join(".cache");
    fs::create_dir_all(&cache_dir)?;
    let tarball = cache_dir.join(format!("postgres-15-rootfs-{}.tar", &key[..16]));
    if force || !tarball.exists() {
        make_rootfs_tarball(&cache_dir, &tarball)?;
    } else {
        println!("berth/postgres:15: reusing {}", tarball.display());
    }

    cmd::output(
        Command::new("docker")
            .args(["import"])
            .arg(&tarball)
            .arg(BASE_IMAGE),
    )?;
    let mut build = Command::new("docker");
    build
        .args(["build", "--quiet", "--label"])
        .arg(format!("{CONTENT_KEY_LABEL}={key}"))
        .args(["--tag", IMAGE, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = build.spawn().context("cannot start docker build")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(DOCKERFILE.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "docker build of {IMAGE} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    cmd::remove_replaced(old_id, IMAGE);
    cmd::remove_replaced(old_base_id, BASE_IMAGE);
    Ok(Outcome::Built)
}

/// What building the image needs that this machine lacks, as one line saying what to
/// install, or None. Checked before anything is compiled; an image that is current, or a
/// rootfs tarball already in `.cache/`, needs neither debootstrap nor root.
pub fn missing_prerequisites(root: &Path, force: bool) -> Result<Option<String>> {
    let key = content_key();
    if !force && cmd::image_content_key(IMAGE)?.as_deref() == Some(key.as_str()) {
        return Ok(None);
    }
    let tarball = root
        .join(".cache")
        .join(format!("postgres-15-rootfs-{}.tar", &key[..16]));
    if !force && tarball.exists() {
        return Ok(None);
    }
    let debootstrap = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ))
        .any(|dir| dir.join("debootstrap").is_file());
    let root_user = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    };
    Ok(advice(debootstrap, root_user))
}

/// The one line that says what to install or how to run, given what the machine has.
fn advice(debootstrap: bool, root_user: bool) -> Option<String> {
    match (debootstrap, root_user) {
        (true, true) => None,
        (false, true) => Some(format!(
            "{IMAGE} is built from a debootstrap rootfs: install it with `apt-get install -y debootstrap` and run this again"
        )),
        (true, false) => Some(format!(
            "{IMAGE} is built from a debootstrap rootfs, which needs root: run this again as root (sudo -E cargo xtask …)"
        )),
        (false, false) => Some(format!(
            "{IMAGE} is built from a debootstrap rootfs as root: run `sudo apt-get install -y debootstrap`, then this again as root"
        )),
    }
}

/// Everything that decides the image's content, except the mirror it was fetched from.
fn content_key() -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(XTASK_VERSION.as_bytes());
    hasher.update(SUITE.as_bytes());
    for arg in DEBOOTSTRAP_ARGS {
        hasher.update(arg.as_bytes());
    }
    hasher.update(ENTRYPOINT.as_bytes());
    hasher.update(DOCKERFILE.as_bytes());
    hasher.finalize().to_hex().to_string()
}

fn make_rootfs_tarball(cache_dir: &Path, tarball: &Path) -> Result<()> {
    let mirror = debian_mirror()?;
    // A fresh directory per run: two concurrent runs (e.g. parallel test processes) then
    // duplicate work instead of corrupting each other, and the final rename is atomic.
    let work = tempfile::Builder::new()
        .prefix("postgres-rootfs-")
        .tempdir_in(cache_dir)
        .context("cannot create a work directory under .cache")?;
    let rootfs = work.path().join("rootfs");
    crate::progress::during(
        &format!("berth/postgres:15: running debootstrap from {mirror} (a few minutes)"),
        || {
            cmd::output(
                Command::new("debootstrap")
                    .args(DEBOOTSTRAP_ARGS)
                    .arg(SUITE)
                    .arg(&rootfs)
                    .arg(&mirror),
            )
            .context(
                "debootstrap needs root and the `debootstrap` package (apt-get install debootstrap)",
            )
        },
    )?;
    customise_rootfs(&rootfs)?;
    let partial = work.path().join("rootfs.tar");
    cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["--numeric-owner", "-cf"])
            .arg(&partial)
            .arg("."),
    )?;
    // Renaming last means a tarball that exists is always complete. Not `berth_base::atomic`:
    // `tar` writes the file itself, and a build cache lost in a power cut is just rebuilt, so
    // the fsyncs would buy nothing.
    fs::rename(&partial, tarball)?;
    // The TempDir guard removes the rootfs, also when any step above failed.
    Ok(())
}

/// Adds the entrypoint and removes what the image does not need: the cluster the Debian
/// package creates (the entrypoint makes its own in $PGDATA), downloaded .debs and apt lists.
fn customise_rootfs(rootfs: &Path) -> Result<()> {
    let entrypoint = rootfs.join(ENTRYPOINT_PATH);
    fs::create_dir_all(entrypoint.parent().unwrap())?;
    fs::write(&entrypoint, ENTRYPOINT)?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&entrypoint, fs::Permissions::from_mode(0o755))?;

    for dir in [
        "var/lib/postgresql/15",
        "etc/postgresql/15",
        "var/cache/apt/archives",
        "var/lib/apt/lists",
    ] {
        let path = rootfs.join(dir);
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
    }
    fs::create_dir_all(rootfs.join("var/cache/apt/archives/partial"))?;
    fs::create_dir_all(rootfs.join("var/lib/apt/lists/partial"))?;
    Ok(())
}

/// The Debian mirror this machine's apt uses, read at run time so that no mirror's host is
/// written into the repository.
fn debian_mirror() -> Result<String> {
    let deb822 = PathBuf::from("/etc/apt/sources.list.d/debian.sources");
    if let Ok(text) = fs::read_to_string(&deb822) {
        if let Some(uri) = mirror_from_deb822(&text, SUITE) {
            return Ok(uri);
        }
    }
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        if let Some(uri) = mirror_from_one_line(&text, SUITE) {
            return Ok(uri);
        }
    }
    bail!(
        "no Debian mirror for {SUITE} found in {} or /etc/apt/sources.list; \
         configure apt with a {SUITE} source first",
        deb822.display()
    )
}

/// The first URI of the deb822 stanza whose Suites include `suite`.
fn mirror_from_deb822(text: &str, suite: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let suites = field("Suites").unwrap_or_default();
        let types = field("Types").unwrap_or_else(|| "deb".to_string());
        if types.split_whitespace().any(|t| t == "deb")
            && suites.split_whitespace().any(|s| s == suite)
        {
            if let Some(uris) = field("URIs") {
                return uris.split_whitespace().next().map(str::to_string);
            }
        }
    }
    None
}

/// The URI of the first `deb URI SUITE ...` line of a classic sources.list.
fn mirror_from_one_line(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace().filter(|w| !w.starts_with('['));
        (words.next()? == "deb").then_some(())?;
        let uri = words.next()?;
        (words.next()? == suite).then(|| uri.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #14 item 12: a missing tool or missing root is said in one line that names what
    /// to do, and a machine with both needs no advice.
    #[test]
    fn missing_tools_are_named_in_one_line() {
        assert_eq!(advice(true, true), None);
        let no_tool = advice(false, true).unwrap();
        assert!(
            no_tool.contains("apt-get install -y debootstrap"),
            "{no_tool}"
        );
        let no_root = advice(true, false).unwrap();
        assert!(no_root.contains("as root"), "{no_root}");
        let neither = advice(false, false).unwrap();
        assert!(
            neither.contains("debootstrap") && neither.contains("root"),
            "{neither}"
        );
        for line in [no_tool, no_root, neither] {
            assert!(!line.contains('\n'), "one line: {line}");
        }
    }

    #[test]
    fn deb822_picks_the_stanza_with_the_suite() {
        let text =
            "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n\
                    Components: main\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\n\
                    Suites: bookworm-security\n";
        assert_eq!(
            mirror_from_deb822(text, "bookworm").as_deref(),
            Some("http://mirror.invalid/debian")
        );
        assert_eq!(
            mirror_from_deb822(text, "bookworm-security").as_deref(),
            Some("http://mirror.invalid/debian-security")
        );
        assert_eq!(mirror_from_deb822(text, "trixie"), None);
    }

    #[test]
    fn sources_list_lines_are_understood() {
        let text = "# comment\ndeb-src http://a.invalid/debian bookworm main\n\
                    deb [arch=amd64] http://b.invalid/debian bookworm main\n";
        assert_eq!(
            mirror_from_one_line(text, "bookworm").as_deref(),
            Some("http://b.invalid/debian")
        );
    }
}
