//! `cargo xtask bench backup [MIB]`: `berth backup create` and `berth backup restore` against
//! what users do without berth, on the same volume in the same run (BENCHMARKS.md, issue #16):
//! GNU tar with gzip, tar piped to `zstd -T0`, and Debian's restic 0.14.
//!
//! The data is a testapp service's named volume, filled on the host with MIB of incompressible
//! data in 16 large files plus 10,000 small files in 100 directories. Each round backs it up
//! with every tool, restores each backup into an empty target, changes 1% of the data, and
//! backs it up again; the rounds go tool after tool, so that a slow minute of the machine falls
//! on all of them. The page cache is dropped before every timed command, so every tool reads
//! from the disk, and every time includes a `sync` afterwards, so that a tool whose writes
//! are still in the page cache when it exits is not counted as faster than one that waited.

use std::cell::RefCell;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

mod database;

const MIB: u64 = 1024 * 1024;
/// The large files the incompressible data is split over.
const LARGE_FILES: u64 = 16;
/// The small files, spread evenly over the directories, each 1 to 4 KiB.
const SMALL_FILES: usize = 10_000;
const SMALL_DIRS: usize = 100;
/// Data up to this size is measured over three rounds (the median is printed); above it, one
/// round already takes minutes and the disk, not chance, decides the figures.
const SMALL_DATA_MIB: u64 = 256;

/// What one tool measured, one entry per round.
#[derive(Default)]
struct Figures {
    first: Vec<Duration>,
    restore: Vec<Duration>,
    /// The repository's or the archive's size after the first backup.
    size: Vec<u64>,
    /// The backup after 1% of the data changed.
    second: Vec<Duration>,
    /// What the second backup added: the repository's growth, or a new archive's size.
    added: Vec<u64>,
}

/// One round of one tool: first backup, restore, size, second backup, added.
type Row = (Duration, Duration, u64, Duration, u64);

impl Figures {
    /// Prints one round's row after `label` and keeps it.
    fn record(&mut self, label: &str, row: Row) {
        println!(
            "{label} first {:>7.2} s, restore {:>7.2} s, size {:>10}, second {:>7.2} s, \
             added {:>10}",
            secs(row.0),
            secs(row.1),
            size(row.2),
            secs(row.3),
            size(row.4)
        );
        self.first.push(row.0);
        self.restore.push(row.1);
        self.size.push(row.2);
        self.second.push(row.3);
        self.added.push(row.4);
    }
}

/// What berth measured besides the columns every tool has.
#[derive(Default)]
struct BerthExtra {
    /// `restore --force` into the service's own volume, which takes a safety snapshot first.
    in_place: Vec<Duration>,
    /// The `added` that `backup list` reports for the second snapshot.
    reported_added: Vec<u64>,
    /// restic with the service stopped for its backup and started again healthy after, as
    /// berth does it: the peer that pays for the same consistency.
    restic_stopped_first: Vec<Duration>,
    restic_stopped_second: Vec<Duration>,
}

