//! `cargo xtask bench deploy`: a zero-downtime `berth deploy` against `docker-compose up -d`
//! recreating the same testapp service after an environment change, each under the same load,
//! measured in the same run (BENCHMARKS.md).
//!
//! Debian's docker-compose 1.29 ignores `deploy.replicas` outside swarm mode, so it gets one
//! `web` container publishing a loopback port; berth deploys the same service with its 2
//! replicas behind its proxy, and with 1 replica as well, so that both shapes are on record.
//! Each round changes APP_VERSION; the rounds of the three go in turn, so that a slow minute of
//! the machine falls on all of them. A fourth column runs the same load through the proxy
//! with no deploy at all: the longest gap a loaded 2-core machine shows anyway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::live::{self, Load, Project, Proxy};

const ROUNDS: usize = 5;
/// The load during each deploy: keep-alive clients, each at this many requests per second.
const CLIENTS: usize = 4;
const RATE: f64 = 150.0;
/// Load before the deploy starts, so that every client is connected and answered.
const WARM_UP: Duration = Duration::from_millis(500);
/// Load after the new version first answered (and the command returned).
const SETTLE: Duration = Duration::from_millis(500);
/// How long the no-deploy anchor runs the load (plus warm-up and settle, as a deploy).
const IDLE: Duration = Duration::from_secs(3);
/// How long the new version may take to answer after the command returned.
const NEW_VERSION_DEADLINE: Duration = Duration::from_secs(30);

/// What one round of one contender measured.
#[derive(Debug, Default, Clone)]
struct Round {
    /// The command, from start to exit (none for the no-deploy anchor).
    wall: Option<Duration>,
    /// berth: from the start until the last replica's traffic moved (its last `switched`
    /// event), which is the wall time without the monitor window.
    to_last_switch: Option<Duration>,
    /// berth: each `switch_ms` (new replica healthy to traffic on it).
    switch_ms: Vec<f64>,
    /// Requests sent during the whole load (warm-up, deploy, settle) and how many failed.
    requests: usize,
    failed: usize,
    failures: String,
    /// The longest time without a successful answer, from the command's start until the new
    /// version answered plus the settle time.
    gap: Duration,
    /// When that gap began, from the command's start.
    gap_at: Duration,
}

/// One thing being measured: its name and its rounds.
struct Contender {
    name: String,
    rounds: Vec<Round>,
}

pub fn run(root: &Path) -> Result<()> {
    // Only the testapp image is needed (not the Postgres image or the static berth).
    crate::report("berth/testapp:latest", || {
        crate::testapp_image::ensure(root, false)
    })?;
    let berth = crate::bench::release_berth(root)?;
    let compose_version =
        crate::cmd::output(Command::new("docker-compose").args(["version", "--short"]))
            .context("bench deploy compares with docker-compose: apt-get install docker-compose")?
            .trim()
            .to_string();
    let dir = tempfile::Builder::new().prefix("bench-deploy-").tempdir()?;
    let suffix = std::process::id();

    // Dropped in reverse order: the projects go down before the proxy stops.
    let proxy = Proxy::start(&berth, dir.path())?;
    let two = BerthSide::create(&berth, &proxy, dir.path(), 2, suffix)?;
    let one = BerthSide::create(&berth, &proxy, dir.path(), 1, suffix)?;
    let compose = ComposeSide::create(dir.path(), suffix)?;

    let mut results = [
        Contender {
            name: "berth, 2 replicas".into(),
            rounds: vec![],
        },
        Contender {
            name: "berth, 1 replica".into(),
            rounds: vec![],
        },
        Contender {
            name: format!("docker-compose {compose_version}"),
            rounds: vec![],
        },
        Contender {
            name: "no deploy (anchor)".into(),
            rounds: vec![],
        },
    ];
    println!(
        "deploy: testapp, {ROUNDS} rounds, APP_VERSION changed each round, \
         {CLIENTS} keep-alive clients x {RATE:.0} req/s during each deploy"
    );
    for round in 1..=ROUNDS {
        let version = format!("r{round}");
        let rounds = [
            two.round(&version)?,
            one.round(&version)?,
            compose.round(&version)?,
            two.idle()?,
        ];
        for (c, r) in results.iter_mut().zip(rounds) {
            println!(
                "round {round}: {:<22} {}, failed {:>4} of {:>5}, longest gap {:>5.0} ms at {:>4.0} ms{}{}",
                c.name,
                r.wall
                    .map(|w| format!("wall {:>6.0} ms", ms(w)))
                    .unwrap_or_else(|| format!("{:<14}", "idle 3 s")),
                r.failed,
                r.requests,
                ms(r.gap),
                ms(r.gap_at),
                r.to_last_switch
                    .map(|d| format!(", last switch at {:.0} ms", ms(d)))
                    .unwrap_or_default(),
                if r.switch_ms.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", switch_ms {}",
                        r.switch_ms
                            .iter()
                            .map(|s| format!("{s:.1}"))
                            .collect::<Vec<_>>()
                            .join("/")
                    )
                }
            );
            if r.failed > 0 {
                println!("         failures: {}", r.failures);
            }
            c.rounds.push(r);
        }
    }
    println!();
    print!("{}", table(&results));
    let wall = |c: &Contender| median_f(c.rounds.iter().filter_map(|r| r.wall.map(ms)).collect());
    let anchor = wall(&results[2]);
    for c in &results[..2] {
        println!(
            "ratio wall time {} / {}: {:.2}x (medians)",
            c.name,
            results[2].name,
            wall(c) / anchor
        );
    }
    println!(
        "berth's wall time includes its 2 s monitor window (update_config.monitor: 2s); \
         docker-compose returns without waiting for health."
    );
    drop(compose);
    drop(one);
    drop(two);
    drop(proxy);
    Ok(())
}

