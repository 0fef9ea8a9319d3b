//! `cargo xtask demo`: what berth does today, live on the local Docker Engine.
//!
//! It builds the test images, has berth talk to the engine, loads the example stack the way
//! Compose would, shows a located error for a typo, and runs the images the stack uses. Then
//! it starts berth's proxy and deploys a routed service four times under constant load: a
//! good version, one that crashes and one that answers 500, the bad ones rolled back by berth
//! on its own. Each step prints what it did; the demo grows with every issue that lands.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::live;

fn step(title: &str) {
    println!("\n==> {title}");
}

fn berth(root: &Path, args: &[&str], cwd: &Path) -> Result<std::process::Output> {
    crate::interrupt::check()?;
    let out = Command::new(root.join("target/debug/berth"))
        .args(args)
        .current_dir(cwd)
        .output()
        .context("cannot run berth")?;
    // A Ctrl-C reaches berth too; what it printed on the way out is not the demo's result.
    crate::interrupt::check()?;
    Ok(out)
}

pub fn run(root: &Path) -> Result<()> {
    crate::check_prerequisites(false)?;
    crate::interrupt::watch()?;
    // The proxy network is shared by every routed project; it is removed at the end only
    // when this demo created it.
    let _network = Network::remove_if_new(crate::cmd::network_exists("berth"));
    step("building berth and the test images (cached after the first run)");
    crate::cmd::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--locked", "-p", "berth-cli"])
            .current_dir(root),
    )?;
    crate::test_images(false)?;

    step("berth version: connect to the engine and negotiate the API version");
    let out = berth(root, &["version"], root)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr));
    }

    let shop = root.join("examples/shop");
    step("berth config --services: the example stack, merged and interpolated");
    let out = berth(root, &["config", "--services"], &shop)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    step("berth --dev config: compose.dev.yaml added, dev ports published");
    let out = berth(root, &["--dev", "config", "--format", "json"], &shop)?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for p in v["services"]["web"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "  web publishes {}:{} -> {}",
            p["host_ip"].as_str().unwrap_or("0.0.0.0"),
            p["published"].as_str().unwrap_or("?"),
            p["target"]
        );
    }

    step("a typo is caught with file, line and a suggestion (exit code 2)");
    let tmp = tempfile::tempdir()?;
    let broken = std::fs::read_to_string(shop.join("compose.yaml"))?.replace(
        "    healthcheck:\n      test: [\"CMD\", \"/testapp\"",
        "    healthchek:\n      test: [\"CMD\", \"/testapp\"",
    );
    std::fs::write(tmp.path().join("compose.yaml"), broken)?;
    std::fs::write(tmp.path().join(".env"), "DB_PASSWORD=demo\n")?;
    let out = berth(root, &["config"], tmp.path())?;
    let err = String::from_utf8_lossy(&out.stderr);
    println!("  exit code {}", out.status.code().unwrap_or(-1));
    for line in err.lines().take(8) {
        println!("  {line}");
    }

    step("berth up -d --wait: the example stack converges, in dependency order, healthy");
    let project = format!("berth-demo-{}", std::process::id());
    let _guard = Down(root.to_path_buf(), shop.clone(), project.clone());
    let show = |out: std::process::Output| -> Result<()> {
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    show(berth(root, &["-p", &project, "up", "-d", "--wait"], &shop)?)?;
    step("berth ps");
    show(berth(root, &["-p", &project, "ps"], &shop)?)?;
    step("berth up again with nothing changed: no container is touched");
    show(berth(
        root,
        &["-p", &project, "up", "-d", "--dry-run"],
        &shop,
    )?)?;
    step("APP_VERSION=v2 berth up -d --wait: web and worker use it and are recreated; db is untouched");
    let out = Command::new(root.join("target/debug/berth"))
        .args(["-p", &project, "up", "-d", "--wait"])
        .env("APP_VERSION", "v2")
        .current_dir(&shop)
        .output()?;
    crate::interrupt::check()?;
    show(out)?;
    step("berth exec -T web /testapp health (exit code of the command)");
    let out = berth(
        root,
        &["-p", &project, "exec", "-T", "web", "/testapp", "health"],
        &shop,
    )?;
    println!("  exit code {}", out.status.code().unwrap_or(-1));
    step("berth down -v: everything the project created is removed");
    show(berth(root, &["-p", &project, "down", "-v"], &shop)?)?;

    zero_downtime(root)?;
    println!(
        "\nThat was berth: a Compose project loaded as Compose reads it, brought up in dependency \
         order, and deployed four times behind berth's proxy without a failed request, the two \
         broken versions rolled back on their own. Everything the demo started is removed."
    );
    println!(
        "Try it on your own project: install berth and follow \"From your compose project to \
         deployed\" in README.md; `berth --help` lists every command."
    );
    Ok(())
}

