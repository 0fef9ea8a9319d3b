//! `berth config` through the real binary.

mod harness;
use harness::Berth;

const APP: &str = "services:\n  web:\n    image: \"nginx:${TAG:-1.27}\"\n    ports: [\"8080:80\"]\n    volumes: [data:/data]\n  worker:\n    image: worker\n    profiles: [jobs]\nvolumes:\n  data: {}\n";

#[test]
fn prints_the_canonical_yaml() {
    let b = Berth::project(&[("compose.yaml", APP)]);
    let out = b.args(&["config"]).run();
    out.success()
        .stdout_has("name: app\n")
        .stdout_has("    image: nginx:1.27\n")
        .stdout_has("        published: \"8080\"\n")
        .stdout_has("    name: app_data\n");
    assert!(!out.stdout.contains("worker"));
}

#[test]
fn json_format_and_listings() {
    let b = Berth::project(&[("compose.yaml", APP)]).env("TAG", "2");
    let out = b.args(&["config", "--format", "json"]).run();
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["services"]["web"]["image"], "nginx:2");
    assert_eq!(v["services"]["web"]["ports"][0]["target"], 80);

    let b = Berth::project(&[("compose.yaml", APP)]);
    assert_eq!(
        b.args(&["--profile", "jobs", "config", "--services"])
            .run()
            .stdout,
        "web\nworker\n"
    );
    let b = Berth::project(&[("compose.yaml", APP)]);
    assert_eq!(b.args(&["config", "--volumes"]).run().stdout, "data\n");
    let b = Berth::project(&[("compose.yaml", APP)]);
    assert_eq!(b.args(&["config", "--profiles"]).run().stdout, "jobs\n");
}

#[test]
fn quiet_validates_and_output_writes_atomically() {
    let b = Berth::project(&[("compose.yaml", APP)]);
    let out = b.args(&["config", "-q"]).run();
    out.success();
    assert!(out.stdout.is_empty());
    let b = Berth::project(&[("compose.yaml", APP)]).args(&["config", "-o", "out.yaml"]);
    let target = b.dir().join("out.yaml");
    b.run().success();
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("name: app\n"));
    let leftovers: Vec<_> = std::fs::read_dir(b.dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn global_flags_follow_compose() {
    let files = [
        ("compose.yaml", APP),
        (
            "compose.dev.yaml",
            "services:\n  web:\n    ports: [\"5678:5678\"]\n",
        ),
        ("prod.env", "TAG=prod\n"),
    ];
    let out = Berth::project(&files)
        .args(&["--dev", "config", "--format", "json"])
        .run();
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["services"]["web"]["ports"].as_array().unwrap().len(), 2);
    let out = Berth::project(&files)
        .args(&[
            "-p",
            "shop",
            "--env-file",
            "prod.env",
            "config",
            "--format",
            "json",
        ])
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["name"], "shop");
    assert_eq!(v["services"]["web"]["image"], "nginx:prod");
    let out = Berth::project(&files)
        .env("COMPOSE_PROJECT_NAME", "envname")
        .args(&["config", "--format", "json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["name"], "envname");
}

#[test]
fn unset_variables_warn_on_stderr() {
    let out = Berth::project(&[(
        "compose.yaml",
        "services:\n  web:\n    image: \"nginx:${NOPE}\"\n",
    )])
    .args(&["config"])
    .run();
    out.success()
        .stderr_has("warning: the \"NOPE\" variable is not set");
}

/// issue #14 item 9: an interpolated boolean (`healthcheck.disable: ${OFF}`) is converted to a
/// boolean, as Compose does, and printed as one; it used to end in "internal error: ... does
/// not fit berth's model". One that does not convert is a located error with exit 2.
#[test]
fn interpolated_booleans_are_booleans() {
    let text = "services:\n  web:\n    image: nginx\n    read_only: ${RO}\n    healthcheck:\n      disable: ${OFF}\n";
    let out = Berth::project(&[("compose.yaml", text)])
        .env("OFF", "true")
        .env("RO", "yes")
        .args(&["config"])
        .run();
    out.success()
        .stdout_has("      disable: true\n")
        .stdout_has("    read_only: true\n");
    let out = Berth::project(&[("compose.yaml", text)])
        .env("OFF", "maybe")
        .env("RO", "no")
        .args(&["config"])
        .run();
    out.code(2)
        .no_panic()
        .stderr_has("compose.yaml:6:")
        .stderr_has("invalid boolean `maybe`");
    assert!(!out.stderr.contains("internal error"), "{}", out.stderr);
}
