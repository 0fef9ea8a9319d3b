//! `berth backup` end to end (issue #16): the real binary, the real engine, Postgres from the
//! test image, and Debian's restic 0.14 reading what berth wrote.
//!
//! These tests read and write volumes through their mountpoints, so they run as root on the
//! Docker host, as CI does.

mod harness;
use berth_test_support::{docker, ensure_test_images, unique_name};
use harness::{Berth, Outcome, ProjectGuard};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A project with its state and password beside it, torn down when the test ends.
struct Project {
    name: String,
    berth: Berth,
    password: PathBuf,
    _guard: ProjectGuard,
    _dir: tempfile::TempDir,
}

impl Project {
    fn new(prefix: &str, compose: &str) -> Project {
        ensure_test_images();
        let name = unique_name(prefix).to_lowercase();
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("config/berth/backup-password");
        let berth = Berth::project(&[("compose.yaml", compose)])
            .args(&["-p", &name])
            .env(
                "BERTH_STATE_DIR",
                dir.path().join("state").to_str().unwrap(),
            )
            .env("BERTH_BACKUP_PASSWORD_FILE", password.to_str().unwrap());
        Project {
            _guard: ProjectGuard(name.clone()),
            name,
            berth,
            password,
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Outcome {
        self.berth.with(args)
    }

    fn repository(&self) -> PathBuf {
        self.berth.dir().join("backups")
    }

    /// `restic` on this project's repository, with berth's password file.
    fn restic(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new("restic")
            .arg("--repo")
            .arg(self.repository())
            .arg("--password-file")
            .arg(&self.password)
            .arg("--no-cache")
            .args(args)
            .output()
            .expect("restic is installed (.ci/run installs it)");
        assert!(
            out.status.success(),
            "restic {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The project's snapshots as `backup list --format json` prints them.
    fn snapshots(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["backup", "list", "--format", "json"]);
        out.success();
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn mountpoint(&self, volume: &str) -> PathBuf {
        PathBuf::from(docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}}",
            &format!("{}_{volume}", self.name),
        ]))
    }
}

