//! `cargo xtask bench config`: `berth config` against Debian's `docker-compose config` on the
//! same generated 2,000-service project, measured in the same run (BENCHMARKS.md).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A project shaped like real ones: images with interpolated tags, published ports, list
/// environment, named and bind volumes, a healthcheck and a dependency chain.
pub fn generate(services: usize) -> String {
    let mut s = String::from("services:\n");
    for i in 0..services {
        s.push_str(&format!(
            "  svc{i}:\n    image: \"registry.example/app{}:${{TAG:-1.0}}\"\n    ports: [\"{}:8080\"]\n    environment:\n      - SERVICE_ID={i}\n      - LOG_LEVEL=${{LOG_LEVEL:-info}}\n    volumes: [\"data{}:/data\", \"./conf:/etc/app:ro\"]\n    networks: [back]\n    healthcheck:\n      test: [\"CMD\", \"/app\", \"health\"]\n      interval: 10s\n      retries: 3\n    restart: unless-stopped\n",
            i % 10,
            10000 + i,
            i % 50
        ));
        if i > 0 {
            s.push_str(&format!("    depends_on:\n      - svc{}\n", i - 1));
        }
    }
    s.push_str("networks:\n  back: {}\nvolumes:\n");
    for j in 0..50 {
        s.push_str(&format!("  data{j}: {{}}\n"));
    }
    s
}

fn time_runs(runs: usize, mut cmd: impl FnMut() -> Command) -> Result<Vec<Duration>> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status = cmd()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot start the benchmarked command")?;
        let took = started.elapsed();
        if !status.success() {
            bail!("the benchmarked command failed with {status}");
        }
        out.push(took);
    }
    out.sort();
    Ok(out)
}

fn median(v: &[Duration]) -> Duration {
    v[v.len() / 2]
}

pub fn config(root: &Path, services: usize, runs: usize) -> Result<()> {
    let berth = release_berth(root)?;
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("bench");
    std::fs::create_dir_all(&project)?;
    let text = generate(services);
    std::fs::write(project.join("compose.yaml"), &text)?;
    let lines = text.lines().count();

    let berth_times = time_runs(runs, || {
        let mut c = Command::new(&berth);
        c.arg("config").current_dir(&project);
        c
    })?;
    let compose_times = time_runs(runs.clamp(1, 3), || {
        let mut c = Command::new("docker-compose");
        c.arg("config").current_dir(&project);
        c
    })?;
    let b = median(&berth_times);
    let c = median(&compose_times);
    let version = Command::new("docker-compose")
        .arg("version")
        .arg("--short")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("config load: {services} services, {lines} lines of YAML");
    println!(
        "  berth config            median {:>8.1} ms over {} runs (min {:.1}, max {:.1})",
        ms(b),
        berth_times.len(),
        ms(berth_times[0]),
        ms(*berth_times.last().unwrap())
    );
    println!(
        "  docker-compose {version:<8} median {:>8.1} ms over {} runs (min {:.1}, max {:.1})",
        ms(c),
        compose_times.len(),
        ms(compose_times[0]),
        ms(*compose_times.last().unwrap())
    );
    println!(
        "  ratio: berth takes {:.4}x the time of docker-compose ({:.1}x faster)",
        b.as_secs_f64() / c.as_secs_f64(),
        c.as_secs_f64() / b.as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A 10-service stack of testapp containers: each with the testapp healthcheck, on one of two
/// networks (some on both), every other one with a named volume.
pub fn generate_up(services: usize) -> String {
    let mut s = String::from("services:\n");
    for i in 0..services {
        let networks = match i % 3 {
            0 => "[front]",
            1 => "[back]",
            _ => "[front, back]",
        };
        s.push_str(&format!(
            "  app{i}:\n    image: berth/testapp:latest\n    environment:\n      APP_VERSION: v{i}\n    networks: {networks}\n    healthcheck:\n      test: [\"CMD\", \"/testapp\", \"health\"]\n      interval: 2s\n      timeout: 2s\n      retries: 5\n"
        ));
        if i % 2 == 0 {
            s.push_str(&format!("    volumes: [\"data{i}:/data\"]\n"));
        }
    }
    s.push_str("networks:\n  front: {}\n  back: {}\nvolumes:\n");
    for i in (0..services).step_by(2) {
        s.push_str(&format!("  data{i}: {{}}\n"));
    }
    s
}

/// Runs a command to completion, quietly, and returns how long it took; fails when it fails.
fn timed(mut cmd: Command) -> Result<Duration> {
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("cannot start the benchmarked command")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// `berth up -d` against `docker-compose up -d` on the same generated stack, from nothing and
/// then with nothing to do, in the same run; `down -v` between rounds is not timed.
pub fn up(root: &Path, services: usize, rounds: usize) -> Result<()> {
    crate::test_images(false)?;
    let berth = release_berth(root)?;
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("benchup");
    std::fs::create_dir_all(&project)?;
    std::fs::write(project.join("compose.yaml"), generate_up(services))?;
    let suffix = std::process::id();
    let berth_project = format!("bench-berth-{suffix}");
    let compose_project = format!("bench-compose-{suffix}");
    let berth_cmd = |args: &[&str]| {
        let mut c = Command::new(&berth);
        c.args(["-p", &berth_project])
            .args(args)
            .current_dir(&project);
        c
    };
    let compose_cmd = |args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.args(["-p", &compose_project])
            .args(args)
            .current_dir(&project);
        c
    };
    // Whatever an earlier, interrupted run left behind would make "from nothing" false.
    let _ = timed(berth_cmd(&["down", "-v"]));
    let _ = timed(compose_cmd(&["down", "-v"]));

    let (mut b_cold, mut b_noop, mut c_cold, mut c_noop) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        b_cold.push(timed(berth_cmd(&["up", "-d"]))?);
        b_noop.push(timed(berth_cmd(&["up", "-d"]))?);
        timed(berth_cmd(&["down", "-v"]))?;
        c_cold.push(timed(compose_cmd(&["up", "-d"]))?);
        c_noop.push(timed(compose_cmd(&["up", "-d"]))?);
        timed(compose_cmd(&["down", "-v"]))?;
        println!(
            "round {round}: berth {:.0} / {:.0} ms, docker-compose {:.0} / {:.0} ms (from nothing / no-op)",
            ms(b_cold[round - 1]),
            ms(b_noop[round - 1]),
            ms(c_cold[round - 1]),
            ms(c_noop[round - 1])
        );
    }
    for v in [&mut b_cold, &mut b_noop, &mut c_cold, &mut c_noop] {
        v.sort();
    }
    let line = |what: &str, b: &[Duration], c: &[Duration]| {
        let (b, c) = (median(b), median(c));
        println!(
            "  {what:<14} berth {:>8.0} ms   docker-compose {:>8.0} ms   ratio {:.2}x",
            ms(b),
            ms(c),
            b.as_secs_f64() / c.as_secs_f64()
        );
    };
    println!("up: {services} testapp services, medians of {rounds} rounds");
    line("from nothing", &b_cold, &c_cold);
    line("no-op", &b_noop, &c_noop);
    Ok(())
}

/// Builds berth in release mode (benchmarks never time a debug build) and returns its path.
pub(crate) fn release_berth(root: &Path) -> Result<std::path::PathBuf> {
    crate::cmd::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--locked", "-p", "berth-cli"])
            .current_dir(root),
    )?;
    Ok(root.join("target/release/berth"))
}
