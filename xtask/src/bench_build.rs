//! `cargo xtask bench build [ROUNDS]`: builds of the Python-style sample of the build tests
//! (crates/cli/tests/fixtures/build-sample), with its vendored packages made large enough
//! that building them costs real time, by berth with BuildKit, berth with the classic
//! builder and docker-compose 1.29 (the classic builder), in the same run (BENCHMARKS.md,
//! issue #17).
//!
//! Each contender starts from an empty build cache and measures three builds: the first,
//! a rebuild after a one-line change to the source (app.py), and a rebuild after a one-line
//! change to requirements.txt (one package added). The classic builder has no `RUN --mount`,
//! so its Dockerfile is the same file without the cache, secret and bind mounts (the bind
//! mount becomes a COPY --from); that is the Dockerfile a project has without BuildKit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Generated packages: each with this many modules of generated Python.
const PACKAGES: usize = 24;
const MODULES: usize = 60;
const FUNCTIONS: usize = 40;

/// The sample's Dockerfile for the classic builder.
const CLASSIC_DOCKERFILE: &str = "FROM berth/python:3.11 AS deps
WORKDIR /src
COPY requirements.txt .
COPY tools/ tools/
COPY vendor/ vendor/
ARG CACHE_MARKER=first
RUN tools/pip install -r requirements.txt --target /install --marker \"$CACHE_MARKER\"

FROM berth/python:3.11 AS app
WORKDIR /app
COPY --from=deps /install /install
RUN ls /install > /app/manifest.txt
COPY app.py .
ENV PYTHONPATH=/install
EXPOSE 8000
CMD [\"python3\", \"/app/app.py\"]
";

const CLASSIC_COMPOSE: &str = "services:
  web:
    build:
      context: .
      dockerfile: Dockerfile.classic
";

struct Contender {
    name: &'static str,
    first: Vec<Duration>,
    source: Vec<Duration>,
    requirements: Vec<Duration>,
}

pub fn run(root: &Path, rounds: usize) -> Result<()> {
    if crate::cmd::image_id("berth/python:3.11").is_none() {
        bail!("bench build needs berth/python:3.11: run `cargo xtask test-images` first");
    }
    let berth = crate::bench::release_berth(root)?;
    let compose_version =
        crate::cmd::output(Command::new("docker-compose").args(["version", "--short"]))
            .context("bench build compares with docker-compose: apt-get install docker-compose")?;
    let dir = tempfile::Builder::new().prefix("bench-build-").tempdir()?;
    let project = dir.path().join("sample");
    write_sample(root, &project)?;
    let suffix = std::process::id();
    let mut contenders = [
        Contender::new("berth build, BuildKit + cache mount"),
        Contender::new("berth build --builder classic"),
        Contender::new("docker-compose 1.29 build (classic)"),
    ];
    println!(
        "sample: {PACKAGES} packages x {MODULES} modules, docker-compose {}",
        compose_version.trim()
    );
    for round in 1..=rounds {
        for (index, contender) in contenders.iter_mut().enumerate() {
            let name = format!("bench-build-{suffix}-{index}");
            let image = format!("{name}-web");
            let build = |project: &Path| -> Result<Duration> {
                let mut command = match index {
                    0 => {
                        let mut c = Command::new(&berth);
                        c.args(["-p", &name, "build", "--progress", "plain"]);
                        c
                    }
                    1 => {
                        let mut c = Command::new(&berth);
                        c.args([
                            "-p",
                            &name,
                            "-f",
                            "compose.classic.yaml",
                            "build",
                            "--builder",
                            "classic",
                            "--progress",
                            "plain",
                        ]);
                        c
                    }
                    _ => {
                        let mut c = Command::new("docker-compose");
                        c.args(["-p", &name, "-f", "compose.classic.yaml", "build"])
                            .env("DOCKER_BUILDKIT", "0")
                            .env("COMPOSE_DOCKER_CLI_BUILD", "0");
                        c
                    }
                };
                command
                    .current_dir(project)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let started = Instant::now();
                let status = command.status()?;
                let took = started.elapsed();
                if !status.success() {
                    bail!("{} failed with {status}", contender_name(index));
                }
                Ok(took)
            };

            // From an empty cache: the image gone, BuildKit's cache (cache mounts included)
            // pruned, the classic builder's intermediate images removed with the image.
            forget(&image);
            reset(root, &project)?;
            let first = build(&project)?;
            let app = fs::read_to_string(project.join("app.py"))?;
            fs::write(
                project.join("app.py"),
                app.replace("VERSION = \"v1\"", "VERSION = \"v2\""),
            )?;
            let source = build(&project)?;
            let mut requirements = fs::read_to_string(project.join("requirements.txt"))?;
            requirements.push_str(&format!("pkg{PACKAGES:02}==1.0\n"));
            fs::write(project.join("requirements.txt"), requirements)?;
            let req = build(&project)?;
            println!(
                "round {round} {:<40} first {:>6.2} s, source change {:>6.2} s, requirements change {:>6.2} s",
                contender.name,
                first.as_secs_f64(),
                source.as_secs_f64(),
                req.as_secs_f64()
            );
            contender.first.push(first);
            contender.source.push(source);
            contender.requirements.push(req);
            forget(&image);
        }
    }

    println!();
    println!("medians over {rounds} rounds:");
    for c in &contenders {
        println!(
            "{:<40} first {:>6.2} s, source change {:>6.2} s, requirements change {:>6.2} s",
            c.name,
            median(&c.first),
            median(&c.source),
            median(&c.requirements)
        );
    }
    let [bk, classic, compose] = &contenders;
    for (label, peer) in [("berth classic", classic), ("docker-compose", compose)] {
        println!(
            "BuildKit / {label}: first {:.2}x, source change {:.2}x, requirements change {:.2}x",
            median(&bk.first) / median(&peer.first),
            median(&bk.source) / median(&peer.source),
            median(&bk.requirements) / median(&peer.requirements)
        );
    }
    Ok(())
}

fn contender_name(index: usize) -> &'static str {
    ["berth (BuildKit)", "berth (classic)", "docker-compose"][index]
}