/// Everything about a tree that a restore must keep, listed by tools independent of berth:
/// path, type, mode, owner, size, link target, link count, modification time, a content
/// hash of every file, and every extended attribute. Inode numbers are left out: a restore
/// makes new ones.
fn tree_listing(dir: &Path) -> String {
    let script = r#"set -e
cd "$1"
find . -mindepth 1 -printf '%p %y %m %U:%G %s %l %n %T@\n' | LC_ALL=C sort
find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
getfattr -R -d -h --absolute-names . 2>/dev/null | grep -v '^$' | LC_ALL=C sort || true
"#;
    let out = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "listing {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Fills `dir` with `big_files` files of 64 MiB of incompressible bytes, 10,000 small files
/// in 100 directories, symlinks, hard links, odd owners and modes, and extended attributes.
fn fill(dir: &Path, big_files: usize) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: fast, and its output does not compress.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let big = dir.join("big");
    std::fs::create_dir_all(&big).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for i in 0..big_files {
        let mut f = std::fs::File::create(big.join(format!("blob-{i:02}.bin"))).unwrap();
        for _ in 0..64 {
            for chunk in block.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
    }
    for d in 0..100 {
        let sub = dir.join(format!("small/d{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            let body = format!("file {d}/{f} {}\n", next());
            std::fs::write(sub.join(format!("f{f:03}.txt")), body.repeat((f % 7) + 1)).unwrap();
        }
    }
    let odd = dir.join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    for (name, mode, uid, gid) in [
        ("secret", 0o600, 999, 999),
        ("script", 0o755, 1000, 100),
        ("setgid-dir", 0o2775, 33, 33),
        ("sticky-dir", 0o1777, 0, 0),
        ("readonly", 0o444, 65534, 65534),
    ] {
        let p = odd.join(name);
        if name.ends_with("-dir") {
            std::fs::create_dir(&p).unwrap();
        } else {
            std::fs::write(&p, name).unwrap();
        }
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::symlink("../small/d000/f000.txt", odd.join("relative-link")).unwrap();
    std::os::unix::fs::symlink("/etc/does-not-exist", odd.join("dangling-link")).unwrap();
    std::fs::hard_link(odd.join("secret"), odd.join("secret-hardlink")).unwrap();
    std::fs::hard_link(
        dir.join("small/d001/f001.txt"),
        dir.join("small/d099/link-to-d001-f001"),
    )
    .unwrap();
    let xattr = Command::new("setfattr")
        .args(["-n", "user.berth.note", "-v", "kept"])
        .arg(odd.join("script"))
        .status()
        .expect("setfattr is installed (.ci/run installs attr)");
    assert!(xattr.success());
    // The volume's own root: owned by a service user and closed to others, as a database's
    // data directory is.
    std::os::unix::fs::chown(dir, Some(999), Some(999)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).unwrap();
}

/// Bytes under `dir`, as `du -sb` counts them.
fn dir_size(dir: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

const FILES: &str = r#"
services:
  app:
    image: berth/testapp:latest
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 20
    volumes: [data:/data]
volumes:
  data: {}
"#;

/// Issue #16 acceptance: a volume of 1 GiB of incompressible data and 10,000 small files with
/// symlinks, hard links, odd owners, modes and xattrs round-trips byte- and metadata-identical
/// through berth, and through Debian's restic, which also checks every byte; a non-empty
/// target is refused without --force; a second backup after changing 1% of the volume grows
/// the repository by less than 5% of the volume.
#[test]
fn a_volume_round_trips_identically_through_berth_and_through_restic() {
    let p = Project::new("berth-bk-vol", FILES);
    p.run(&["up", "-d", "--wait"]).success();
    let data = p.mountpoint("data");
    fill(&data, 16);
    let source = tree_listing(&data);
    assert!(source.lines().count() > 10_000, "the fixture is too small");

    let first = p.run(&["backup", "create"]);
    first.success().stdout_has("volume:data: snapshot");
    first.stderr_has("created the backup password file");
    assert_eq!(
        std::fs::metadata(&p.password).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The writer was stopped for the snapshot and runs again.
    first.stderr_has("stopping").stderr_has("started");
    let ids = harness::service_ids(&p.name, "app", false);
    assert_eq!(ids.len(), 1, "app does not run again after the backup");

    let snaps = p.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let id = snaps[0]["id"].as_str().unwrap().to_string();
    let short = snaps[0]["short_id"].as_str().unwrap().to_string();
    assert_eq!(snaps[0]["item"], "volume:data");

    // restic lists the snapshot with berth's tags, reads every byte back, and restores it.
    let listed = p.restic(&["snapshots", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let theirs = listed.as_array().unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["id"], id.as_str());
    let tags: Vec<&str> = theirs[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"item=volume:data"), "{tags:?}");
    assert!(
        tags.contains(&format!("project={}", p.name).as_str()),
        "{tags:?}"
    );
    p.restic(&["check", "--read-data"]);
    // berth's own verify restores it into a scratch volume and compares tree hashes.
    p.run(&["backup", "verify", "--latest"])
        .success()
        .stdout_has(&format!("{short} volume:data: verified"));
    assert!(p.snapshots()[0]["verified_at"].is_string());
    let scratch = tempfile::tempdir().unwrap();
    p.restic(&["restore", &id, "--target", scratch.path().to_str().unwrap()]);
    let by_restic = tree_listing(&scratch.path().join("volume/data"));
    assert!(
        source == by_restic,
        "restic's restore differs from the source:\n{}",
        first_difference(&source, &by_restic)
    );

    // A non-empty target is refused without --force, and nothing changes.
    std::fs::write(data.join("written-after"), "new").unwrap();
    std::fs::remove_file(data.join("small/d050/f050.txt")).unwrap();
    let changed = tree_listing(&data);
    let refused = p.run(&["backup", "restore", &short]);
    refused.code(2).stderr_has("--force");
    assert_eq!(
        tree_listing(&data),
        changed,
        "a refused restore changed the volume"
    );

    // With --force: a safety snapshot first, then the volume is exactly the snapshot again.
    let forced = p.run(&["backup", "restore", &short, "--force"]);
    forced.success().stderr_has("safety");
    let restored = tree_listing(&data);
    assert!(
        source == restored,
        "berth's restore differs from the source:\n{}",
        first_difference(&source, &restored)
    );
    assert_eq!(harness::service_ids(&p.name, "app", false).len(), 1);
    assert_eq!(p.snapshots().len(), 2, "the safety snapshot is listed");

    // 1% of the volume changes (10 MiB of one 64 MiB file): the second backup adds < 5%.
    let before = dir_size(&p.repository());
    {
        let path = data.join("big/blob-07.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        for (i, b) in bytes[..10 << 20].iter_mut().enumerate() {
            *b = b.wrapping_add((i % 251) as u8 | 1);
        }
        std::fs::write(&path, bytes).unwrap();
    }
    p.run(&["backup", "create"]).success();
    let grown = dir_size(&p.repository()) - before;
    let volume = dir_size(&data);
    assert!(
        grown * 20 < volume,
        "the repository grew by {grown} bytes for a 1% change of {volume} bytes"
    );
}

/// The first line where two listings differ, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("- {x}\n+ {y}");
        }
    }
    format!("{} lines against {}", a.lines().count(), b.lines().count())
}

const POSTGRES: &str = r#"
services:
  db:
    image: berth/postgres:15
    environment: { POSTGRES_PASSWORD: secret, POSTGRES_DB: shop }
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres", "-d", "shop"]
      interval: 500ms
      retries: 60
    volumes: [pgdata:/var/lib/postgresql/data]
    x-berth: { backup: postgres }
volumes:
  pgdata: {}
"#;

/// A table with a column of every common type, filled with awkward values.
const EVERY_TYPE: &str = r#"
create extension if not exists pgcrypto;
create type mood as enum ('sad', 'ok', 'happy');
create table every_type (
  id bigserial primary key, small smallint, whole integer, big bigint,
  exact numeric(20,6), real_ real, double double precision, money_ money,
  flag boolean, txt text, vc varchar(40), ch char(5), bytes bytea,
  day date, at_time time, at_tz timetz, stamp timestamp, stamptz timestamptz,
  span interval, uid uuid, doc json, docb jsonb, ints int[], words text[],
  ip inet, net cidr, mac macaddr, pt point, box_ box, feeling mood,
  range_ int4range, bits bit(8), tsv tsvector, x xml
);
insert into every_type (small, whole, big, exact, real_, double, money_, flag, txt, vc, ch,
  bytes, day, at_time, at_tz, stamp, stamptz, span, uid, doc, docb, ints, words, ip, net, mac,
  pt, box_, feeling, range_, bits, tsv, x)
select -32768, g, 9223372036854775807 - g, 12345678901234.123456, 'NaN', '-Infinity', 12.34,
  g % 2 = 0, E'tab\there\nnewline ''quote'' ünïcödé 🚢', 'v' || g, 'ab', '\x00ff10'::bytea,
  '2024-02-29', '23:59:59.999999', '12:00+05:30', 'infinity', '1999-12-31 23:59:59+00',
  '1 year 2 mons -3 days 04:05:06', gen_random_uuid(), '{"a": [1, 2, null]}',
  '{"nested": {"k": "v"}}', array[1, null, 3], array['x', 'with,comma', null], '10.0.0.1/8',
  '192.168.0.0/16', '08:00:2b:01:02:03', point(1.5, -2), box(point(0,0), point(1,1)), 'happy',
  int4range(1, 10), B'10101010', to_tsvector('english', 'ships sail'), '<a>b</a>'
from generate_series(1, 500) as g;
insert into every_type (txt) values (null), ('');
"#;

/// Runs `cmd` in the running container of `service` with `input` on its standard input,
/// and fails the test with its error output unless it succeeds.
fn exec_with_input(p: &Project, service: &str, cmd: &[&str], input: &str) {
    let id = &harness::service_ids(&p.name, service, false)[0];
    let out = Command::new("docker")
        .args(["exec", "-i", id])
        .args(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn psql(p: &Project, sql: &str) -> String {
    let id = &harness::service_ids(&p.name, "db", false)[0];
    docker(&[
        "exec",
        id,
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-qAtX",
        "-U",
        "postgres",
        "-d",
        "shop",
        "-c",
        sql,
    ])
}

/// A plain-SQL dump of the whole database, with a fixed \restrict key so two dumps of the
/// same data are the same bytes.
fn pg_dump(p: &Project) -> String {
    let id = &harness::service_ids(&p.name, "db", false)[0];
    docker(&[
        "exec",
        id,
        "pg_dump",
        "-U",
        "postgres",
        "--restrict-key=berthtest",
        "shop",
    ])
}

/// Issue #16 acceptance: pgbench's tables at scale 20 plus a table of every common type are
/// dumped online, dropped, and restored; `pg_dump` before and after are identical.
#[test]
fn a_postgres_database_round_trips_identically() {
    let p = Project::new("berth-bk-pg", POSTGRES);
    p.run(&["up", "-d", "--wait"]).success();
    let id = &harness::service_ids(&p.name, "db", false)[0];
    let init = docker(&[
        "exec", id, "pgbench", "-i", "-q", "-s", "20", "-U", "postgres", "shop",
    ]);
    let _ = init;
    exec_with_input(
        &p,
        "db",
        &[
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-U",
            "postgres",
            "-d",
            "shop",
        ],
        EVERY_TYPE,
    );
    assert_eq!(psql(&p, "select count(*) from pgbench_accounts"), "2000000");
    let before = pg_dump(&p);

    p.run(&["backup", "create"])
        .success()
        .stdout_has("postgres:db: snapshot");
    let snaps = p.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["item"], "postgres:db");
    let short = snaps[0]["short_id"].as_str().unwrap().to_string();
    // The database served throughout: the dump runs online.
    assert_eq!(harness::service_ids(&p.name, "db", false), vec![id.clone()]);

    psql(
        &p,
        "drop table pgbench_accounts, every_type; drop type mood",
    );
    // The database still holds tables, so it is not an empty target.
    p.run(&["backup", "restore", &short])
        .code(2)
        .stderr_has("--force");
    p.run(&["backup", "restore", &short, "--force"]).success();
    let after = pg_dump(&p);
    assert!(
        before == after,
        "pg_dump differs after the restore:\n{}",
        first_difference(&before, &after)
    );
}

/// Issue #16: `kill -9` at five moments of a backup leaves no snapshot that berth had not
/// reported complete, and no stopped service once the next berth command has run; the next
/// backup works without an unlock.
#[test]
fn a_killed_backup_leaves_no_snapshot_and_no_stopped_service() {
    let p = Project::new("berth-bk-kill", FILES);
    p.run(&["up", "-d", "--wait"]).success();
    fill(&p.mountpoint("data"), 6);
    // The first backup makes the repository and the password, so the kills below land in
    // the copy itself.
    p.run(&["backup", "create"]).success();
    std::fs::write(p.mountpoint("data").join("changed"), "x").unwrap();
    let mut killed_running = 0;
    for delay_ms in [150u64, 400, 700, 1000, 1400] {
        // Every run must copy again: a changed file defeats the parent's shortcut.
        let bytes = vec![delay_ms as u8; 64 << 20];
        std::fs::write(p.mountpoint("data").join("big/churn.bin"), bytes).unwrap();
        let before = p.snapshots().len();
        let mut child = p
            .berth
            .command(&["backup", "create"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        // A snapshot is reported on standard output once it is in the repository; one that
        // was not reported must not be there.
        let reported = String::from_utf8_lossy(&out.stdout).contains("volume:data: snapshot");
        // The next command (any engine command) starts what the backup stopped.
        p.run(&["ps"]).success();
        let running = harness::service_ids(&p.name, "app", false);
        assert_eq!(
            running.len(),
            1,
            "app stays stopped after a kill at {delay_ms} ms"
        );
        let after = p.snapshots().len();
        let expected = before + usize::from(reported);
        assert_eq!(
            after, expected,
            "a kill at {delay_ms} ms (reported: {reported})"
        );
    }
    assert!(
        killed_running >= 3,
        "the backup finished before most kills; make it larger"
    );
    // No stale lock: the next backup simply works, and restic finds the repository sound.
    p.run(&["backup", "create"]).success();
    p.restic(&["check"]);
}

/// Issue #16: a volume holding a database's files is refused with --no-stop, by name, and
/// nothing is stopped or written.
#[test]
fn no_stop_refuses_a_database_volume() {
    let compose = POSTGRES.replace(
        "x-berth: { backup: postgres }",
        "x-berth: { backup: volume }",
    );
    let p = Project::new("berth-bk-live", &compose);
    p.run(&["up", "-d", "--wait"]).success();
    let id = harness::service_ids(&p.name, "db", false);
    let out = p.run(&["backup", "create", "--no-stop"]);
    out.code(2)
        .stderr_has("volume `pgdata` holds the database files of service `db`");
    assert_eq!(harness::service_ids(&p.name, "db", false), id);
    assert!(!p.repository().join("snapshots").exists() || p.snapshots().is_empty());
}

/// The data packs of the repository, largest first.
fn packs(repository: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<(u64, PathBuf)> = std::fs::read_dir(repository.join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| {
            let f = f.unwrap();
            (f.metadata().unwrap().len(), f.path())
        })
        .collect();
    packs.sort();
    packs.into_iter().rev().map(|(_, p)| p).collect()
}

/// Issue #16: a flipped byte and a truncated pack are found by `verify`, which names the
/// snapshot; a restore from the damaged snapshot fails and leaves the target as it was.
#[test]
fn damage_is_caught_by_verify_and_a_damaged_restore_changes_nothing() {
    let p = Project::new("berth-bk-dmg", FILES);
    p.run(&["up", "-d", "--wait"]).success();
    let data = p.mountpoint("data");
    fill(&data, 1);
    p.run(&["backup", "create"]).success();
    let short = p.snapshots()[0]["short_id"].as_str().unwrap().to_string();
    p.run(&["backup", "verify", &short]).success();

    let pack = packs(&p.repository()).remove(0);
    let original = std::fs::read(&pack).unwrap();
    // Pack files are written read-only; the damage is done as root would.
    std::fs::set_permissions(&pack, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&pack, &flipped).unwrap();
    p.run(&["backup", "verify", &short])
        .code(1)
        .stderr_has(&format!("snapshot {short} is damaged"));

    std::fs::write(data.join("after-the-backup"), "keep me").unwrap();
    let before = tree_listing(&data);
    let failed = p.run(&["backup", "restore", &short, "--force"]);
    failed.code(1);
    assert_eq!(
        tree_listing(&data),
        before,
        "a failed restore changed the volume"
    );
    assert_eq!(harness::service_ids(&p.name, "app", false).len(), 1);

    std::fs::write(&pack, &original[..original.len() / 2]).unwrap();
    p.run(&["backup", "verify", &short])
        .code(1)
        .stderr_has(&format!("snapshot {short} is damaged"));

    std::fs::write(&pack, &original).unwrap();
    p.run(&["backup", "verify", &short]).success();
}

/// Issue #16: prune removes what the policy does not keep, but never an item's newest
/// verified snapshot; `--dry-run` changes nothing; restic still checks the repository clean
/// afterwards; and no policy at all is refused.
#[test]
fn prune_keeps_the_policy_and_the_newest_verified_snapshot() {
    let p = Project::new("berth-bk-prune", FILES);
    p.run(&["up", "-d", "--wait"]).success();
    let data = p.mountpoint("data");
    for round in 0..3 {
        std::fs::write(data.join("round"), format!("round {round}")).unwrap();
        p.run(&["backup", "create"]).success();
    }
    let ids: Vec<String> = p
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    // The oldest is the one verify proved.
    p.run(&["backup", "verify", &ids[0][..8]]).success();

    p.run(&["backup", "prune"])
        .code(2)
        .stderr_has("no keep policy");

    let dry = p.run(&["backup", "prune", "--keep-last", "1", "--dry-run"]);
    dry.success();
    assert_eq!(
        dry.stdout.matches("would remove").count(),
        1,
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("keep (newest verified)"),
        "{}",
        dry.stdout
    );
    assert_eq!(p.snapshots().len(), 3, "a dry run removed snapshots");

    let pruned = p.run(&["backup", "prune", "--keep-last", "1", "--format", "json"]);
    pruned.success();
    let left: Vec<String> = p
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        vec![ids[0].clone(), ids[2].clone()],
        "{}",
        pruned.stdout
    );
    p.restic(&["check", "--read-data"]);

    // What is left restores: the newest holds the last round.
    std::fs::write(data.join("round"), "changed").unwrap();
    p.run(&["backup", "restore", &ids[2][..8], "--force"])
        .success();
    assert_eq!(
        std::fs::read_to_string(data.join("round")).unwrap(),
        "round 2"
    );
}

/// Issue #16: a wrong password is one clear line naming the repository and the file, and a
/// missing repository says how to make one.
#[test]
fn a_wrong_password_or_no_repository_is_one_clear_line() {
    let p = Project::new("berth-bk-pw", FILES);
    p.run(&["backup", "list"])
        .code(2)
        .stderr_has("there is no backup repository at");
    p.run(&["up", "-d", "--wait"]).success();
    p.run(&["backup", "create"]).success();
    std::fs::write(&p.password, "not the password\n").unwrap();
    let out = p.run(&["backup", "list"]);
    out.code(1).stderr_has(&format!(
        "does not open the backup repository {}",
        p.repository().display()
    ));
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("internal error"),
        "{}",
        out.stderr
    );
}

/// Issue #16 item 6: `backup schedule` prints a timer and a service running create, prune
/// and verify of the newest, or a cron line; a period it cannot keep and a project without a
/// keep policy are refused with exit code 2. (No engine needed: the units are text.)
#[test]
fn schedule_prints_a_timer_or_a_cron_line_and_refuses_what_it_cannot_keep() {
    let with_policy = format!("{FILES}x-berth:\n  backups:\n    keep: {{ daily: 7, weekly: 4 }}\n");
    let b = Berth::project(&[("compose.yaml", with_policy.as_str())]).args(&["-p", "sched"]);
    let units = b.with(&["backup", "schedule", "--every", "1d"]);
    units.success();
    assert!(
        units.stdout.contains("# berth-backup-sched.timer"),
        "{}",
        units.stdout
    );
    assert!(
        units.stdout.contains("OnCalendar=*-*-* 03:00:00"),
        "{}",
        units.stdout
    );
    let execs: Vec<&str> = units
        .stdout
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(execs.len(), 3, "{}", units.stdout);
    assert!(
        execs[2].ends_with("backup verify --latest"),
        "{}",
        units.stdout
    );

    let cron = b.with(&["backup", "schedule", "--every", "6h", "--cron"]);
    cron.success();
    assert!(
        cron.stdout.starts_with("0 */6 * * * cd "),
        "{}",
        cron.stdout
    );

    b.with(&["backup", "schedule", "--every", "5h"])
        .code(2)
        .stderr_has("not a period berth schedules");
    let bare = Berth::project(&[("compose.yaml", FILES)]).args(&["-p", "sched"]);
    bare.with(&["backup", "schedule", "--every", "1d"])
        .code(2)
        .stderr_has("x-berth.backups.keep");
}

/// Removes a container that belongs to no project when the test ends.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = berth_test_support::docker_output(&["rm", "-f", &self.0]);
    }
}

/// Issue #16 ("restoring into a volume a running service outside the project uses: refused,
/// naming the container"): a container of no project that mounts the volume stops both the
/// restore and the backup, by name, and neither changes the volume nor stops anything.
#[test]
fn a_volume_another_container_uses_is_refused_by_restore_and_backup() {
    let p = Project::new("berth-bk-foreign", FILES);
    p.run(&["up", "-d", "--wait"]).success();
    let data = p.mountpoint("data");
    std::fs::write(data.join("before"), "the backed-up state").unwrap();
    p.run(&["backup", "create"]).success();
    let short = p.snapshots()[0]["short_id"].as_str().unwrap().to_string();
    std::fs::write(data.join("after"), "written since").unwrap();

    let outsider = unique_name("berth-bk-outsider").to_lowercase();
    let _outsider = ContainerGuard(outsider.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &outsider,
        "-v",
        &format!("{}_data:/data", p.name),
        "berth/testapp:latest",
    ]);
    let app = harness::service_ids(&p.name, "app", false);
    let before = tree_listing(&data);

    let restore = p.run(&["backup", "restore", &short, "--force"]);
    restore.code(1).stderr_has(&format!(
        "volume `{}_data` is used by container `{outsider}`, which is not part of project `{}`",
        p.name, p.name
    ));
    let create = p.run(&["backup", "create"]);
    create
        .code(1)
        .stderr_has(&format!("is used by container `{outsider}`"));

    assert_eq!(
        tree_listing(&data),
        before,
        "the refused restore changed the volume"
    );
    assert_eq!(p.snapshots().len(), 1, "the refused backup made a snapshot");
    assert_eq!(
        harness::service_ids(&p.name, "app", false),
        app,
        "app was stopped"
    );
    let state = docker(&["inspect", "-f", "{{.State.Running}}", &outsider]);
    assert_eq!(state.trim(), "true", "the outsider was stopped");
}

