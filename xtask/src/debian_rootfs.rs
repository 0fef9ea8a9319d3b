//! Test images built from a Debian root filesystem, without a registry.
//!
//! debootstrap makes a minimal bookworm root filesystem from the machine's own Debian mirror,
//! the rootfs is imported as a base image, and one tiny Dockerfile per image (piped to
//! `docker build -`) adds the entrypoint settings and the content-key label. One rootfs can
//! carry several images (`database_images.rs`: MariaDB and Redis share one). The rootfs
//! tarball is kept under `.cache/` so a fresh Docker engine gets the images back without
//! running debootstrap again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd;
use crate::{Outcome, CONTENT_KEY_LABEL, XTASK_VERSION};

/// The Debian release every rootfs is made from.
pub const SUITE: &str = "bookworm";

/// A file written into the rootfs before `customise` runs, executable (an entrypoint script).
pub struct Asset {
    /// The path inside the rootfs, without the leading `/`.
    pub path: &'static str,
    pub text: &'static str,
}

/// One image built `FROM` the rootfs's base image.
pub struct Image {
    pub name: &'static str,
    pub dockerfile: &'static str,
}

/// One debootstrap run, imported as one base image, and the images built from it.
///
/// The content keys cover the suite, the debootstrap arguments, the assets' text and the
/// Dockerfiles; a change to `customise` or to the asset paths needs an `XTASK_VERSION` bump.
pub struct Rootfs {
    /// Names the tarball and the work directory under `.cache/` (e.g. `postgres-15`).
    pub cache_name: &'static str,
    pub base_image: &'static str,
    pub debootstrap_args: &'static [&'static str],
    pub assets: &'static [Asset],
    /// The image's own changes to the fresh rootfs, after the assets are written; the apt
    /// caches and lists are removed afterwards for every rootfs.
    pub customise: fn(&Path) -> Result<()>,
    pub images: &'static [Image],
}

/// The content key of the rootfs (names the tarball, labels the base image) and of each image.
struct Keys {
    rootfs: String,
    images: Vec<String>,
}

