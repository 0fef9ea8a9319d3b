//! `berth exec` and `berth run` stream standard input into the container and deliver its end,
//! as `docker compose exec -T` does, and exit with the command's own code (issue #14 item 2).

mod harness;
use berth_test_support::{docker, unique_name, POSTGRES_IMAGE};
use harness::{Berth, ProjectGuard};
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const STACK: &str = r#"
services:
  db:
    image: berth/postgres:15
    environment:
      POSTGRES_PASSWORD: secret
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 1s
      retries: 30
"#;

/// Runs berth with `input` as its standard input (a file, as `< dump.sql` gives).
fn with_stdin(b: &Berth, args: &[&str], input: &std::path::Path) -> Output {
    let mut cmd = b.command(args);
    cmd.stdin(std::fs::File::open(input).unwrap());
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// issue #14 item 2: a ~10 MB SQL file given to `berth exec -T db psql` loads completely;
/// `exec` with and without -T and `run -T` pass stdin through byte for byte, see its end, and
/// exit with the command's own code; a stdin that never ends does not keep berth waiting once
/// the command has exited.
#[test]
fn exec_and_run_stream_stdin_and_pass_the_exit_code_through() {
    // The postgres image is built by `cargo xtask test-images`; fail clearly without it.
    docker(&["image", "inspect", "-f", "{{.Id}}", POSTGRES_IMAGE]);
    let project = unique_name("berth-stdin").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let b = Berth::project(&[("compose.yaml", STACK)]).args(&["-p", &project]);
    b.with(&["up", "-d", "--wait"]).success();

    // A dump of 100,000 rows, about 10 MB, loaded with COPY as pg_dump writes it.
    let rows = 100_000;
    let dump = b.dir().join("dump.sql");
    let mut sql = String::from(
        "CREATE TABLE t (id int PRIMARY KEY, pad text);\nCOPY t (id, pad) FROM stdin;\n",
    );
    let pad = "x".repeat(96);
    for i in 0..rows {
        sql.push_str(&format!("{i}\t{pad}\n"));
    }
    sql.push_str("\\.\n");
    std::fs::write(&dump, &sql).unwrap();
    assert!(sql.len() > 10_000_000, "{}", sql.len());
    let load = with_stdin(
        &b,
        &[
            "exec",
            "-T",
            "db",
            "psql",
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ],
        &dump,
    );
    assert_eq!(load.status.code(), Some(0), "{}", text(&load));
    let count = b.with(&[
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "postgres",
        "-tAc",
        "SELECT count(*), sum(length(pad)) FROM t",
    ]);
    count.success();
    assert_eq!(count.stdout.trim(), format!("{rows}|{}", rows * 96));

    // Byte for byte, and the end of input reaches the command (`cat` would wait otherwise).
    let input: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let file = b.dir().join("input.bin");
    std::fs::write(&file, &input).unwrap();
    let echoed = with_stdin(&b, &["exec", "-T", "db", "cat"], &file);
    assert_eq!(echoed.status.code(), Some(0), "{}", text(&echoed));
    assert!(
        echoed.stdout == input,
        "cat gave back {} bytes of {}",
        echoed.stdout.len(),
        input.len()
    );

    // The command's own exit code, with stdin consumed first; with and without -T (stdin is
    // not a terminal here, so no TTY either way, as in Compose).
    let script = "n=$(wc -c); echo \"$n\"; exit 3";
    for args in [
        &["exec", "-T", "db", "sh", "-c", script][..],
        &["exec", "db", "sh", "-c", script][..],
        &[
            "run",
            "--rm",
            "-T",
            "--entrypoint",
            "sh",
            "db",
            "-c",
            script,
        ][..],
        &["run", "--rm", "--entrypoint", "sh", "db", "-c", script][..],
    ] {
        let out = with_stdin(&b, args, &file);
        assert_eq!(
            out.status.code(),
            Some(3),
            "berth {}: {}",
            args.join(" "),
            text(&out)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            input.len().to_string(),
            "berth {}: {}",
            args.join(" "),
            text(&out)
        );
    }

    // issue #14 item 5: a reader of the output that went away (`berth exec … | head -1`)
    // ends exec and run quietly with exit 0, not with "the connection broke".
    for args in [
        &["exec", "-T", "db", "seq", "1", "3000000"][..],
        &[
            "run",
            "--rm",
            "-T",
            "--entrypoint",
            "seq",
            "db",
            "1",
            "3000000",
        ][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = b
            .command(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "berth {}: {}",
            args.join(" "),
            text(&out)
        );
        assert!(
            out.stderr.is_empty(),
            "berth {}: {}",
            args.join(" "),
            text(&out)
        );
    }

    // A stdin nobody closes (a CI runner's pipe): berth ends with the command all the same.
    for args in [
        &["exec", "-T", "db", "true"][..],
        &["run", "--rm", "-T", "--entrypoint", "true", "db"][..],
    ] {
        let mut child = b
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut open = child.stdin.take().unwrap();
        open.write_all(b"some input\n").unwrap();
        // A failure guard only: the command itself ends at once.
        let guard = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > guard {
                child.kill().unwrap();
                panic!(
                    "berth {} did not end while its stdin stayed open",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        drop(open);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "berth {}: {}",
            args.join(" "),
            text(&out)
        );
    }
}