/// Unmounts the file system mounted for a test when it ends.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue #16 ("a full disk mid-backup: a clear error, the source untouched"): a repository on
/// a file system too small for the volume fails the backup with one line that says the disk
/// is full; the volume is as it was, its writer runs again, no snapshot is listed, and once
/// there is room the next backup works and restic finds the repository sound.
#[test]
fn a_full_disk_mid_backup_is_a_clear_error_and_changes_nothing() {
    let p = Project::new("berth-bk-full", FILES);
    p.run(&["up", "-d", "--wait"]).success();
    let data = p.mountpoint("data");
    fill(&data, 1);
    let before = tree_listing(&data);

    // A real full disk: a 16 MiB tmpfs under the repository, for 64 MiB of incompressible data.
    let repository = p.repository();
    std::fs::create_dir_all(&repository).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&repository)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root, as CI runs");
    let _mount = MountGuard(repository.clone());

    let full = p.run(&["backup", "create"]);
    full.code(1)
        .stderr_has("the disk is full (storing the snapshot stopped)");
    assert!(
        !full.stderr.contains("panicked"),
        "a full disk panicked: {}",
        full.stderr
    );
    assert_eq!(tree_listing(&data), before, "the source changed");
    assert_eq!(harness::service_ids(&p.name, "app", false).len(), 1);
    assert!(
        p.snapshots().is_empty(),
        "a snapshot of a failed backup is listed"
    );

    let grown = Command::new("mount")
        .args(["-o", "remount,size=512m"])
        .arg(&repository)
        .status()
        .unwrap();
    assert!(grown.success());
    p.run(&["backup", "create"]).success();
    assert_eq!(p.snapshots().len(), 1);
    p.restic(&["check", "--read-data"]);
}