/// Clients of the live deploy demo, and the requests per second each sends.
const CLIENTS: usize = 4;
const RATE: f64 = 150.0;
/// testapp's answer to `/` when FAIL_ROOT=1 is set.
const FAIL_ROOT_BODY: &str = "FAIL_ROOT=1 is set";
/// The host the demo's service is routed as.
const HOST: &str = "app.test";

/// The proxy, a routed service and four deploys under constant load: a good one, one whose
/// container dies at start and one that answers 500; the bad ones roll back by themselves and
/// no request fails.
fn zero_downtime(root: &Path) -> Result<()> {
    let berth = root.join("target/debug/berth");
    let tmp = tempfile::Builder::new().prefix("berth-demo-").tempdir()?;
    step("berth proxy run: berth's reverse proxy, on a free loopback port");
    // Declared before the project, so that `berth down` runs before the proxy stops.
    let proxy = live::Proxy::start(&berth, tmp.path())?;
    println!(
        "  listening on {}, admin socket {}",
        proxy.addr,
        proxy.socket.display()
    );
    let name = format!("berth-deploy-demo-{}", std::process::id());
    let project = live::Project::create(
        &berth,
        tmp.path(),
        &name,
        &live::compose_yaml(2, HOST),
        &proxy.socket,
    )?;
    println!(
        "  project {name}: service web, 2 testapp replicas routed as {}, health check /up, \
         monitor window 2s",
        HOST
    );

    step("berth deploy, VERSION=v1: the first release");
    project.set_env(&[("VERSION", "v1")])?;
    let v1 = deploy(&project, None)?;
    expect_success(&v1, "v1")?;
    expect_answer(proxy.addr, "v1")?;

    step(&format!(
        "load: {CLIENTS} keep-alive clients x {RATE:.0} req/s through the proxy, until the end"
    ));
    let load = live::Load::start(proxy.addr, HOST, CLIENTS, RATE);
    std::thread::sleep(Duration::from_secs(1));
    let (ok, failed) = load.counts();
    println!("  after 1 s: {ok} answered, {failed} failed");

    step("berth deploy, VERSION=v2: rolling, one replica at a time, under load");
    project.set_env(&[("VERSION", "v2")])?;
    let v2 = deploy(&project, Some(&load))?;
    expect_success(&v2, "v2")?;
    expect_answer(proxy.addr, "v2")?;

    step("berth deploy, VERSION=v3 CRASH=1: the new container exits at start");
    project.set_env(&[("VERSION", "v3"), ("CRASH", "1")])?;
    let v3 = deploy(&project, Some(&load))?;
    expect_rollback(&v3, "v3")?;
    expect_answer(proxy.addr, "v2")?;

    step("berth deploy, VERSION=v4 FAIL_ROOT=1: healthy, but / answers 500");
    project.set_env(&[("VERSION", "v4"), ("FAIL_ROOT", "1")])?;
    let v4 = deploy(&project, Some(&load))?;
    expect_rollback(&v4, "v4")?;
    expect_answer(proxy.addr, "v2")?;

    step("berth releases");
    let out = project.command(&["releases"]).output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  {line}");
    }
    if !out.status.success() {
        bail!(
            "berth releases failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let samples = load.finish();

    // v4's own 500s are the point of its step: they are what the monitor window measures.
    // Anything else that is not a 2xx is a failed request.
    let v4_answer = |s: &live::Sample| {
        s.outcome == live::Outcome::Status(500, FAIL_ROOT_BODY.into())
            && s.at >= v4.started
            && s.at <= v4.ended()
    };
    let failed: Vec<&live::Sample> = samples
        .iter()
        .filter(|s| !matches!(s.outcome, live::Outcome::Ok(_)) && !v4_answer(s))
        .collect();
    let v4_500 = samples.iter().filter(|s| v4_answer(s)).count();
    let span = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b.at - a.at,
        _ => Duration::ZERO,
    };
    let mut per_version = live::by_version(&samples);
    per_version.insert("v4".into(), v4_500 as u64);
    for v in ["v1", "v2", "v3"] {
        per_version.entry(v.into()).or_default();
    }
    let versions = per_version
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let v2_gap = live::longest_gap(&samples, v2.started, v2.ended());

    step("summary: deploys under load");
    println!(
        "  requests: {} over {:.1} s ({CLIENTS} clients x {RATE:.0} req/s through the proxy)",
        samples.len(),
        span.as_secs_f64()
    );
    println!("  failed: {}", failed.len());
    println!("  requests per version: {versions}");
    println!(
        "  v4's {v4_500} were its own 500 answers (FAIL_ROOT=1): what berth's monitor counted to roll it back"
    );
    println!(
        "  v2: deployed in {:.1} s under load, longest time without an answer {:.0} ms",
        v2.wall.as_secs_f64(),
        v2_gap.as_secs_f64() * 1000.0
    );
    match per_version.get("v3").copied().unwrap_or(0) {
        0 => println!(
            "  v3 (CRASH=1): rolled back automatically, its container died before taking traffic"
        ),
        n => println!("  v3 (CRASH=1): rolled back automatically, after answering {n} requests"),
    }
    println!("  v4 (FAIL_ROOT=1): rolled back automatically, the monitor window caught its 500s");
    if !failed.is_empty() {
        bail!(
            "{} requests failed during the deploys: {}",
            failed.len(),
            live::describe_failures(failed.iter().copied())
        );
    }
    drop(project);
    drop(proxy);
    Ok(())
}