impl Rootfs {
    /// Builds the images whose content key changed (all of them with `force`), reusing the
    /// base image or the cached tarball when they are current. `done` is told about each
    /// image as it is finished, with the time since the previous one (the first image built
    /// includes the shared debootstrap and import).
    pub fn ensure(
        &self,
        root: &Path,
        force: bool,
        mut done: impl FnMut(&str, Outcome, Duration),
    ) -> Result<()> {
        let mut started = Instant::now();
        let keys = self.keys();
        let mut stale = Vec::new();
        for (image, key) in self.images.iter().zip(&keys.images) {
            if !force && cmd::image_content_key(image.name)?.as_deref() == Some(key.as_str()) {
                done(image.name, Outcome::Cached, started.elapsed());
                started = Instant::now();
            } else {
                stale.push((image, key));
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        self.ensure_base(root, &keys.rootfs, force)?;
        for (image, key) in stale {
            build(image, key)?;
            done(image.name, Outcome::Built, started.elapsed());
            started = Instant::now();
        }
        Ok(())
    }

    /// What building the images needs that this machine lacks, as one line saying what to
    /// install, or None. Checked before anything is compiled; current images, a current base
    /// image or a rootfs tarball already in `.cache/` need neither debootstrap nor root.
    pub fn missing_prerequisites(&self, root: &Path, force: bool) -> Result<Option<String>> {
        let keys = self.keys();
        if !force {
            let mut current = true;
            for (image, key) in self.images.iter().zip(&keys.images) {
                current &= cmd::image_content_key(image.name)?.as_deref() == Some(key.as_str());
            }
            if current
                || self.tarball(root, &keys.rootfs).exists()
                || cmd::image_content_key(self.base_image)?.as_deref() == Some(&keys.rootfs)
            {
                return Ok(None);
            }
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
        Ok(advice(&self.subject(), debootstrap, root_user))
    }

    /// "berth/postgres:15 is", "berth/mariadb:10.11 and berth/redis:7 are": for the advice.
    fn subject(&self) -> String {
        let names: Vec<&str> = self.images.iter().map(|i| i.name).collect();
        match names.as_slice() {
            [one] => format!("{one} is"),
            [rest @ .., last] => format!("{} and {last} are", rest.join(", ")),
            [] => format!("{} is", self.base_image),
        }
    }

    /// Everything that decides the content, except the mirror it was fetched from. An
    /// image's key continues the rootfs's hash with its Dockerfile, so a rootfs with one
    /// image keys it exactly as hashing all of it in one go would.
    fn keys(&self) -> Keys {
        let mut hasher = blake3::Hasher::new();
        hasher.update(XTASK_VERSION.as_bytes());
        hasher.update(SUITE.as_bytes());
        for arg in self.debootstrap_args {
            hasher.update(arg.as_bytes());
        }
        for asset in self.assets {
            hasher.update(asset.text.as_bytes());
        }
        let images = self
            .images
            .iter()
            .map(|image| {
                let mut hasher = hasher.clone();
                hasher.update(image.dockerfile.as_bytes());
                hasher.finalize().to_hex().to_string()
            })
            .collect();
        Keys {
            rootfs: hasher.finalize().to_hex().to_string(),
            images,
        }
    }

    fn tarball(&self, root: &Path, rootfs_key: &str) -> PathBuf {
        root.join(".cache").join(format!(
            "{}-rootfs-{}.tar",
            self.cache_name,
            &rootfs_key[..16]
        ))
    }

    /// Makes sure the base image holds the current rootfs: kept when its label says so,
    /// imported from the cached tarball otherwise, debootstrapped when there is none.
    fn ensure_base(&self, root: &Path, rootfs_key: &str, force: bool) -> Result<()> {
        if !force && cmd::image_content_key(self.base_image)?.as_deref() == Some(rootfs_key) {
            return Ok(());
        }
        let old_base_id = cmd::image_id(self.base_image);
        let cache_dir = root.join(".cache");
        fs::create_dir_all(&cache_dir)?;
        let tarball = self.tarball(root, rootfs_key);
        if force || !tarball.exists() {
            self.make_tarball(&cache_dir, &tarball)?;
        } else {
            println!("{}: reusing {}", self.base_image, tarball.display());
        }
        crate::progress::during(
            &format!("{}: importing {}", self.base_image, tarball.display()),
            || {
                cmd::output(
                    Command::new("docker")
                        .arg("import")
                        .arg("--change")
                        .arg(format!("LABEL {CONTENT_KEY_LABEL}={rootfs_key}"))
                        .arg(&tarball)
                        .arg(self.base_image),
                )
            },
        )?;
        cmd::remove_replaced(old_base_id, self.base_image);
        Ok(())
    }

    fn make_tarball(&self, cache_dir: &Path, tarball: &Path) -> Result<()> {
        let mirror = debian_mirror()?;
        // A fresh directory per run: two concurrent runs (e.g. parallel test processes) then
        // duplicate work instead of corrupting each other, and the final rename is atomic.
        let work = tempfile::Builder::new()
            .prefix(&format!("{}-rootfs-", self.cache_name))
            .tempdir_in(cache_dir)
            .context("cannot create a work directory under .cache")?;
        let rootfs = work.path().join("rootfs");
        crate::progress::during(
            &format!(
                "{}: running debootstrap from {mirror} (a few minutes)",
                self.base_image
            ),
            || {
                cmd::output(
                    Command::new("debootstrap")
                        .args(self.debootstrap_args)
                        .arg(SUITE)
                        .arg(&rootfs)
                        .arg(&mirror),
                )
                .context(
                    "debootstrap needs root and the `debootstrap` package (apt-get install debootstrap)",
                )
            },
        )?;
        for asset in self.assets {
            let path = rootfs.join(asset.path);
            fs::create_dir_all(path.parent().expect("an asset path names a file"))?;
            fs::write(&path, asset.text)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
        (self.customise)(&rootfs)?;
        remove_apt_caches(&rootfs)?;
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
        self.remove_older_tarballs(cache_dir, tarball);
        // The TempDir guard removes the rootfs, also when any step above failed.
        Ok(())
    }

    /// Removes this rootfs's tarballs of earlier content keys (hundreds of MB each). Failure
    /// is fine: they are only disk space.
    fn remove_older_tarballs(&self, cache_dir: &Path, current: &Path) {
        let prefix = format!("{}-rootfs-", self.cache_name);
        let Ok(entries) = fs::read_dir(cache_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tar") && entry.path() != current {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// `docker build -` with the Dockerfile on stdin (no context is needed: everything is in the
/// base image) and the content-key label.
fn build(image: &Image, key: &str) -> Result<()> {
    let old_id = cmd::image_id(image.name);
    let mut child = Command::new("docker")
        .args(["build", "--quiet", "--label"])
        .arg(format!("{CONTENT_KEY_LABEL}={key}"))
        .args(["--tag", image.name, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start docker build")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(image.dockerfile.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "docker build of {} failed: {}",
            image.name,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    cmd::remove_replaced(old_id, image.name);
    Ok(())
}

/// Downloaded .debs and apt lists are not needed in an image; the empty directories apt
/// expects stay.
fn remove_apt_caches(rootfs: &Path) -> Result<()> {
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let path = rootfs.join(dir);
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(path.join("partial"))?;
    }
    Ok(())
}

/// The numeric uid and gid of `user` in the rootfs's etc/passwd, for chown from outside it
/// (the build machine's users are not the rootfs's).
pub fn user_ids(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    let passwd = rootfs.join("etc/passwd");
    let text =
        fs::read_to_string(&passwd).with_context(|| format!("cannot read {}", passwd.display()))?;
    ids_from_passwd(&text, user).with_context(|| format!("no user {user} in {}", passwd.display()))
}

fn ids_from_passwd(text: &str, user: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// The one line that says what to install or how to run, given what the machine has;
/// `subject` names the images ("berth/postgres:15 is").
fn advice(subject: &str, debootstrap: bool, root_user: bool) -> Option<String> {
    match (debootstrap, root_user) {
        (true, true) => None,
        (false, true) => Some(format!(
            "{subject} built from a debootstrap rootfs: install it with `apt-get install -y debootstrap` and run this again"
        )),
        (true, false) => Some(format!(
            "{subject} built from a debootstrap rootfs, which needs root: run this again as root (sudo -E cargo xtask …)"
        )),
        (false, false) => Some(format!(
            "{subject} built from a debootstrap rootfs as root: run `sudo apt-get install -y debootstrap`, then this again as root"
        )),
    }
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
        let subject = "berth/postgres:15 is";
        assert_eq!(advice(subject, true, true), None);
        let no_tool = advice(subject, false, true).unwrap();
        assert!(
            no_tool.contains("apt-get install -y debootstrap"),
            "{no_tool}"
        );
        let no_root = advice(subject, true, false).unwrap();
        assert!(no_root.contains("as root"), "{no_root}");
        let neither = advice(subject, false, false).unwrap();
        assert!(
            neither.contains("debootstrap") && neither.contains("root"),
            "{neither}"
        );
        for line in [no_tool, no_root, neither] {
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(line.starts_with(subject), "names the image: {line}");
        }
    }

    fn rootfs(images: &'static [Image]) -> Rootfs {
        Rootfs {
            cache_name: "test",
            base_image: "berth/test-rootfs:bookworm",
            debootstrap_args: &["--variant=minbase"],
            assets: &[],
            customise: |_| Ok(()),
            images,
        }
    }

    /// Two images of one rootfs, for the tests below.
    const TWO: &[Image] = &[
        Image {
            name: "berth/a:1",
            dockerfile: "FROM x\n",
        },
        Image {
            name: "berth/b:2",
            dockerfile: "FROM x\nEXPOSE 1\n",
        },
    ];

    #[test]
    fn the_advice_names_every_image_of_the_rootfs() {
        const ONE: &[Image] = &[Image {
            name: "berth/a:1",
            dockerfile: "FROM x\n",
        }];
        assert_eq!(rootfs(ONE).subject(), "berth/a:1 is");
        assert_eq!(rootfs(TWO).subject(), "berth/a:1 and berth/b:2 are");
    }

    /// A Dockerfile's change rebuilds its image but keeps the rootfs key (no new
    /// debootstrap); images of one rootfs have keys of their own.
    #[test]
    fn image_keys_extend_the_rootfs_key() {
        const CHANGED: &[Image] = &[
            Image {
                name: "berth/a:1",
                dockerfile: "FROM x\n",
            },
            Image {
                name: "berth/b:2",
                dockerfile: "FROM x\nEXPOSE 2\n",
            },
        ];
        let (two, changed) = (rootfs(TWO).keys(), rootfs(CHANGED).keys());
        assert_eq!(two.rootfs, changed.rootfs);
        assert_eq!(two.images[0], changed.images[0]);
        assert_ne!(two.images[1], changed.images[1]);
        assert_ne!(two.images[0], two.images[1]);
        assert_ne!(two.images[0], two.rootfs);
    }

    #[test]
    fn passwd_gives_numeric_ids() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    mysql:x:100:101:MariaDB Server,,,:/nonexistent:/bin/false\n";
        assert_eq!(ids_from_passwd(text, "mysql"), Some((100, 101)));
        assert_eq!(ids_from_passwd(text, "root"), Some((0, 0)));
        assert_eq!(ids_from_passwd(text, "mysq"), None);
        assert_eq!(ids_from_passwd(text, "redis"), None);
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