/// Issue #16 item 1: an ordinary backup's snapshots are tagged with the project's live
/// release and the git commit its directory is at, so a snapshot can be matched to its code.
#[test]
fn a_backup_is_tagged_with_the_live_release_and_the_git_commit() {
    let p = Project::new("berth-bk-tags", FILES);
    let dir = p.berth.dir().to_path_buf();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "compose.yaml"]);
    git(&["commit", "-qm", "first"]);
    let commit = git(&["rev-parse", "HEAD"]).trim().to_string();

    p.run(&["deploy"]).success();
    std::fs::write(p.mountpoint("data").join("f"), "x").unwrap();
    p.run(&["backup", "create", "--tag", "nightly"]).success();
    let tags = p.snapshots()[0]["tags"].clone();
    let tags: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"release=1"), "{tags:?}");
    assert!(
        tags.contains(&format!("commit={commit}").as_str()),
        "{tags:?}"
    );
    assert!(tags.contains(&"nightly"), "{tags:?}");
}

/// `sh -c script` in the running container of `service`, its standard output trimmed.
fn sh_in(p: &Project, service: &str, script: &str) -> String {
    let id = &harness::service_ids(&p.name, service, false)[0];
    docker(&["exec", id, "sh", "-c", script])
}

const MARIADB: &str = r#"
services:
  db:
    image: berth/mariadb:10.11
    environment: { MARIADB_ROOT_PASSWORD: "s3cret'pw", MARIADB_DATABASE: shop }
    stop_grace_period: 10s
    healthcheck:
      test: ["CMD-SHELL", "mariadb-admin --protocol=tcp -h 127.0.0.1 ping"]
      interval: 500ms
      retries: 120
    volumes: [dbdata:/var/lib/mysql]
    x-berth: { backup: mysql }
