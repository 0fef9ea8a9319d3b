//! `berth build`, `up --build` and `deploy --build` with BuildKit through the engine's
//! session API, on the real engine (#17): the Python-style sample in fixtures/build-sample
//! (multi-stage, a cache mount on its dependency install, a bind mount from a stage, a build
//! secret) built, rebuilt after a one-line change, and checked against the engine's own
//! figures; and the bad-input paths.

mod harness;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use berth_test_support::{docker, docker_output, ensure_test_images, unique_name, wait_for};
use harness::stage::Stage;
use harness::{Berth, ProjectGuard};
use serde_json::Value;

/// The sample's files, from fixtures/build-sample.
fn sample_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-sample");
    let mut out = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(&root).unwrap().display().to_string();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// Writes the sample into `berth`'s project directory, with `secret` as the build secret,
/// and returns its SAMPLE_ID. The id (in .env) keeps this copy's build cache and cache-mount
/// directory apart from every other build of the sample on the engine, so what a test sees
/// cached is what it built itself.
fn write_sample(berth: &Berth, secret: &str) -> String {
    for (name, text) in sample_files() {
        berth.write(&name, &text);
    }
    let pip = berth.dir().join("tools/pip");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pip, std::fs::Permissions::from_mode(0o755)).unwrap();
    berth.write("pip_token.txt", secret);
    let id = unique_name("sample");
    berth.write(".env", &format!("SAMPLE_ID={id}\n"));
    id
}

/// An image removed when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker_output(&["image", "rm", "-f", &self.0]);
    }
}

fn json(out: &harness::Outcome) -> Value {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|err| panic!("not JSON ({err}):\n{}\nstderr:\n{}", out.stdout, out.stderr))
}

/// The service's report from `berth build --format json`, checked against the shape every
/// report has.
fn report(doc: &Value) -> &Value {
    let services = doc["services"].as_array().expect("services is a list");
    assert_eq!(services.len(), 1, "{doc}");
    let r = &services[0];
    for key in ["service", "image", "image_id", "builder"] {
        assert!(r[key].is_string(), "{key} in {r}");
    }
    for key in [
        "wall_seconds",
        "steps",
        "steps_run",
        "steps_cached",
        "context_bytes",
        "context_files",
        "size_bytes",
    ] {
        assert!(r[key].is_number(), "{key} in {r}");
    }
    assert_eq!(
        r["steps"].as_u64().unwrap(),
        r["steps_run"].as_u64().unwrap() + r["steps_cached"].as_u64().unwrap()
    );
    assert!(r["slowest"].as_array().unwrap().len() <= 3);
    for layer in r["layers"].as_array().unwrap() {
        assert!(layer["created_by"].is_string() && layer["size_bytes"].as_i64().unwrap() > 0);
    }
    for advice in r["advice"].as_array().unwrap() {
        assert!(
            advice["rule"].is_string() && advice["line"].is_number() && advice["file"].is_string()
        );
    }
    r
}

/// Runs a command in a throwaway container of `image` and returns its output.
fn run_in(image: &str, command: &[&str]) -> String {
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        command[0],
        image,
    ];
    args.extend_from_slice(&command[1..]);
    docker(&args)
}

