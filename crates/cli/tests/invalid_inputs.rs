//! Bad input through the real binary: every case exits 2, names file:line:column and what is
//! wrong, and never panics (issue #2).

mod harness;
use harness::Berth;

/// (name, files, file that is at fault, line, message fragment)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    u32,
    &'static str,
);

const CASES: &[Case] = &[
    ("typo in a service key", &[("compose.yaml", "services:\n  web:\n    image: nginx\n    pots: [\"80:80\"]\n")], "compose.yaml", 4, "did you mean `ports`"),
    ("typo at the top level", &[("compose.yaml", "service:\n  web:\n    image: nginx\n")], "compose.yaml", 1, "unknown key `service`"),
    ("ports is not a sequence", &[("compose.yaml", "services:\n  web:\n    image: nginx\n    ports: 8080\n")], "compose.yaml", 4, "ports"),
    ("port number out of range", &[("compose.yaml", "services:\n  web:\n    image: nginx\n    ports: [\"80800:80\"]\n")], "compose.yaml", 4, "invalid port"),
    ("unknown port protocol", &[("compose.yaml", "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80/xyz\"\n")], "compose.yaml", 5, "protocol"),
    ("bad healthcheck duration", &[("compose.yaml", "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 10x\n")], "compose.yaml", 6, "duration"),
    ("bad stop_grace_period", &[("compose.yaml", "services:\n  web:\n    image: nginx\n    stop_grace_period: soon\n")], "compose.yaml", 4, "duration"),
    ("dependency cycle", &[("compose.yaml", "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n")], "compose.yaml", 0, "dependency cycle"),
    ("depends_on an undefined service", &[("compose.yaml", "services:\n  web:\n    image: x\n    depends_on: [dbb]\n  db:\n    image: postgres\n")], "compose.yaml", 4, "did you mean `db`"),
    ("depends_on a service whose profile is off", &[("compose.yaml", "services:\n  web:\n    image: x\n    depends_on: [db]\n  db:\n    image: postgres\n    profiles: [data]\n")], "compose.yaml", 4, "--profile data"),
    ("undeclared named volume", &[("compose.yaml", "services:\n  db:\n    image: postgres\n    volumes:\n      - pgdata:/var/lib/postgresql/data\n")], "compose.yaml", 5, "volume `pgdata`"),
    ("undeclared network", &[("compose.yaml", "services:\n  web:\n    image: x\n    networks: [front]\n")], "compose.yaml", 4, "network `front`"),
    ("undeclared secret", &[("compose.yaml", "services:\n  web:\n    image: x\n    secrets: [token]\n")], "compose.yaml", 4, "secret `token`"),
    ("required variable missing", &[("compose.yaml", "services:\n  db:\n    image: postgres\n    environment:\n      POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}\n")], "compose.yaml", 5, "set DB_PASSWORD in .env"),
    ("malformed interpolation", &[("compose.yaml", "services:\n  web:\n    image: \"nginx:${TAG\"\n")], "compose.yaml", 3, "interpolation"),
    ("YAML syntax error", &[("compose.yaml", "services:\n  web:\n    image: [nginx\n    ports: []\n")], "compose.yaml", 0, "invalid YAML"),
    ("duplicate key", &[("compose.yaml", "services:\n  web:\n    image: a\n    image: b\n")], "compose.yaml", 4, "defined twice"),
    ("top level is a list", &[("compose.yaml", "- services\n")], "compose.yaml", 1, "must be a mapping"),
    ("service without image or build", &[("compose.yaml", "services:\n  web:\n    restart: always\n")], "compose.yaml", 3, "neither an image nor a build"),
    ("invalid restart policy", &[("compose.yaml", "services:\n  web:\n    image: x\n    restart: sometimes\n")], "compose.yaml", 4, "restart"),
    ("invalid depends_on condition", &[("compose.yaml", "services:\n  web:\n    image: x\n    depends_on:\n      db:\n        condition: service_ready\n  db:\n    image: y\n")], "compose.yaml", 6, "condition"),
    ("unknown x-berth strategy", &[("compose.yaml", "services:\n  web:\n    image: x\n    x-berth:\n      strategy: yolo\n")], "compose.yaml", 5, "unknown strategy"),
    ("x-berth proxy without port", &[("compose.yaml", "services:\n  web:\n    image: x\n    x-berth:\n      proxy: {host: a.example.com}\n")], "compose.yaml", 5, "needs a `host` and a `port`"),
    ("invalid service name", &[("compose.yaml", "services:\n  web app:\n    image: x\n")], "compose.yaml", 2, "web app"),
    ("relative container path", &[("compose.yaml", "services:\n  web:\n    image: x\n    volumes: [\"data:app\"]\nvolumes:\n  data: {}\n")], "compose.yaml", 4, "must be absolute"),
    ("circular extends", &[("compose.yaml", "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n")], "compose.yaml", 0, "circular extends"),
    ("unterminated quote in command", &[("compose.yaml", "services:\n  web:\n    image: x\n    command: echo 'hi\n")], "compose.yaml", 4, "unterminated"),
    ("unterminated quote in .env", &[("compose.yaml", "services:\n  web:\n    image: \"x:${TAG}\"\n"), (".env", "A=1\nTAG=\"v1\n")], ".env", 2, ""),
    ("include of a missing file", &[("compose.yaml", "include:\n  - ./nope/compose.yaml\nservices:\n  web:\n    image: x\n")], "compose.yaml", 2, "does not exist"),
    ("environment of the wrong type", &[("compose.yaml", "services:\n  web:\n    image: x\n    environment: 5\n")], "compose.yaml", 4, "environment"),
    ("bad canary steps", &[("compose.yaml", "services:\n  web:\n    image: x\n    x-berth:\n      canary: {steps: [50, 10]}\n")], "compose.yaml", 5, "ascending"),
];

#[test]
fn every_invalid_input_exits_2_with_a_located_message() {
    assert!(CASES.len() >= 20);
    let mut failures = Vec::new();
    for (name, files, file, line, needle) in CASES {
        let out = Berth::project(files).args(&["config"]).run();
        let located = if *line == 0 {
            // The line is not fixed by the case (several are valid), but a line must be named.
            out.stderr.contains(&format!("{file}:"))
        } else {
            out.stderr.contains(&format!("{file}:{line}:"))
        };
        if out.code != 2
            || !located
            || !out.stderr.contains(needle)
            || out.stderr.contains("panicked")
        {
            failures.push(format!(
                "{name}: exit {} (want 2), want {file}:{line} and {needle:?}\n{}",
                out.code, out.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn missing_compose_file_says_what_to_do() {
    Berth::project(&[])
        .args(&["config"])
        .run()
        .code(2)
        .stderr_has("no compose file found")
        .stderr_has("-f")
        .no_panic();
    Berth::project(&[])
        .args(&["-f", "nope.yaml", "config"])
        .run()
        .code(2)
        .stderr_has("nope.yaml")
        .no_panic();
}

#[test]
fn bad_usage_exits_2() {
    Berth::project(&[])
        .args(&["config", "--format", "xml"])
        .run()
        .code(2);
    Berth::project(&[]).args(&["no-such-command"]).run().code(2);
}