volumes:
  dbdata: {}
"#;

/// Tables whose values would trip a careless row counter: parentheses, quotes, backslashes
/// and newlines inside strings, binary data, an empty table, a second database, and 20,000
/// rows in one table (several extended INSERT statements).
const MARIADB_FILL: &str = r#"
SET SESSION max_recursive_iterations = 100000;
CREATE TABLE awkward (id INT PRIMARY KEY, s TEXT, b BLOB, d DATETIME(6), j JSON, e ENUM('a','b'));
INSERT INTO awkward VALUES
  (1, 'a),(b', 0x00FF28292C, '2024-02-29 23:59:59.999999', '{"k": [1, null]}', 'a'),
  (2, 'it''s (not) a row', NULL, NULL, NULL, 'b'),
  (3, 'back\\slash\nnew line ünïcödé 🚢', '', '1970-01-01 00:00:01', '[]', NULL);
CREATE TABLE empty (id INT);
CREATE TABLE big (id INT PRIMARY KEY, filler VARCHAR(64));
INSERT INTO big WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000)
  SELECT n, SHA2(n, 256) FROM s;
CREATE VIEW big_view AS SELECT id FROM big WHERE id < 10;
CREATE DATABASE other;
CREATE TABLE other.t (id INT);
INSERT INTO other.t VALUES (1), (2);
"#;