/// Every file of every layer of `image`, exported with `docker save`, searched for `needle`.
fn layers_contain(image: &str, needle: &[u8]) -> bool {
    let saved = docker_output(&["save", image]);
    assert!(saved.status.success());
    let mut outer = tar::Archive::new(saved.stdout.as_slice());
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        // A layer is a tar of its own; search its files too.
        if entry
            .path()
            .unwrap()
            .to_string_lossy()
            .ends_with("layer.tar")
        {
            let mut inner = tar::Archive::new(bytes.as_slice());
            for file in inner.entries().unwrap() {
                let mut file = file.unwrap();
                let mut content = Vec::new();
                file.read_to_end(&mut content).unwrap();
                if content.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
    false
}

#[test]
fn the_sample_builds_with_buildkit_rebuilds_from_cache_and_keeps_its_secret_out() {
    ensure_test_images();
    let project = unique_name("berth-build").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let _image = Image(format!("{project}-web"));
    let berth = Berth::project(&[]).args(&["-p", &project]);
    let secret = format!("tok-{}", unique_name("secret"));
    let id = write_sample(&berth, &secret);

    // First build: every step runs, the secret reaches its step, the report matches the
    // engine's own figures.
    let first = berth.with(&["build", "--format", "json", "--progress", "json"]);
    first.code(0);
    let doc = json(&first);
    let r = report(&doc);
    assert_eq!(r["builder"], "buildkit", "{r}");
    let image = r["image"].as_str().unwrap().to_string();
    assert_eq!(image, format!("{project}-web"));
    assert_eq!(
        r["image_id"].as_str().unwrap(),
        docker(&["image", "inspect", "--format", "{{.Id}}", &image])
    );
    assert_eq!(
        r["size_bytes"].as_i64().unwrap().to_string(),
        docker(&["image", "inspect", "--format", "{{.Size}}", &image])
    );
    let layer_sum: i64 = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size_bytes"].as_i64().unwrap())
        .sum();
    assert_eq!(layer_sum, r["size_bytes"].as_i64().unwrap(), "{r}");
    // The steps are BuildKit's, from its status stream: two stages' FROM, COPY and RUN steps.
    let events: Vec<Value> = first
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let steps: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        r["steps"].as_u64().unwrap() as usize,
        steps.len(),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("[deps ") && s.contains("tools/pip install")),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("[app ") && s.contains("--mount=type=bind,from=deps")),
        "{steps:?}"
    );
    assert!(events
        .iter()
        .any(|e| e["event"] == "output"
            && e["line"].as_str().unwrap().contains("Downloading greeting")));
    assert_eq!(
        run_in(&image, &["cat", "/install/BUILD-INFO"]),
        format!(
            "token mounted, {} bytes\nprevious marker: none\ncache: /root/.cache/pip/{id}",
            secret.len()
        )
    );
    // The bind mount from the deps stage saw what it installed.
    assert_eq!(
        run_in(&image, &["cat", "/app/manifest.txt"]),
        "BUILD-INFO\ncolours\ngreeting"
    );
    // The secret is in no layer of the image.
    assert!(
        !layers_contain(&image, secret.as_bytes()),
        "the build secret is in a layer"
    );
    // The sample follows the seeds' checklist, so there is nothing to advise.
    assert_eq!(r["advice"], serde_json::json!([]), "{r}");

    // A one-line source change: the dependency install is answered from the cache.
    let app = std::fs::read_to_string(berth.dir().join("app.py")).unwrap();
    berth.write(
        "app.py",
        &app.replace("VERSION = \"v1\"", "VERSION = \"v2\""),
    );
    let second = berth.with(&["build", "--format", "json", "--progress", "plain"]);
    second.code(0);
    let doc = json(&second);
    let r = report(&doc);
    assert!(
        second
            .stderr
            .lines()
            .any(|l| l.contains("tools/pip install") && l.ends_with(": cached")),
        "the dependency step was not cached:\n{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .lines()
            .any(|l| l.contains("COPY app.py") && l.contains("done in")),
        "{}",
        second.stderr
    );
    assert!(r["steps_cached"].as_u64().unwrap() >= 5, "{r}");
    assert!(
        !r["slowest"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"].as_str().unwrap().contains("pip install")),
        "{r}"
    );

    // The cache mount outlives the build: a changed marker re-runs the install, which finds
    // the packages and the previous marker in the cache.
    let third = berth
        .command(&["build", "--format", "json", "--progress", "plain"])
        .env("CACHE_MARKER", "second")
        .output()
        .map(harness::Outcome::from)
        .unwrap();
    third.code(0);
    assert_eq!(
        run_in(&image, &["cat", "/install/BUILD-INFO"]),
        format!(
            "token mounted, {} bytes\nprevious marker: first\ncache: /root/.cache/pip/{id}",
            secret.len()
        )
    );

    // The text report names the figures.
    let text = berth.with(&["build"]);
    text.code(0)
        .stdout_has("context sent:")
        .stdout_has("slowest steps:")
        .stdout_has("buildkit");
}

