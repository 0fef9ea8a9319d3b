//! Messages that must not mislead (issue #14 item 8): suggestions for unknown commands,
//! progress lines of `up`, and the `releases` table.

mod harness;
use berth_deploy::store::{NewRelease, Outcome, ServiceImage, Store};
use berth_test_support::{docker, unique_name, TESTAPP_IMAGE};
use harness::{Berth, ProjectGuard};

/// Every command that changes state; none may ever be suggested for a mistyped command.
const MUTATING: &[&str] = &[
    "up",
    "down",
    "exec",
    "run",
    "stop",
    "start",
    "restart",
    "systemd",
    "deploy",
    "rollback",
    "promote",
    "abort",
    "boot",
    "route",
    "weights",
    "pause",
    "resume",
    "maintenance",
    "add",
    "rm",
];

/// The lines of `stderr` that suggest something, with the names they suggest.
fn suggested(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("tip") || l.contains("did you mean"))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// issue #14 item 8: `berth status` suggests the read-only `ps` (and `proxy status`), never
/// `start`; no mistyped command gets a mutating command suggested, at the top level or under
/// `proxy`.
#[test]
fn unknown_commands_only_ever_get_read_only_suggestions() {
    let b = Berth::project(&[]);
    let status = b.with(&["status"]);
    status.code(2).no_panic();
    let words = suggested(&status.stderr);
    assert!(words.iter().any(|w| w == "ps"), "{}", status.stderr);
    assert!(!words.iter().any(|w| w == "start"), "{}", status.stderr);
    assert!(status.stderr.contains("proxy status"), "{}", status.stderr);

    for typo in [
        &["stat"][..],
        &["stp"],
        &["strat"],
        &["restat"],
        &["dwn"],
        &["deplo"],
        &["rollbak"],
        &["promot"],
        &["abrt"],
        &["upp"],
        &["exe"],
        &["rnu"],
        &["systemdd"],
        &["proxy", "rout"],
        &["proxy", "boo"],
        &["proxy", "paus"],
        &["proxy", "weight"],
        &["proxy", "stauts"],
    ] {
        let out = b.with(typo);
        out.code(2).no_panic();
        for w in suggested(&out.stderr) {
            assert!(
                !MUTATING.contains(&w.as_str()),
                "berth {} suggests the mutating `{w}`:\n{}",
                typo.join(" "),
                out.stderr
            );
        }
    }
    // Read-only commands are still suggested.
    let logs = b.with(&["log"]);
    logs.code(2);
    assert!(
        suggested(&logs.stderr).iter().any(|w| w == "logs"),
        "{}",
        logs.stderr
    );
    let proxy = b.with(&["proxy", "stauts"]);
    assert!(
        suggested(&proxy.stderr).iter().any(|w| w == "status"),
        "{}",
        proxy.stderr
    );
}

/// issue #14 item 8: one `up --wait` announces the wait for a dependency once, although it
/// waits for it both as a dependency and for `--wait`.
#[test]
fn up_announces_each_wait_once() {
    docker(&["image", "inspect", "-f", "{{.Id}}", TESTAPP_IMAGE]);
    let project = unique_name("berth-wait1").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let stack = r#"
services:
  db:
    image: berth/testapp:latest
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 1s
      retries: 10
  web:
    image: berth/testapp:latest
    depends_on:
      db: { condition: service_healthy }
"#;
    let b = Berth::project(&[("compose.yaml", stack)]).args(&["-p", &project]);
    let out = b.with(&["up", "-d", "--wait"]);
    out.success();
    let count = |needle: &str| out.stdout.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("waiting for db to be healthy"), 1, "{}", out.stdout);
    assert_eq!(count("db is healthy"), 1, "{}", out.stdout);
}