/// Root's client in the service, with the compose file's password.
fn mariadb(p: &Project, args: &str) -> String {
    sh_in(
        p,
        "db",
        &format!("MYSQL_PWD=\"$MARIADB_ROOT_PASSWORD\" {args}"),
    )
}

/// Both databases as SQL, without the dump date, so two dumps of the same data are equal.
fn mariadb_dump(p: &Project) -> String {
    mariadb(
        p,
        "mariadb-dump --skip-dump-date --routines --events --databases shop other",
    )
}

/// Issue #16 item 1 (`x-berth.backup: mysql`): `mysqldump --single-transaction` by exec in the
/// running server, the rows counted in the dump itself, verified by loading it into a
/// throwaway server of the same image, and restored over the service's data.
#[test]
fn a_mariadb_database_round_trips_identically() {
    let p = Project::new("berth-bk-my", MARIADB);
    p.run(&["up", "-d", "--wait"]).success();
    let id = harness::service_ids(&p.name, "db", false)[0].clone();
    exec_with_input(
        &p,
        "db",
        &[
            "sh",
            "-c",
            "MYSQL_PWD=\"$MARIADB_ROOT_PASSWORD\" exec mariadb shop",
        ],
        MARIADB_FILL,
    );
    let before = mariadb_dump(&p);

    let created = p.run(&["backup", "create"]);
    created.success().stdout_has("mysql:db: snapshot");
    let snaps = p.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["item"], "mysql:db");
    assert_eq!(snaps[0]["kind"], "mysql");
    let short = snaps[0]["short_id"].as_str().unwrap().to_string();
    // The server kept running: the dump is online.
    assert_eq!(harness::service_ids(&p.name, "db", false), vec![id.clone()]);
    // restic restores the dump as an SQL file named for the item.
    p.restic(&["check", "--read-data"]);
    let scratch = tempfile::tempdir().unwrap();
    p.restic(&[
        "restore",
        &short,
        "--target",
        scratch.path().to_str().unwrap(),
    ]);
    let sql = std::fs::read_to_string(scratch.path().join("mysql/db.sql")).unwrap();
    assert!(sql.contains("CREATE TABLE `awkward`"), "not a dump");

    // Verify loads it into a throwaway server and counts 4 tables, 20,005 rows there.
    p.run(&["backup", "verify", &short])
        .success()
        .stdout_has("4 tables, 20005 rows");

    // The server holds tables: refused without --force; with it, exactly the snapshot again.
    mariadb(
        &p,
        "mariadb -e 'DROP TABLE shop.empty; DELETE FROM shop.big WHERE id > 100; DELETE FROM shop.awkward WHERE id = 2; CREATE TABLE shop.extra (x INT); DROP DATABASE other'",
    );
    p.run(&["backup", "restore", &short])
        .code(2)
        .stderr_has("--force");
    p.run(&["backup", "restore", &short, "--force"])
        .success()
        .stderr_has("safety");
    let after = mariadb_dump(&p);
    assert!(
        before == after,
        "the dump differs after the restore:\n{}",
        first_difference(&before, &after)
    );
}