/// A berth project deploying the testapp service behind the proxy.
struct BerthSide {
    project: Project,
    addr: SocketAddr,
    host: String,
}

impl BerthSide {
    fn create(
        berth: &Path,
        proxy: &Proxy,
        base: &Path,
        replicas: usize,
        suffix: u32,
    ) -> Result<BerthSide> {
        let host = format!("r{replicas}.bench.test");
        let project = Project::create(
            berth,
            base,
            &format!("bench-deploy-{replicas}r-{suffix}"),
            &live::compose_yaml(replicas, &host),
            &proxy.socket,
        )?;
        let side = BerthSide {
            project,
            addr: proxy.addr,
            host,
        };
        side.project.set_env(&[("VERSION", "r0")])?;
        let run = side.deploy()?;
        wait_for_version(
            side.addr,
            &side.host,
            "r0",
            Instant::now() + Duration::from_secs(10),
        )
        .with_context(|| format!("after the first deploy: {}", run.stderr))?;
        Ok(side)
    }

    fn deploy(&self) -> Result<live::DeployRun> {
        let run = self.project.deploy(&["--format", "json"], |_, _| {})?;
        if !run.status.success() {
            bail!(
                "berth deploy of {} failed with {}: {}",
                self.project.name,
                run.status,
                run.stderr
            );
        }
        Ok(run)
    }

    /// The same load through the proxy with no deploy, for as long as a deploy takes: the
    /// gaps a loaded 2-core machine has anyway.
    fn idle(&self) -> Result<Round> {
        let version = live::get(self.addr, &self.host)?.1;
        let ((), round) = under_load(self.addr, &self.host, &version, || {
            std::thread::sleep(IDLE);
            Ok(())
        })?;
        Ok(round)
    }

    fn round(&self, version: &str) -> Result<Round> {
        self.project.set_env(&[("VERSION", version)])?;
        let (run, mut round) = under_load(self.addr, &self.host, version, || self.deploy())?;
        round.wall = Some(run.wall);
        for (at, event) in run.events() {
            if event["event"] == "switched" {
                round
                    .switch_ms
                    .push(event["switch_ms"].as_f64().unwrap_or(f64::NAN));
                round.to_last_switch = Some(at);
            }
        }
        if round.switch_ms.is_empty() {
            bail!("berth deploy printed no switched event:\n{:?}", run.lines);
        }
        Ok(round)
    }
}

/// A docker-compose project with one `web` container publishing a loopback port.
struct ComposeSide {
    dir: PathBuf,
    name: String,
    addr: SocketAddr,
}