impl Contender {
    fn new(name: &'static str) -> Contender {
        Contender {
            name,
            first: vec![],
            source: vec![],
            requirements: vec![],
        }
    }
}

fn median(v: &[Duration]) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

/// Removes the image and every build cache.
fn forget(image: &str) {
    let quiet = |args: &[&str]| {
        let _ = Command::new("docker")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    quiet(&["image", "rm", "-f", image]);
    quiet(&["builder", "prune", "-af"]);
    quiet(&["image", "prune", "-f"]);
}

/// Puts the sample back as written (source and requirements unchanged).
fn reset(root: &Path, project: &Path) -> Result<()> {
    let fixture = fixture(root);
    for name in ["app.py", "requirements.txt"] {
        fs::copy(fixture.join(name), project.join(name))?;
    }
    let mut requirements = fs::read_to_string(project.join("requirements.txt"))?;
    for p in 0..PACKAGES {
        requirements.push_str(&format!("pkg{p:02}==1.0\n"));
    }
    fs::write(project.join("requirements.txt"), requirements)?;
    Ok(())
}

fn fixture(root: &Path) -> PathBuf {
    root.join("crates/cli/tests/fixtures/build-sample")
}

/// The fixture, its two Dockerfiles, and PACKAGES + 1 generated packages in vendor/ (the
/// last is the one the requirements change adds).
fn write_sample(root: &Path, project: &Path) -> Result<()> {
    let fixture = fixture(root);
    let mut pending = vec![fixture.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let target = project.join(path.strip_prefix(&fixture)?);
            if path.is_dir() {
                fs::create_dir_all(&target)?;
                pending.push(path);
            } else {
                fs::create_dir_all(target.parent().expect("inside the project"))?;
                fs::copy(&path, &target)?;
            }
        }
    }
    fs::write(project.join("pip_token.txt"), "bench-token")?;
    fs::write(project.join("Dockerfile.classic"), CLASSIC_DOCKERFILE)?;
    fs::write(project.join("compose.classic.yaml"), CLASSIC_COMPOSE)?;
    for p in 0..=PACKAGES {
        let package = project.join(format!("vendor/pkg{p:02}"));
        fs::create_dir_all(&package)?;
        fs::write(package.join("__init__.py"), "")?;
        for m in 0..MODULES {
            let mut text = String::new();
            for f in 0..FUNCTIONS {
                text.push_str(&format!(
                    "def f{f}(x, y={f}):\n    total = 0\n    for i in range(x):\n        if i % {k} == 0:\n            total += i * y\n        else:\n            total -= {m}\n    return {{'f': {f}, 'm': {m}, 'p': {p}, 'total': total}}\n\n",
                    k = f + 2
                ));
            }
            fs::write(package.join(format!("mod{m:03}.py")), text)?;
        }
    }
    reset(root, project)
}