const REDIS: &str = r#"
services:
  cache:
    image: berth/redis:7
    stop_grace_period: 5s
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 500ms
      retries: 60
    volumes: [cachedata:/data]
    x-berth: { backup: redis }
volumes:
  cachedata: {}
"#;

/// Every key with its type, whether it has a time to live, and its value written out in a
/// fixed order (members of sets and fields of hashes sorted), one line per key, sorted. (A
/// value's `DUMP` is no good for this: a set's encoding may change when it is loaded again.)
fn redis_listing(p: &Project) -> String {
    sh_in(
        p,
        "cache",
        r#"redis-cli --scan | LC_ALL=C sort | while read -r k; do
  t="$(redis-cli TYPE "$k")"
  case "$t" in
    string) v="$(redis-cli GET "$k")" ;;
    list) v="$(redis-cli LRANGE "$k" 0 -1 | tr '\n' ' ')" ;;
    set) v="$(redis-cli SMEMBERS "$k" | LC_ALL=C sort | tr '\n' ' ')" ;;
    hash) v="$(redis-cli HGETALL "$k" | paste - - | LC_ALL=C sort | tr '\n\t' ' =')" ;;
    *) v="?" ;;
  esac
  ttl="$(redis-cli TTL "$k")"; [ "$ttl" -gt 0 ] && ttl=ttl
  printf '%s %s %s %s\n' "$k" "$t" "$ttl" "$v"
done"#,
    )
}