/// Runs `berth deploy`, printing its lines as they come with the time since it started, and
/// after it the load's counters.
fn deploy(project: &live::Project, load: Option<&live::Load>) -> Result<live::DeployRun> {
    crate::interrupt::check()?;
    let run = project.deploy(&[], |at, line| {
        println!("  {:>5.1}s  {line}", at.as_secs_f64());
    })?;
    crate::interrupt::check()?;
    // The error and the first of the failing container's last log lines.
    let stderr: Vec<&str> = run.stderr.lines().collect();
    for line in stderr.iter().take(6) {
        println!("  stderr: {line}");
    }
    if stderr.len() > 6 {
        println!("  stderr: … {} more lines", stderr.len() - 6);
    }
    println!(
        "  exit code {} after {:.1} s",
        run.status.code().unwrap_or(-1),
        run.wall.as_secs_f64()
    );
    if let Some(load) = load {
        let (ok, failed) = load.counts();
        println!("  load so far: {ok} answered 2xx, {failed} other");
    }
    Ok(run)
}

fn expect_success(run: &live::DeployRun, version: &str) -> Result<()> {
    if !run.status.success() {
        bail!(
            "deploying {version} failed ({}): {}",
            run.status,
            run.stderr
        );
    }
    Ok(())
}

fn expect_rollback(run: &live::DeployRun, version: &str) -> Result<()> {
    if run.status.code() != Some(1) || !run.stderr.contains("rolled back to the previous release") {
        bail!(
            "deploying the broken {version} should exit 1 after rolling back, it ended with {}: {}",
            run.status,
            run.stderr
        );
    }
    Ok(())
}

/// The version that answers `/` through the proxy now must be `version`.
fn expect_answer(addr: std::net::SocketAddr, version: &str) -> Result<()> {
    let (status, body) = live::get(addr, HOST)?;
    println!("  GET / with Host: {HOST} answers {status} {body}");
    if status != 200 || body != version {
        bail!("expected 200 {version} through the proxy, got {status} {body}");
    }
    Ok(())
}

/// Takes the demo stack down even when a step failed.
struct Down(std::path::PathBuf, std::path::PathBuf, String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(self.0.join("target/debug/berth"))
            .args(["-p", &self.2, "down", "-v"])
            .current_dir(&self.1)
            .output();
    }
}

/// Removes the proxy network `berth` at the end when the demo created it (a routed `up`
/// creates it), so that the demo leaves the engine as it found it.
struct Network(bool);

impl Network {
    fn remove_if_new(existed: bool) -> Network {
        Network(!existed)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new("docker")
                .args(["network", "rm", "berth"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