#[test]
fn the_sample_runs_under_up_build_and_deploy_build() {
    ensure_test_images();
    let project = unique_name("berth-bup").to_lowercase();
    let stage = Stage::new(&project, "services: {}\n");
    let _image = Image(format!("{project}-web"));
    write_sample(&stage.berth, "token-for-up");

    stage.run(&["up", "-d", "--build", "--wait"]).code(0);
    let id = harness::service_ids(&project, "web", false);
    assert_eq!(id.len(), 1);
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        &id[0],
    ]);
    let ip = ip.split_whitespace().next().unwrap().to_string();
    let body = berth_test_support::http_get(format!("{ip}:8000").parse().unwrap(), "/")
        .unwrap()
        .body;
    assert_eq!(
        body.trim(),
        "hello, berth teal v1 BUILD-INFO,colours,greeting"
    );

    // deploy --build rebuilds the changed source and rolls it out behind the proxy.
    let app = std::fs::read_to_string(stage.berth.dir().join("app.py")).unwrap();
    stage.berth.write(
        "app.py",
        &app.replace("VERSION = \"v1\"", "VERSION = \"v2\""),
    );
    stage.run(&["deploy", "--build"]).code(0);
    wait_for(
        "the deployed v2 behind the proxy",
        Duration::from_secs(30),
        || {
            berth_test_support::http_get_host(stage.proxy_addr, "sample.test", "/")
                .map(|r| r.body.contains(" v2 "))
                .unwrap_or(false)
        },
    );
}