/// Issue #16 item 1 (`x-berth.backup: redis`): BGSAVE, then the RDB file, its keys counted
/// by redis-check-rdb; verified by loading it into a second server of the same image; a
/// restore puts the file back and restarts the server, which then holds the same keys.
#[test]
fn a_redis_dataset_round_trips_identically() {
    let p = Project::new("berth-bk-redis", REDIS);
    p.run(&["up", "-d", "--wait"]).success();
    sh_in(
        &p,
        "cache",
        "for i in $(seq 1 300); do echo \"SET key:$i value-$i\"; done | redis-cli >/dev/null \
         && redis-cli HSET user:1 name 'Ada (L)' lang \"it's\" >/dev/null \
         && redis-cli RPUSH queue a b c >/dev/null && redis-cli SADD tags x y >/dev/null \
         && redis-cli SET session:1 live EX 3600 >/dev/null",
    );
    let before = redis_listing(&p);
    assert_eq!(before.lines().count(), 304, "{before}");

    p.run(&["backup", "create"])
        .success()
        .stdout_has("redis:cache: snapshot");
    let snaps = p.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["item"], "redis:cache");
    let short = snaps[0]["short_id"].as_str().unwrap().to_string();
    p.run(&["backup", "verify", &short])
        .success()
        .stdout_has("304 keys");

    // Keys written after the backup: the server is not empty, so --force is needed, and the
    // restore brings back exactly the snapshot's keys, through a restart of the server.
    sh_in(
        &p,
        "cache",
        "redis-cli SET later 1 >/dev/null && redis-cli DEL key:7 >/dev/null",
    );
    let old = harness::service_ids(&p.name, "cache", false);
    p.run(&["backup", "restore", &short])
        .code(2)
        .stderr_has("--force");
    let restored = p.run(&["backup", "restore", &short, "--force"]);
    restored
        .success()
        .stderr_has("safety")
        .stderr_has("stopping");
    assert_eq!(harness::service_ids(&p.name, "cache", false), old);
    let after = redis_listing(&p);
    assert!(
        before == after,
        "the keys differ after the restore:\n{}",
        first_difference(&before, &after)
    );
    // The server saves to its file again after the restore: the save points came back with
    // the restart.
    assert_ne!(
        sh_in(&p, "cache", "redis-cli CONFIG GET save | sed -n 2p"),
        ""
    );
}

const CUSTOM: &str = r#"
services:
  search:
    image: berth/redis:7
    stop_grace_period: 5s
    x-berth:
      backup:
        command: "mkdir -p /srv/index && tar -C /srv/index -cf /tmp/index.tar ."
        file: /tmp/index.tar
        restore: "rm -rf /srv/index && mkdir -p /srv/index && tar -C /srv/index -xf /tmp/index.tar"
  vectors:
    image: berth/redis:7
    stop_grace_period: 5s
    x-berth:
      backup:
        command: "mkdir -p /srv/vec && tar -C /srv/vec -cf - ."
        restore: "rm -rf /srv/vec && mkdir -p /srv/vec && tar -C /srv/vec -xf -"
"#;

/// Issue #16 item 1 (`x-berth.backup: { command, restore, file }`): the service's own dump
/// and restore commands, with the dump in a file and on standard output; verify proves the
/// stored bytes intact; a restore always takes --force (berth cannot tell whether an engine
/// it does not know is empty).
#[test]
fn a_custom_dump_and_restore_round_trip() {
    let p = Project::new("berth-bk-custom", CUSTOM);
    p.run(&["up", "-d", "--wait"]).success();
    let fill = |dir: &str| {
        format!(
            "mkdir -p {dir}/seg && for i in $(seq 1 50); do head -c 4096 /dev/urandom > {dir}/seg/$i; done && echo 'meta (v1)' > {dir}/meta"
        )
    };
    let listing =
        |dir: &str| format!("cd {dir} && find . -type f | LC_ALL=C sort | xargs sha256sum");
    sh_in(&p, "search", &fill("/srv/index"));
    sh_in(&p, "vectors", &fill("/srv/vec"));
    let search_before = sh_in(&p, "search", &listing("/srv/index"));
    let vectors_before = sh_in(&p, "vectors", &listing("/srv/vec"));

    p.run(&["backup", "create"])
        .success()
        .stdout_has("custom:search: snapshot")
        .stdout_has("custom:vectors: snapshot");
    let snaps = p.snapshots();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    for s in &snaps {
        let short = s["short_id"].as_str().unwrap();
        p.run(&["backup", "verify", short])
            .success()
            .stdout_has("dump read back intact");
    }

    sh_in(
        &p,
        "search",
        "rm -rf /srv/index/seg && echo changed > /srv/index/meta",
    );
    sh_in(&p, "vectors", "rm -rf /srv/vec");
    for (service, dir, before) in [
        ("search", "/srv/index", &search_before),
        ("vectors", "/srv/vec", &vectors_before),
    ] {
        // Snapshots made in the same second are listed in no fixed order: find it by item.
        let item = format!("custom:{service}");
        let s = snaps
            .iter()
            .find(|s| s["item"] == item.as_str())
            .unwrap_or_else(|| panic!("no snapshot of {item}: {snaps:?}"));
        let short = s["short_id"].as_str().unwrap();
        p.run(&["backup", "restore", short])
            .code(2)
            .stderr_has("--force");
        p.run(&["backup", "restore", short, "--force"]).success();
        assert_eq!(&sh_in(&p, service, &listing(dir)), before, "{service}");
    }

    // A failing command leaves no snapshot and says what failed.
    let broken = CUSTOM.replace(
        "tar -C /srv/index -cf /tmp/index.tar .",
        "echo no index here >&2; exit 3",
    );
    p.berth.write("compose.yaml", &broken);
    p.run(&["backup", "create", "search"])
        .code(1)
        .stderr_has("exit code 3")
        .stderr_has("no index here");
    assert_eq!(
        p.snapshots().len(),
        2 + 2,
        "only the two safety snapshots were added"
    );
}
