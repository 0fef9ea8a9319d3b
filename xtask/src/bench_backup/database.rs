//! The database half of `cargo xtask bench backup`: pgbench's tables at scale 20 in a
//! Postgres service, backed up by `berth backup create` (pg_dump streamed into the repository
//! by exec, with the row counts of its transaction), against the notes' own
//! `docker exec db pg_dump -Fc > file` and against the same dump piped into
//! `restic backup --stdin`; then restored by each, and dumped again after pgbench has changed
//! rows for a while.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{dir_bytes, median, median_u64, secs, size, Bench, Figures, Stack};

const COMPOSE: &str = r#"services:
  db:
    image: berth/postgres:15
    environment: { POSTGRES_PASSWORD: bench, POSTGRES_DB: shop }
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres", "-d", "shop"]
      interval: 500ms
      retries: 60
    volumes: ["pgdata:/var/lib/postgresql/data"]
    x-berth: { backup: postgres }
volumes:
  pgdata: {}
"#;

/// pgbench's scale: 2,000,000 accounts, as in the round-trip test.
const SCALE: &str = "20";

/// The pg_dump every tool runs, as the notes write it.
const PG_DUMP: &str = "pg_dump -Fc -U postgres shop";
const PG_RESTORE: &str =
    "pg_restore --clean --if-exists --single-transaction --no-owner -U postgres -d shop";