impl ComposeSide {
    fn create(base: &Path, suffix: u32) -> Result<ComposeSide> {
        let port = crate::bench_proxy::free_port()?;
        let dir = base.join("compose");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("compose.yaml"),
            format!(
                r#"services:
  web:
    image: berth/testapp:latest
    environment:
      APP_VERSION: ${{VERSION}}
    ports: ["127.0.0.1:{port}:8080"]
    healthcheck:
      test: ["CMD", "/testapp", "health"]
      interval: 300ms
      retries: 3
"#
            ),
        )?;
        let side = ComposeSide {
            dir,
            name: format!("bench-deploy-compose-{suffix}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        side.up("r0")?;
        wait_for_version(
            side.addr,
            "app.test",
            "r0",
            Instant::now() + Duration::from_secs(10),
        )?;
        Ok(side)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker-compose");
        c.args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    fn up(&self, version: &str) -> Result<Duration> {
        std::fs::write(self.dir.join(".env"), format!("VERSION={version}\n"))?;
        let started = Instant::now();
        crate::cmd::output(&mut self.command(&["up", "-d"]))?;
        Ok(started.elapsed())
    }

    fn round(&self, version: &str) -> Result<Round> {
        let (wall, mut round) = under_load(self.addr, "app.test", version, || self.up(version))?;
        round.wall = Some(wall);
        Ok(round)
    }
}

impl Drop for ComposeSide {
    fn drop(&mut self) {
        let _ = self
            .command(&["down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `deploy` under the load: warm-up, the deploy, then until `version` answers and the
/// settle time. Counts failures over the whole load and the longest gap from the deploy's
/// start to the end.
fn under_load<T>(
    addr: SocketAddr,
    host: &str,
    version: &str,
    deploy: impl FnOnce() -> Result<T>,
) -> Result<(T, Round)> {
    let load = Load::start(addr, host, CLIENTS, RATE);
    std::thread::sleep(WARM_UP);
    if load.counts().0 == 0 {
        bail!("no answer from {addr} (Host: {host}) before the deploy");
    }
    let started = Instant::now();
    let out = deploy()?;
    wait_for_version(addr, host, version, Instant::now() + NEW_VERSION_DEADLINE)?;
    std::thread::sleep(SETTLE);
    let ended = Instant::now();
    let samples = load.finish();
    let (gap, gap_at) = live::longest_gap_at(&samples, started, ended);
    let failed: Vec<&live::Sample> = samples
        .iter()
        .filter(|s| !matches!(s.outcome, live::Outcome::Ok(_)))
        .collect();
    Ok((
        out,
        Round {
            requests: samples.len(),
            failed: failed.len(),
            failures: live::describe_failures(failed),
            gap,
            gap_at: gap_at - started,
            ..Round::default()
        },
    ))
}

/// Polls `GET /` every 10 ms until `version` answers.
fn wait_for_version(addr: SocketAddr, host: &str, version: &str, deadline: Instant) -> Result<()> {
    loop {
        let last = live::get(addr, host);
        if matches!(&last, Ok((200, body)) if body == version) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{version} did not answer on {addr} (Host: {host}) in time; last: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_f(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn max_f(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Medians and maxima of each figure, one column pair per contender.
fn table(results: &[Contender]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = write!(out, "{:<34}", format!("medians / max of {ROUNDS} rounds"));
    for c in results {
        let _ = write!(out, " {:>24}", c.name);
    }
    out.push('\n');
    type Figure = fn(&Round) -> Vec<f64>;
    let rows: [(&str, &str, Figure); 5] = [
        ("wall time", "ms", |r| r.wall.map(ms).into_iter().collect()),
        ("traffic all on new (last switch)", "ms", |r| {
            r.to_last_switch.map(ms).into_iter().collect()
        }),
        ("switch after healthy (switch_ms)", "ms", |r| {
            r.switch_ms.clone()
        }),
        ("failed requests", "", |r| vec![r.failed as f64]),
        ("longest gap between answers", "ms", |r| vec![ms(r.gap)]),
    ];
    for (label, unit, figure) in rows {
        let _ = write!(out, "{label:<34}");
        for c in results {
            let values: Vec<f64> = c.rounds.iter().flat_map(figure).collect();
            let cell = if values.is_empty() {
                "—".to_string()
            } else {
                let precision = if label.starts_with("switch") { 1 } else { 0 };
                format!(
                    "{:.p$} / {:.p$}{}",
                    median_f(values.clone()),
                    max_f(&values),
                    if unit.is_empty() {
                        String::new()
                    } else {
                        format!(" {unit}")
                    },
                    p = precision
                )
            };
            let _ = write!(out, " {cell:>24}");
        }
        out.push('\n');
    }
    let total: Vec<String> = results
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.name,
                c.rounds.iter().map(|r| r.requests).sum::<usize>()
            )
        })
        .collect();
    let _ = writeln!(out, "requests sent in all: {}", total.join(", "));
    out
}