/// issue #14 item 8: the `releases` table's columns line up whatever the cells hold: a long
/// status, a long strategy or a long commit push the column, never the next one's text.
#[test]
fn the_releases_table_pads_every_column_to_its_widest_cell() {
    let state = tempfile::tempdir().unwrap();
    let project = unique_name("berth-table").to_lowercase();
    let mut store = Store::open(state.path().join("state.db")).unwrap();
    let image = |service: &str| ServiceImage {
        service: service.into(),
        image_ref: "app:v1".into(),
        image_id: "sha256:0123456789abcdef0123".into(),
        config_hash: "h".into(),
    };
    let new = |strategy: &str, rollback_of: Option<u64>| NewRelease {
        git_commit: Some("0123456789abcdef".into()),
        config_hash: "h".into(),
        strategy: strategy.into(),
        services: vec![image("web"), image("worker")],
        rollback_of,
    };
    for (strategy, rollback_of, outcome) in [
        ("rolling", None, Outcome::Succeeded),
        (
            "blue-green",
            None,
            Outcome::RolledBack("web failed its health check".into()),
        ),
        ("canary", Some(1), Outcome::Succeeded),
        ("blue-green", Some(1), Outcome::Interrupted("killed".into())),
    ] {
        let r = store
            .begin_release(&project, &new(strategy, rollback_of))
            .unwrap();
        store.finish_release(&project, r.number, outcome).unwrap();
    }
    drop(store);

    let b = Berth::project(&[("compose.yaml", "services:\n  web:\n    image: x\n")])
        .args(&["-p", &project])
        .env("BERTH_STATE_DIR", state.path().to_str().unwrap());
    let out = b.with(&["releases"]);
    out.success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header = lines[0];
    let columns = [
        "RELEASE", "CREATED", "STATUS", "STRATEGY", "DURATION", "COMMIT", "IMAGES",
    ];
    let starts: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .find(c)
                .unwrap_or_else(|| panic!("no {c} in {header:?}"))
        })
        .collect();
    let rows: Vec<&str> = lines[1..]
        .iter()
        .copied()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    assert_eq!(rows.len(), 4, "{}", out.stdout);
    let cell = |row: &str, i: usize| -> String {
        let chars: Vec<char> = row.chars().collect();
        let end = starts
            .get(i + 1)
            .copied()
            .unwrap_or(chars.len())
            .min(chars.len());
        chars[starts[i].min(chars.len())..end]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    };
    for row in &rows {
        let number = cell(row, 0);
        let (status, strategy) = match number.as_str() {
            "1" => ("succeeded", "rolling"),
            "2" => ("rolled_back", "blue-green"),
            "3" => ("succeeded (rollback to 1)", "canary"),
            "4" => ("interrupted (rollback to 1)", "blue-green"),
            other => panic!("release {other:?} in\n{}", out.stdout),
        };
        assert_eq!(cell(row, 2), status, "{}", out.stdout);
        assert_eq!(cell(row, 3), strategy, "{}", out.stdout);
        assert_eq!(cell(row, 5), "0123456789ab", "{}", out.stdout);
        assert_eq!(
            cell(row, 6),
            "web=0123456789ab worker=0123456789ab",
            "{}",
            out.stdout
        );
    }
}

/// issue #14 item 8: `proxy status` of a proxy booted as a container shows the address the
/// host reaches it on (published on 127.0.0.1 here), not the container's own 0.0.0.0:80.
#[test]
fn proxy_status_shows_the_published_listener() {
    berth_test_support::ensure_test_images();
    let binary = berth_test_support::static_berth_binary();
    let tmp = tempfile::tempdir().unwrap();
    let container = unique_name("berth-proxy-status");
    let _guard = berth_test_support::Container::adopt(container.clone());
    let socket = tmp.path().join("run/proxy.sock");
    let port = harness::free_port();
    let berth = |args: &[&str]| {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("berth"))
            .env("BERTH_PROXY_CONTAINER", &container)
            .env_remove("BERTH_PROXY_SOCKET")
            .arg("proxy")
            .arg("--admin-socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        harness::Outcome::from(out)
    };
    let data = tmp.path().join("data");
    berth(&[
        "boot",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        data.to_str().unwrap(),
        "--binary",
        binary.to_str().unwrap(),
    ])
    .success();
    let status = berth(&["status"]);
    status
        .success()
        .stdout_has(&format!("listening on 127.0.0.1:{port}"));
    assert!(!status.stdout.contains("0.0.0.0:80"), "{}", status.stdout);
}