pub fn run(root: &Path, mib: u64) -> Result<()> {
    if mib == 0 {
        bail!("the data size is in MiB and must be at least 1");
    }
    // Ctrl-C becomes an error at the next step, so that the guards below remove the project,
    // its volumes and the gigabytes in the temp dir instead of the signal ending the process.
    crate::interrupt::watch()?;
    // The testapp and Postgres images are needed (not the static berth).
    crate::report("berth/testapp:latest", || {
        crate::testapp_image::ensure(root, false)
    })
    .and_then(|_| crate::report_rootfs(&crate::postgres_image::ROOTFS, root, false))
    .context(
        "the bench needs berth/testapp:latest and berth/postgres:15: run `cargo xtask test-images` and see what fails",
    )?;
    ensure_zstd()?;
    let restic_version = version(Command::new("restic").arg("version"))
        .context("bench backup compares with restic 0.14: apt-get install restic")?;
    let berth = crate::bench::release_berth(root)?;
    let berth_version = version(Command::new(&berth).arg("--version"))?;
    let tar_version = version(Command::new("tar").arg("--version"))?;
    let gzip_version = version(Command::new("gzip").arg("--version"))?;
    let zstd_version = version(Command::new("zstd").arg("--version"))?;

    // Declared first so that it is dropped last: the stack goes down before its files go.
    let dir = tempfile::Builder::new().prefix("bench-backup-").tempdir()?;
    let rounds = if mib <= SMALL_DATA_MIB { 3 } else { 1 };
    let machine = machine(dir.path())?;
    let stack = Stack::up(&berth, dir.path(), std::process::id())?;
    crate::interrupt::check()?;

    let started = Instant::now();
    let data = fill(&stack.mountpoint, mib)?;
    println!(
        "data: {} in {} files on the volume {} ({}), written in {:.1} s",
        size(data.bytes),
        data.files,
        stack.volume,
        stack.mountpoint.display(),
        started.elapsed().as_secs_f64()
    );

    let mut bench = Bench {
        stack: &stack,
        out: dir.path().join("out"),
        restic_password: dir.path().join("restic-password"),
        cache_dropped: true,
    };
    fs::create_dir_all(&bench.out)?;
    fs::write(&bench.restic_password, "bench-backup\n")?;
    let mut tools: [Figures; 4] = Default::default();
    let mut extra = BerthExtra::default();
    for round in 1..=rounds {
        bench.round(round, &mut tools, &mut extra)?;
    }

    // The pipe in zstd's name is escaped: unescaped, it would split the Markdown cell.
    let names = [
        format!("berth {}", number(&berth_version)),
        format!(
            "tar czf (GNU tar {}, gzip {})",
            number(&tar_version),
            number(&gzip_version)
        ),
        format!("tar \\| zstd -T0 (zstd {})", number(&zstd_version)),
        format!("restic {}", number(&restic_version)),
    ];
    println!();
    println!("## Backup and restore, {} of data", size(data.bytes));
    println!();
    println!("{machine}");
    println!(
        "Data: {} incompressible (xorshift) in {LARGE_FILES} files, plus {SMALL_FILES} files \
         of 1-4 KiB in {SMALL_DIRS} directories, in a named volume of a running testapp service. \
         {} of {rounds}.",
        size(LARGE_FILES * (mib * MIB / LARGE_FILES)),
        if rounds == 1 {
            "One round".to_string()
        } else {
            "Medians".to_string()
        }
    );
    println!();
    print!("{}", table(&names, &tools));
    println!();
    let [b, tar, _, restic] = &tools;
    let ratio = |x: &[Duration], y: &[Duration]| secs(median(x)) / secs(median(y));
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let tar_vs = ratio(&tar.first, &b.first);
    println!(
        "- First backup, berth vs tar czf: tar czf takes {tar_vs:.1}x berth's time \
         (target: at least 3x; {}).",
        met(tar_vs >= 3.0)
    );
    let restic_vs = ratio(&b.first, &restic.first);
    println!(
        "- First backup, berth vs restic: berth takes {restic_vs:.2}x restic's time \
         (target: no slower, at most 1.00x; {}); restore {:.2}x, second backup {:.2}x.",
        met(restic_vs <= 1.0),
        ratio(&b.restore, &restic.restore),
        ratio(&b.second, &restic.second)
    );
    let stopped_vs = ratio(&b.first, &extra.restic_stopped_first);
    println!(
        "- First backup, berth vs restic run as berth runs (the service stopped for the \
         backup and started again healthy after): berth takes {stopped_vs:.2}x its time; \
         second backup {:.2}x.",
        ratio(&b.second, &extra.restic_stopped_second)
    );
    let second = 100.0 * ratio(&b.second, &b.first);
    println!(
        "- berth's backup after 1% changed takes {second:.1}% of its first (target: under 15%; {}); \
         restic's takes {:.1}% of its first, and {:.1}% with the service stopped and started.",
        met(second < 15.0),
        100.0 * ratio(&restic.second, &restic.first),
        100.0 * ratio(&extra.restic_stopped_second, &extra.restic_stopped_first)
    );
    println!();
    println!("How it was measured (`cargo xtask bench backup {mib}`):");
    println!(
        "- {} before every timed command; every time includes a `sync` after the command, so \
         that writes still in the page cache count.",
        if bench.cache_dropped {
            "The page cache was dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`)"
        } else {
            "The page cache could NOT be dropped (not root?), so reads may have come from memory"
        }
    );
    println!(
        "- berth: `berth backup create`, which stops the service, snapshots the volume and \
         starts it again (all in its time); the others read the volume while the service runs. \
         Restore is `berth backup restore ID --into VOLUME` into a fresh empty volume, as the \
         others restore into an empty directory; berth reads back and authenticates every byte \
         of the snapshot before it writes. Restoring in place instead (`--force`, which takes a \
         safety snapshot of the volume first): {:.2} s.",
        secs(median(&extra.in_place))
    );
    println!(
        "- tar czf is the usual `docker run --rm -v VOL:/data -v OUT:/backup busybox tar czf \
         /backup/x.tar.gz -C /data .` without the container wrapper, which only adds a \
         container start: GNU tar on the host on the volume's mountpoint, `tar -xzf` into an \
         empty directory to restore. tar | zstd is `tar -cf - -C VOL . | zstd -T0` and \
         `zstd -dc | tar -xf -`."
    );
    println!(
        "- restic: `restic init`, then `restic --no-cache backup MOUNTPOINT` and `restic \
         --no-cache restore latest --target DIR`, with a password file (berth keeps no cache \
         either)."
    );
    println!(
        "- The second backup follows overwriting 1% of the large files' bytes in 1 MiB chunks \
         at random places and rewriting 1% of the small files. Its bytes added are the \
         repository's growth; berth's own `backup list` says {} added. tar and zstd have no \
         incremental mode here, so their second backup is a new full archive.",
        size(median_u64(&extra.reported_added))
    );
    println!();
    database::run(&berth, dir.path(), &mut bench, rounds)?;
    drop(stack);
    Ok(())
}