/// Measures `rounds` rounds and prints the table and the ratios.
pub(super) fn run(berth: &Path, base: &Path, bench: &mut Bench, rounds: usize) -> Result<()> {
    let stack = Stack::up_with(
        berth,
        base,
        &format!("berth-bench-backup-db-{}", std::process::id()),
        COMPOSE,
        "pgdata",
    )?;
    let db = format!("{}-db-1", stack.name);
    crate::cmd::output(Command::new("docker").args([
        "exec", &db, "pgbench", "-i", "-q", "-s", SCALE, "-U", "postgres", "shop",
    ]))
    .context("filling the database with pgbench -i")?;
    let dump = bench.out.join("shop.dump");
    let restic_repo = bench.out.join("restic-db");
    let mut tools: [Figures; 3] = Default::default();
    for round in 1..=rounds {
        crate::interrupt::check()?;
        let _ = fs::remove_dir_all(stack.repository());
        let _ = fs::remove_dir_all(&restic_repo);
        crate::cmd::output(&mut bench.restic(&restic_repo, &["init"]))?;

        // First backups, each of the same database.
        let b_first = bench.timed(&mut stack.berth(&["backup", "create"]))?;
        let b_size = dir_bytes(&stack.repository())?;
        let (first_id, _) = stack.newest()?;
        let d_first = bench.timed(&mut dump_to_file(&db, &dump))?;
        let d_size = fs::metadata(&dump)?.len();
        let r_first = restic_stdin(bench, &db, &restic_repo)?;
        let r_size = dir_bytes(&restic_repo)?;
        crate::interrupt::check()?;

        // Restores into the running server, each replacing every table.
        let b_restore =
            bench.timed(&mut stack.berth(&["backup", "restore", &first_id, "--force"]))?;
        let d_restore = bench.timed(&mut sh(&format!(
            "docker exec -i {db} {PG_RESTORE} < {}",
            dump.display()
        )))?;
        let mut restic_dump = bench.restic(&restic_repo, &["dump", "latest", "shop.dump"]);
        let r_restore = bench.timed_pipe(&mut restic_dump, &mut in_db(&db, PG_RESTORE))?;
        crate::interrupt::check()?;

        // pgbench changes rows for a while; then the second backups.
        crate::cmd::output(Command::new("docker").args([
            "exec", &db, "pgbench", "-n", "-c", "2", "-t", "2000", "-U", "postgres", "shop",
        ]))?;
        let before = dir_bytes(&stack.repository())?;
        let b_second = bench.timed(&mut stack.berth(&["backup", "create"]))?;
        let b_added = dir_bytes(&stack.repository())? - before;
        fs::remove_file(&dump)?;
        let d_second = bench.timed(&mut dump_to_file(&db, &dump))?;
        let d_added = fs::metadata(&dump)?.len();
        let before = dir_bytes(&restic_repo)?;
        let r_second = restic_stdin(bench, &db, &restic_repo)?;
        let r_added = dir_bytes(&restic_repo)? - before;

        let rows = [
            (b_first, b_restore, b_size, b_second, b_added),
            (d_first, d_restore, d_size, d_second, d_added),
            (r_first, r_restore, r_size, r_second, r_added),
        ];
        for ((figures, row), name) in tools
            .iter_mut()
            .zip(rows)
            .zip(["berth", "pg_dump", "restic"])
        {
            figures.record(&format!("db round {round}: {name:<8}"), row);
        }
    }
    let _ = fs::remove_file(&dump);
    let _ = fs::remove_dir_all(&restic_repo);

    println!();
    println!("## Database backup and restore, pgbench -i -s {SCALE} (2,000,000 accounts)");
    println!();
    println!(
        "| tool | backup | restore | repository / dump | second backup | added by the second |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let names = [
        "berth backup create / restore --force",
        "docker exec db pg_dump -Fc > file / pg_restore < file",
        "pg_dump -Fc \\| restic backup --stdin / restic dump \\| pg_restore",
    ];
    for (name, f) in names.iter().zip(&tools) {
        println!(
            "| {name} | {:.2} s | {:.2} s | {} | {:.2} s | {} |",
            secs(median(&f.first)),
            secs(median(&f.restore)),
            size(median_u64(&f.size)),
            secs(median(&f.second)),
            size(median_u64(&f.added))
        );
    }
    println!();
    let [b, d, r] = &tools;
    let ratio = |x: &[Duration], y: &[Duration]| secs(median(x)) / secs(median(y));
    println!(
        "- berth's backup takes {:.2}x the plain dump's time and {:.2}x restic's; its restore \
         {:.2}x the plain pg_restore's and {:.2}x restic's. All three run the same pg_dump \
         and pg_restore in the same server; berth adds the row counts of the dump's own \
         transaction (for verify), and reads back every byte of the snapshot before it \
         restores.",
        ratio(&b.first, &d.first),
        ratio(&b.first, &r.first),
        ratio(&b.restore, &d.restore),
        ratio(&b.restore, &r.restore)
    );
    println!(
        "- The second backup follows `pgbench -n -c 2 -t 2000` (4,000 transactions, each \
         updating an account, a teller and a branch and inserting a history row). A dump is a \
         new file each time; berth and restic store only the chunks that changed."
    );
    drop(stack);
    Ok(())
}

/// `pg_dump -Fc` in the service piped into `restic backup --stdin`, timed.
fn restic_stdin(bench: &mut Bench, db: &str, repo: &Path) -> Result<Duration> {
    let mut restic = bench.restic(
        repo,
        &["backup", "--stdin", "--stdin-filename", "shop.dump"],
    );
    bench.timed_pipe(&mut in_db(db, PG_DUMP), &mut restic)
}

/// `docker exec -i DB COMMAND...`, the command's words split on spaces; standard input is
/// whatever the caller pipes in (nothing, for a dump).
fn in_db(db: &str, command: &str) -> Command {
    let mut c = Command::new("docker");
    c.args(["exec", "-i", db]).args(command.split(' '));
    c
}

/// The notes' `docker exec db pg_dump -Fc > file`.
fn dump_to_file(db: &str, file: &Path) -> Command {
    sh(&format!("docker exec {db} {PG_DUMP} > {}", file.display()))
}

/// `sh -c LINE`, with `set -o pipefail` so that a failed pg_dump fails the pipe.
fn sh(line: &str) -> Command {
    let mut c = Command::new("bash");
    c.args(["-o", "pipefail", "-c", line]);
    c
}