#[test]
fn bad_dockerfiles_and_missing_bases_are_refused_before_anything_is_sent() {
    ensure_test_images();
    let project = unique_name("berth-bbad").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let berth = Berth::project(&[("compose.yaml", "services:\n  web:\n    build: .\n")])
        .args(&["-p", &project]);

    // A syntax error names the Dockerfile and line, exit 2.
    berth.write("Dockerfile", "FROM berth/python:3.11\nRUNN pip install x\n");
    let out = berth.with(&["build"]);
    out.code(2)
        .stderr_has("Dockerfile:2:1: unknown instruction `RUNN`")
        .stderr_has("did you mean RUN?");

    // A base image that is not on the engine: one line that says so, exit 2.
    berth.write("Dockerfile", "FROM python:3.12-slim\nRUN true\n");
    let out = berth.with(&["build"]);
    out.code(2).stderr_has("base image python:3.12-slim");
    assert!(
        out.stderr.contains("is not present locally"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // This engine's Dockerfile frontend predates COPY --link: said with the line, exit 2.
    berth.write(
        "Dockerfile",
        "FROM berth/python:3.11\nCOPY --link Dockerfile /\n",
    );
    berth
        .with(&["build"])
        .code(2)
        .stderr_has("Dockerfile:2: COPY --link needs the Dockerfile frontend 1.4");

    // A failing step: its command and last output lines, exit 1.
    berth.write(
        "Dockerfile",
        "FROM berth/python:3.11\nRUN echo about to fail && echo 'no such package: nope' && exit 3\n",
    );
    let out = berth.with(&["build"]);
    out.code(1)
        .stderr_has("RUN echo about to fail")
        .stderr_has("no such package: nope")
        .stderr_has("exit code: 3");

    // A service without `build:` named on the command line.
    berth.write(
        "compose.yaml",
        "services:\n  web:\n    build: .\n  db:\n    image: berth/postgres:15\n",
    );
    berth
        .with(&["build", "db"])
        .code(2)
        .stderr_has("service `db` has no `build:`");
}

#[test]
fn ctrl_c_cancels_the_build_and_tags_nothing() {
    ensure_test_images();
    let project = unique_name("berth-bint").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let image = format!("{project}-web");
    let _image = Image(image.clone());
    let berth = Berth::project(&[
        ("compose.yaml", "services:\n  web:\n    build: .\n"),
        (
            "Dockerfile",
            "FROM berth/python:3.11\nRUN echo started && sleep 120\n",
        ),
    ])
    .args(&["-p", &project]);
    let mut child = berth
        .command(&["build", "--progress", "plain"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the long step runs, then interrupt as a terminal's Ctrl-C does.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            panic!("berth build ended before the step started:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains("RUN echo started") {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    // BuildKit stopped: no build is left running the sleep, and nothing was tagged.
    wait_for(
        "the cancelled build's step to end",
        Duration::from_secs(30),
        || {
            !docker(&["ps", "-q", "--no-trunc"]).contains("sleep 120")
                && std::process::Command::new("pgrep")
                    .args(["-f", "sleep 120"])
                    .output()
                    .map(|o| o.stdout.is_empty())
                    .unwrap_or(true)
        },
    );
    let inspect = docker_output(&["image", "inspect", &image]);
    assert!(
        !inspect.status.success(),
        "the interrupted build tagged {image}"
    );
}

#[test]
fn advice_names_the_lines_the_seeds_checklist_would() {
    ensure_test_images();
    let project = unique_name("berth-badv").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let _image = Image(format!("{project}-web"));
    let berth = Berth::project(&[]).args(&["-p", &project]);
    write_sample(&berth, "unused");
    // The sample written the way the seeds warn against: the whole source copied before the
    // install, no cache mount, and a context that sends .git.
    berth.write(
        "Dockerfile",
        "FROM berth/python:3.11\nWORKDIR /src\nCOPY . .\nRUN tools/pip install -r requirements.txt --target /install --marker x\nCMD [\"python3\", \"app.py\"]\n",
    );
    berth.write(".dockerignore", "pip_token.txt\n");
    berth.write(".git/HEAD", "ref: refs/heads/main\n");
    berth.with(&["build", "--format", "json"]).code(0);
    let app = std::fs::read_to_string(berth.dir().join("app.py")).unwrap();
    berth.write(
        "app.py",
        &app.replace("VERSION = \"v1\"", "VERSION = \"v2\""),
    );
    let out = berth.with(&["build", "--format", "json"]);
    out.code(0);
    let doc = json(&out);
    let advice: Vec<(String, u64)> = report(&doc)["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        advice,
        vec![
            ("context-sends".to_string(), 3),
            ("install-after-source".to_string(), 3),
            ("install-without-cache".to_string(), 4),
        ],
        "{doc}"
    );
    // The text report names the file and line.
    berth
        .with(&["build"])
        .code(0)
        .stdout_has("Dockerfile:4: `pip install` has no cache mount");
}

/// An ssh-agent stopped (and reaped) when dropped, a failed assertion included.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real ssh-agent with a key made here; the build's `RUN --mount=type=ssh` step asks the
/// forwarded agent for its identities over the agent protocol and records how many it has.
#[test]
fn an_ssh_mount_reaches_the_users_agent() {
    ensure_test_images();
    let project = unique_name("berth-bssh").to_lowercase();
    let _guard = ProjectGuard(project.clone());
    let image = format!("{project}-web");
    let _image = Image(image.clone());
    let keys = tempfile::tempdir().unwrap();
    let socket = keys.path().join("agent.sock");
    let _agent = Agent(
        std::process::Command::new("ssh-agent")
            .args(["-D", "-a", socket.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("ssh-agent's socket", Duration::from_secs(10), || {
        socket.exists()
    });
    let key = keys.path().join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    let added = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
    // SSH2_AGENTC_REQUEST_IDENTITIES (11), answered by SSH2_AGENT_IDENTITIES_ANSWER (12)
    // with the number of keys.
    let ask = "import os,socket,struct; s=socket.socket(socket.AF_UNIX); s.connect(os.environ['SSH_AUTH_SOCK']); s.sendall(struct.pack('>IB',1,11)); n=struct.unpack('>I',s.recv(4))[0]; r=s.recv(n); assert r[0]==12, r[0]; open('/keys','w').write(str(struct.unpack('>I',r[1:5])[0]))";
    let berth = Berth::project(&[
        (
            "compose.yaml",
            "services:\n  web:\n    build:\n      context: .\n      ssh: [default]\n",
        ),
        (
            "Dockerfile",
            &format!("FROM berth/python:3.11\nRUN --mount=type=ssh python3 -c \"{ask}\"\n"),
        ),
    ])
    .args(&["-p", &project])
    .env("SSH_AUTH_SOCK", socket.to_str().unwrap());
    let out = berth.with(&["build", "--progress", "plain"]);
    out.code(0);
    assert_eq!(run_in(&image, &["cat", "/keys"]), "1");
}