/// The testapp project whose volume is backed up, with berth's state, password file and
/// repository in the temp dir. Dropping it runs `berth down -v` and removes the volumes the
/// restores created.
struct Stack {
    berth: PathBuf,
    dir: PathBuf,
    state: PathBuf,
    password: PathBuf,
    name: String,
    volume: String,
    mountpoint: PathBuf,
    /// Volumes made for restores and not yet removed.
    scratch: RefCell<Vec<String>>,
}

impl Stack {
    fn up(berth: &Path, base: &Path, suffix: u32) -> Result<Stack> {
        Stack::up_with(
            berth,
            base,
            &format!("berth-bench-backup-{suffix}"),
            r#"services:
  app:
    image: berth/testapp:latest
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 3
    volumes: ["data:/data"]
volumes:
  data: {}
"#,
            "data",
        )
    }

    /// The project `name` of `compose` in a directory of its own under `base`, up and
    /// healthy; `volume` is the key of the volume whose mountpoint it records.
    fn up_with(
        berth: &Path,
        base: &Path,
        name: &str,
        compose: &str,
        volume: &str,
    ) -> Result<Stack> {
        let name = name.to_string();
        let dir = base.join(&name);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("compose.yaml"), compose)?;
        let mut stack = Stack {
            berth: berth.to_path_buf(),
            state: base.join(format!("state-{name}")),
            // Missing on purpose: berth creates it (0600) with a new password.
            password: base.join(format!("berth-password-{name}")),
            volume: format!("{name}_{volume}"),
            name,
            dir,
            mountpoint: PathBuf::new(),
            scratch: RefCell::new(Vec::new()),
        };
        fs::create_dir_all(&stack.state)?;
        crate::cmd::output(&mut stack.berth(&["up", "-d", "--wait"]))?;
        stack.mountpoint = mountpoint(&stack.volume)?;
        Ok(stack)
    }

    fn berth(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.berth);
        c.args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .env("BERTH_STATE_DIR", &self.state)
            .env("BERTH_BACKUP_PASSWORD_FILE", &self.password)
            .stdin(Stdio::null());
        c
    }

    /// The repository's default place, `./backups` in the project directory.
    fn repository(&self) -> PathBuf {
        self.dir.join("backups")
    }

    /// The snapshots `backup list --format json` shows, oldest first.
    fn snapshots(&self) -> Result<Vec<serde_json::Value>> {
        let text = crate::cmd::output(&mut self.berth(&["backup", "list", "--format", "json"]))?;
        let mut snaps = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("backup list printed {l}")))
            .collect::<Result<Vec<serde_json::Value>>>()?;
        snaps.sort_by_key(|s| s["unix_time"].as_i64().unwrap_or(0));
        Ok(snaps)
    }

    /// The newest snapshot that is not a safety snapshot: its short id and `added`.
    fn newest(&self) -> Result<(String, u64)> {
        let snaps = self.snapshots()?;
        let newest = snaps
            .iter()
            .rev()
            .find(|s| {
                !s["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "safety"))
            })
            .context("backup list shows no snapshot after backup create")?;
        Ok((
            newest["short_id"]
                .as_str()
                .context("a snapshot without short_id")?
                .to_string(),
            newest["added"].as_u64().unwrap_or(0),
        ))
    }

    /// A new empty volume for a restore, removed when the stack is dropped (or earlier).
    fn scratch_volume(&self, label: &str) -> Result<(String, PathBuf)> {
        let name = format!("{}-{label}", self.name);
        crate::cmd::output(Command::new("docker").args(["volume", "create", &name]))?;
        self.scratch.borrow_mut().push(name.clone());
        let path = mountpoint(&name)?;
        Ok((name, path))
    }

    fn remove_volume(&self, name: &str) -> Result<()> {
        crate::cmd::output(Command::new("docker").args(["volume", "rm", name]))?;
        self.scratch.borrow_mut().retain(|v| v != name);
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self
            .berth(&["down", "-v"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Only names this stack made (all carry the process id): never anyone else's.
        let mut names = self.scratch.borrow().clone();
        names.push(self.volume.clone());
        for name in names {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The places and state of one run.
struct Bench<'a> {
    stack: &'a Stack,
    /// Archives, the restic repository and the restore directories.
    out: PathBuf,
    restic_password: PathBuf,
    /// Whether every drop of the page cache worked.
    cache_dropped: bool,
}

impl Bench<'_> {
    /// One round: first backups, restores into empty targets, 1% changed, second backups,
    /// and last berth's restore in place (last, because it rewrites every file, and the
    /// second backups of berth and restic would otherwise see them all as changed).
    fn round(
        &mut self,
        round: usize,
        tools: &mut [Figures; 4],
        extra: &mut BerthExtra,
    ) -> Result<()> {
        let stack = self.stack;
        let mp = stack.mountpoint.clone();
        let repo = stack.repository();
        let tar_gz = self.out.join("data.tar.gz");
        let tar_zst = self.out.join("data.tar.zst");
        let restic_repo = self.out.join("restic");
        let restic_stopped = self.out.join("restic-stopped");
        let restored = self.out.join("restored");
        let _ = fs::remove_dir_all(&repo);
        let _ = fs::remove_dir_all(&restic_repo);
        let source = tree_stats(&mp)?;

        // First backups.
        let b_first = self.timed(&mut stack.berth(&["backup", "create"]))?;
        let b_size = dir_bytes(&repo)?;
        let (first_id, _) = stack.newest()?;
        crate::interrupt::check()?;
        let t_first = self.tar_gz(&mp, &tar_gz)?;
        let t_size = fs::metadata(&tar_gz)?.len();
        crate::interrupt::check()?;
        let z_first = self.tar_zstd(&mp, &tar_zst)?;
        let z_size = fs::metadata(&tar_zst)?.len();
        crate::interrupt::check()?;
        crate::cmd::output(&mut self.restic(&restic_repo, &["init"]))?;
        let r_first = self.timed(self.restic(&restic_repo, &["backup"]).arg(&mp))?;
        let r_size = dir_bytes(&restic_repo)?;
        crate::interrupt::check()?;
        let _ = fs::remove_dir_all(&restic_stopped);
        crate::cmd::output(&mut self.restic(&restic_stopped, &["init"]))?;
        let rs_first = self.restic_stopped(&restic_stopped, &mp)?;
        crate::interrupt::check()?;

        // Restores into empty targets, each checked against the source before it is removed.
        let (volume, volume_path) = stack.scratch_volume(&format!("restore-{round}"))?;
        let b_restore =
            self.timed(&mut stack.berth(&["backup", "restore", &first_id, "--into", &volume]))?;
        same_tree("berth restore --into", &source, &volume_path)?;
        stack.remove_volume(&volume)?;
        crate::interrupt::check()?;
        fs::create_dir_all(&restored)?;
        let t_restore = self.timed(tar_cmd(&["-xzf"], &tar_gz).arg("-C").arg(&restored))?;
        same_tree("tar -xzf", &source, &restored)?;
        fs::remove_dir_all(&restored)?;
        crate::interrupt::check()?;
        fs::create_dir_all(&restored)?;
        let z_restore = self.timed_pipe(
            Command::new("zstd").args(["-dc"]).arg(&tar_zst),
            &mut tar_cmd(&["-xf", "-", "-C"], &restored),
        )?;
        same_tree("zstd -dc | tar -xf", &source, &restored)?;
        fs::remove_dir_all(&restored)?;
        crate::interrupt::check()?;
        fs::create_dir_all(&restored)?;
        let r_restore = self.timed(
            self.restic(&restic_repo, &["restore", "latest", "--target"])
                .arg(&restored),
        )?;
        // restic restores the backed-up path below the target, leading slash dropped.
        same_tree(
            "restic restore",
            &source,
            &restored.join(mp.strip_prefix("/").unwrap_or(&mp)),
        )?;
        fs::remove_dir_all(&restored)?;
        crate::interrupt::check()?;

        // 1% of the data changes; each round changes other places.
        change_one_percent(&mp, 0x5eed_0000 + round as u64)?;

        // Second backups.
        let before = dir_bytes(&repo)?;
        let b_second = self.timed(&mut stack.berth(&["backup", "create"]))?;
        let b_added = dir_bytes(&repo)? - before;
        let (_, reported) = stack.newest()?;
        crate::interrupt::check()?;
        fs::remove_file(&tar_gz)?;
        let t_second = self.tar_gz(&mp, &tar_gz)?;
        let t_added = fs::metadata(&tar_gz)?.len();
        crate::interrupt::check()?;
        fs::remove_file(&tar_zst)?;
        let z_second = self.tar_zstd(&mp, &tar_zst)?;
        let z_added = fs::metadata(&tar_zst)?.len();
        crate::interrupt::check()?;
        let before = dir_bytes(&restic_repo)?;
        let r_second = self.timed(self.restic(&restic_repo, &["backup"]).arg(&mp))?;
        let r_added = dir_bytes(&restic_repo)? - before;
        crate::interrupt::check()?;
        let rs_second = self.restic_stopped(&restic_stopped, &mp)?;
        crate::interrupt::check()?;

        // berth's restore in place: back to the first snapshot, a safety snapshot first.
        let in_place =
            self.timed(&mut stack.berth(&["backup", "restore", &first_id, "--force"]))?;
        same_tree("berth restore --force", &source, &mp)?;
        let _ = fs::remove_file(&tar_gz);
        let _ = fs::remove_file(&tar_zst);
        let _ = fs::remove_dir_all(&restic_repo);
        let _ = fs::remove_dir_all(&restic_stopped);

        let rows = [
            (b_first, b_restore, b_size, b_second, b_added),
            (t_first, t_restore, t_size, t_second, t_added),
            (z_first, z_restore, z_size, z_second, z_added),
            (r_first, r_restore, r_size, r_second, r_added),
        ];
        let names = ["berth", "tar czf", "tar|zstd", "restic"];
        for ((figures, row), name) in tools.iter_mut().zip(rows).zip(names) {
            figures.record(&format!("round {round}: {name:<8}"), row);
        }
        println!(
            "round {round}: berth restore in place (--force, safety snapshot first) {:.2} s; \
             backup list says the second snapshot added {}",
            secs(in_place),
            size(reported)
        );
        println!(
            "round {round}: restic with the service stopped and started healthy: first {:.2} s, \
             second {:.2} s",
            secs(rs_first),
            secs(rs_second)
        );
        extra.restic_stopped_first.push(rs_first);
        extra.restic_stopped_second.push(rs_second);
        extra.in_place.push(in_place);
        extra.reported_added.push(reported);
        Ok(())
    }

    fn restic(&self, repo: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("restic");
        c.arg("--repo")
            .arg(repo)
            .arg("--password-file")
            .arg(&self.restic_password)
            .args(["--no-cache", "--quiet"])
            .args(args)
            // The user's own repository settings must not leak into the bench.
            .env_remove("RESTIC_REPOSITORY")
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_COMMAND")
            .env_remove("RESTIC_COMPRESSION");
        c
    }

    /// Drops the page cache, runs `command` to its end and syncs; the time covers both.
    /// `restic backup` of the volume with the service stopped first and started again after,
    /// until it is healthy: what berth does for a consistent snapshot, done by hand. Timed
    /// from the stop to healthy, plus the `sync`.
    fn restic_stopped(&mut self, repo: &Path, mp: &Path) -> Result<Duration> {
        let container = format!("{}-app-1", self.stack.name);
        self.drop_caches();
        let started = Instant::now();
        crate::cmd::output(Command::new("docker").args(["stop", &container]))?;
        let backed_up = crate::cmd::output(self.restic(repo, &["backup"]).arg(mp));
        crate::cmd::output(Command::new("docker").args(["start", &container]))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = crate::cmd::output(Command::new("docker").args([
                "inspect",
                "-f",
                "{{.State.Health.Status}}",
                &container,
            ]))?;
            if health.trim() == "healthy" {
                break;
            }
            if Instant::now() >= deadline {
                bail!("{container} was not healthy within 60 s after restic's backup");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        backed_up?;
        crate::cmd::output(&mut Command::new("sync"))?;
        Ok(started.elapsed())
    }

    /// The notes' `tar czf` of the volume into `out`, timed.
    fn tar_gz(&mut self, mp: &Path, out: &Path) -> Result<Duration> {
        self.timed(tar_cmd(&["-czf"], out).arg("-C").arg(mp).arg("."))
    }

    /// `tar -cf - | zstd -T0` of the volume into `out`, timed.
    fn tar_zstd(&mut self, mp: &Path, out: &Path) -> Result<Duration> {
        self.timed_pipe(
            tar_cmd(&["-cf", "-", "-C"], mp).arg("."),
            Command::new("zstd")
                .args(["-T0", "-q", "-f", "-o"])
                .arg(out),
        )
    }

    fn timed(&mut self, command: &mut Command) -> Result<Duration> {
        self.drop_caches();
        let started = Instant::now();
        crate::cmd::output(command)?;
        crate::cmd::output(&mut Command::new("sync"))?;
        Ok(started.elapsed())
    }

    /// As [`Bench::timed`], for `left | right`; fails when either side fails.
    fn timed_pipe(&mut self, left: &mut Command, right: &mut Command) -> Result<Duration> {
        self.drop_caches();
        let started = Instant::now();
        let mut producer = left
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {left:?}"))?;
        let pipe = producer.stdout.take().expect("piped");
        // Not `cmd::output`, which would give the consumer an empty stdin instead of the pipe.
        let consumed = right
            .stdin(pipe)
            .output()
            .with_context(|| format!("cannot start {right:?}"));
        let status = producer.wait()?;
        let consumed = consumed?;
        if !consumed.status.success() {
            bail!(
                "{right:?} failed with {}: {}",
                consumed.status,
                String::from_utf8_lossy(&consumed.stderr).trim()
            );
        }
        if !status.success() {
            bail!("{left:?} failed with {status}");
        }
        crate::cmd::output(&mut Command::new("sync"))?;
        Ok(started.elapsed())
    }

    /// `sync; echo 3 > /proc/sys/vm/drop_caches`, so that every tool reads from the disk.
    /// Without root it cannot; the run goes on and the output says so.
    fn drop_caches(&mut self) {
        let _ = Command::new("sync").status();
        if let Err(e) = fs::write("/proc/sys/vm/drop_caches", "3\n") {
            if self.cache_dropped {
                eprintln!(
                    "warning: cannot drop the page cache ({e}); the figures may come from memory"
                );
            }
            self.cache_dropped = false;
        }
    }
}

/// `tar ARGS PATH`, for the caller to add the rest.
fn tar_cmd(args: &[&str], path: &Path) -> Command {
    let mut c = Command::new("tar");
    c.args(args).arg(path);
    c
}

/// zstd comes from apt when it is missing; nothing else is installed.
fn ensure_zstd() -> Result<()> {
    if version(Command::new("zstd").arg("--version")).is_ok() {
        return Ok(());
    }
    println!("zstd is missing: apt-get install -y -qq zstd");
    crate::cmd::run(Command::new("apt-get").args(["install", "-y", "-qq", "zstd"]))
        .context("bench backup compares with zstd; install it (apt-get install zstd)")
}

/// The version number in a `--version` line: `tar (GNU tar) 1.34` gives `1.34`, `*** Zstandard
/// CLI (64-bit) v1.5.4, by Yann Collet ***` gives `1.5.4`.
fn number(line: &str) -> String {
    line.split_whitespace()
        .map(|w| w.trim_start_matches('v').trim_end_matches(','))
        .find(|w| w.contains('.') && w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(line)
        .to_string()
}

/// The first line a `--version` prints, trimmed.
fn version(command: &mut Command) -> Result<String> {
    let text = crate::cmd::output(command)?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

fn mountpoint(volume: &str) -> Result<PathBuf> {
    let text = crate::cmd::output(Command::new("docker").args([
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}}",
        volume,
    ]))?;
    let path = PathBuf::from(text.trim());
    if !path.is_dir() {
        bail!(
            "the volume {volume}'s mountpoint {} is not a directory here; the bench writes \
             the data on the host and needs a local Docker Engine",
            path.display()
        );
    }
    Ok(path)
}

/// The machine and the date, as a line for BENCHMARKS.md.
fn machine(dir: &Path) -> Result<String> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            Some(
                l.strip_prefix("model name")?
                    .trim_start_matches([' ', '\t', ':'])
                    .to_string(),
            )
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = crate::cmd::output(Command::new("uname").arg("-r"))?;
    let date = crate::cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?;
    let disk = crate::cmd::output(Command::new("df").args(["--output=source,fstype"]).arg(dir))
        .ok()
        .and_then(|t| {
            t.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into());
    Ok(format!(
        "Machine: {cpus} CPUs ({cpu}), {:.1} GiB memory, kernel {}, disk {disk} (the volume, \
         the archives and the repositories are all on it). Date: {}.",
        mem_kib as f64 / (1024.0 * 1024.0),
        kernel.trim(),
        date.trim()
    ))
}

/// What was written: bytes and files.
struct Written {
    bytes: u64,
    files: usize,
}

/// Fills `root` with `mib` MiB in [`LARGE_FILES`] files and [`SMALL_FILES`] small files.
fn fill(root: &Path, mib: u64) -> Result<Written> {
    let mut rng = XorShift::new(0x0b5e_55ed);
    let large = mib * MIB / LARGE_FILES;
    let mut buf = vec![0u8; MIB as usize];
    let mut written = Written { bytes: 0, files: 0 };
    let dir = root.join("large");
    fs::create_dir_all(&dir)?;
    for i in 0..LARGE_FILES {
        let path = dir.join(format!("blob{i:02}"));
        let mut file =
            fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut left = large;
        while left > 0 {
            let n = left.min(MIB) as usize;
            rng.fill(&mut buf[..n]);
            file.write_all(&buf[..n])?;
            left -= n as u64;
        }
        written.bytes += large;
        written.files += 1;
    }
    for i in 0..SMALL_FILES {
        let dir = root.join(format!("small/d{:02}", i % SMALL_DIRS));
        if i < SMALL_DIRS {
            fs::create_dir_all(&dir)?;
        }
        written.bytes += small_file(
            &dir.join(format!("f{:04}", i / SMALL_DIRS)),
            &mut rng,
            &mut buf,
        )?;
        written.files += 1;
    }
    crate::cmd::output(&mut Command::new("sync"))?;
    Ok(written)
}

/// Writes a small file of 1 to 4 KiB of random bytes and returns its size.
fn small_file(path: &Path, rng: &mut XorShift, buf: &mut [u8]) -> Result<u64> {
    let n = 1024 + (rng.next_u64() % 3073) as usize;
    rng.fill(&mut buf[..n]);
    fs::write(path, &buf[..n]).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(n as u64)
}

/// Overwrites 1% of the large files' bytes in place, in 1 MiB chunks at distinct random
/// places, touching their mtime, and rewrites 1% of the small files.
fn change_one_percent(root: &Path, seed: u64) -> Result<()> {
    let mut rng = XorShift::new(seed);
    let mut buf = vec![0u8; MIB as usize];
    let dir = root.join("large");
    let mut slots = Vec::new();
    let mut total = 0;
    for i in 0..LARGE_FILES {
        let path = dir.join(format!("blob{i:02}"));
        let len = fs::metadata(&path)?.len();
        total += len;
        for k in 0..len.div_ceil(MIB) {
            slots.push((path.clone(), k * MIB, (len - k * MIB).min(MIB)));
        }
    }
    shuffle(&mut slots, &mut rng);
    let mut left = total / 100;
    for (path, offset, room) in slots {
        if left == 0 {
            break;
        }
        let n = left.min(room);
        rng.fill(&mut buf[..n as usize]);
        let mut file = fs::OpenOptions::new().write(true).open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&buf[..n as usize])?;
        file.set_modified(SystemTime::now())?;
        left -= n;
    }
    let mut small: Vec<usize> = (0..SMALL_FILES).collect();
    shuffle(&mut small, &mut rng);
    for i in small.into_iter().take(SMALL_FILES / 100) {
        let path = root.join(format!(
            "small/d{:02}/f{:04}",
            i % SMALL_DIRS,
            i / SMALL_DIRS
        ));
        small_file(&path, &mut rng, &mut buf)?;
    }
    crate::cmd::output(&mut Command::new("sync"))?;
    Ok(())
}

fn shuffle<T>(v: &mut [T], rng: &mut XorShift) {
    for i in (1..v.len()).rev() {
        v.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
}

/// xorshift64*: several GB/s, so the data is written at disk speed (reading 1 GiB of
/// /dev/urandom would take longer than writing it), and incompressible to gzip and zstd.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

/// Regular files and their bytes below `root`: what a restore is checked against.
#[derive(Debug, PartialEq)]
struct TreeStats {
    files: usize,
    bytes: u64,
}

fn tree_stats(root: &Path) -> Result<TreeStats> {
    let mut stats = TreeStats { files: 0, bytes: 0 };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                stats.files += 1;
                stats.bytes += meta.len();
            }
        }
    }
    Ok(stats)
}

/// A restore that silently wrote less (a wrong path, a tool that skipped files) would make
/// it look fast; each is checked for the same files and bytes as the source.
fn same_tree(what: &str, source: &TreeStats, restored: &Path) -> Result<()> {
    let got = tree_stats(restored)?;
    if &got != source {
        bail!(
            "{what} into {} gave {} files, {} bytes; the source has {} files, {} bytes",
            restored.display(),
            got.files,
            got.bytes,
            source.files,
            source.bytes
        );
    }
    Ok(())
}

fn dir_bytes(root: &Path) -> Result<u64> {
    Ok(tree_stats(root)?.bytes)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_u64(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn size(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// The Markdown table for BENCHMARKS.md: one row per tool, medians of the rounds.
fn table(names: &[String], tools: &[Figures]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| tool | first backup | restore | repository / archive | second backup (1% changed) | added by the second backup |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (i, (name, f)) in names.iter().zip(tools).enumerate() {
        // tar and zstd (rows 1 and 2) write a whole new archive each time.
        let full = if i == 1 || i == 2 {
            " (a full archive)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {name} | {:.2} s | {:.2} s | {} | {:.2} s | {}{full} |",
            secs(median(&f.first)),
            secs(median(&f.restore)),
            size(median_u64(&f.size)),
            secs(median(&f.second)),
            size(median_u64(&f.added)),
        );
    }
    out
}
