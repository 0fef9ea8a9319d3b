//! Developer tasks for berth: `cargo xtask <task>`.
//!
//! xtask is a build tool, not part of the product, so it calls `docker`, `cargo`,
//! `debootstrap` and `tar` through `std::process::Command`. The architecture rule that only
//! `crates/engine` talks to Docker applies to the berth binary, not to this helper.

mod bench;
mod bench_backup;
mod bench_build;
mod bench_deploy;
mod bench_proxy;
mod cmd;
mod database_images;
mod debian_rootfs;
mod demo;
mod interrupt;
mod live;
mod postgres_image;
mod progress;
mod testapp_image;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Bumped whenever the way an image is built changes, so cached images are rebuilt.
pub const XTASK_VERSION: &str = "1";

/// The image label that records the content key an image was built from.
pub const CONTENT_KEY_LABEL: &str = "berth.content-key";

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test-images [--force]   build berth/testapp:latest, berth/postgres:15, berth/mariadb:10.11,
                          berth/redis:7 and berth/python:3.11 for the Docker tests (skipped when an image with
                          the same content key exists), and a static berth binary
                          (target/static) for the proxy boot tests
  demo                    a live demo of berth on the local Docker Engine
  bench config [N]        berth config vs docker-compose config on a generated N-service
                          project (default 2000), measured in the same run
  bench up [N]            berth up -d vs docker-compose up -d on a generated N-service
                          testapp stack (default 10): from nothing and no-op, 3 rounds
  bench proxy [--duration 10s] [--conns 1,64,256] [--rounds 3]
              [--servers berth,nginx,haproxy,caddy] [--instructions]
                          berth's proxy vs nginx, HAProxy and Caddy in front of testapp on
                          loopback (wrk req/s, p50, p99, medians of the rounds; RSS with
                          10,000 idle connections), testapp answered directly as the anchor,
                          all measured in the same run; --instructions also counts berth's
                          and nginx's instructions per request under valgrind's callgrind
  bench deploy            berth deploy (2 and 1 replicas, behind its proxy) vs docker-compose
                          up -d recreating the same testapp service, 5 rounds, each under
                          4 clients x 150 req/s: wall time, switch time, failed requests,
                          longest gap between answers, measured in the same run
  bench build [ROUNDS]    the Python-style build sample: first build, rebuild after a one-line
                          source change and after a one-line requirements change, berth with
                          BuildKit vs berth --builder classic vs docker-compose 1.29
  bench backup [MIB]      berth backup create/restore vs tar czf, tar | zstd -T0 and restic
                          on the same MIB of volume data (default 1024) in the same run: first
                          backup, restore into an empty target, size, and the backup after 1%
                          changed; the page cache is dropped before each timed command (as root)";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["test-images"] => test_images(false),
        ["test-images", "--force"] => test_images(true),
        ["demo"] => demo::run(&workspace_root()),
        ["bench", "config"] => bench::config(&workspace_root(), 2000, 5),
        ["bench", "config", n] => bench::config(&workspace_root(), n.parse()?, 5),
        ["bench", "up"] => bench::up(&workspace_root(), 10, 3),
        ["bench", "up", n] => bench::up(&workspace_root(), n.parse()?, 3),
        ["bench", "deploy"] => bench_deploy::run(&workspace_root()),
        ["bench", "build"] => bench_build::run(&workspace_root(), 3),
        ["bench", "build", rounds] => bench_build::run(&workspace_root(), rounds.parse()?),
        ["bench", "backup"] => bench_backup::run(&workspace_root(), 1024),
        ["bench", "backup", mib] => bench_backup::run(&workspace_root(), mib.parse()?),
        ["bench", "proxy", rest @ ..] => {
            bench_proxy::run(&workspace_root(), bench_proxy::Options::parse(rest)?)
        }
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown arguments {args:?}\n{USAGE}"),
    }
}

/// The images built from debootstrap rootfses, each rootfs with its images.
const ROOTFS_IMAGES: [&debian_rootfs::Rootfs; 2] =
    [&postgres_image::ROOTFS, &database_images::ROOTFS];

/// What happened to one image, for the one-line report.
pub enum Outcome {
    Built,
    Cached,
}

/// Fails with one line naming what to install when the tools the images need are missing,
/// before anything is compiled (a failure after minutes of building would waste them).
pub fn check_prerequisites(force: bool) -> Result<()> {
    let docker = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(std::process::Stdio::null())
        .output();
    match docker {
        Ok(out) if out.status.success() => {}
        Ok(out) => bail!(
            "the Docker Engine does not answer ({}); start it (systemctl start docker) and run this again",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => bail!("the docker CLI is missing: install Docker Engine (apt-get install -y docker.io) and run this again"),
    }
    for rootfs in ROOTFS_IMAGES {
        if let Some(missing) = rootfs.missing_prerequisites(&workspace_root(), force)? {
            bail!("{missing}");
        }
    }
    Ok(())
}

pub fn test_images(force: bool) -> Result<()> {
    check_prerequisites(force)?;
    let root = workspace_root();
    report("berth/testapp:latest", || {
        testapp_image::ensure(&root, force)
    })?;
    for rootfs in ROOTFS_IMAGES {
        report_rootfs(rootfs, &root, force)?;
    }
    // `berth proxy boot` runs its binary in a FROM-scratch image, so its tests need a
    // statically linked berth; cargo rebuilds it only when the sources changed.
    let berth = progress::during(
        "static berth: building (a release build, a few minutes when the sources changed)",
        || testapp_image::build_static_binary(&root, "berth-cli", "berth"),
    )?;
    println!("static berth: {}", berth.display());
    Ok(())
}

fn report(image: &str, build: impl FnOnce() -> Result<Outcome>) -> Result<()> {
    let started = Instant::now();
    let outcome = build()?;
    print_report(image, outcome, started.elapsed());
    Ok(())
}

/// Builds the images of one debootstrap rootfs, one report line per image.
fn report_rootfs(rootfs: &debian_rootfs::Rootfs, root: &Path, force: bool) -> Result<()> {
    rootfs.ensure(root, force, print_report)
}

fn print_report(image: &str, outcome: Outcome, took: Duration) {
    let what = match outcome {
        Outcome::Built => "built",
        Outcome::Cached => "cached",
    };
    println!("{image}: {what} in {:.1}s", took.as_secs_f64());
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
