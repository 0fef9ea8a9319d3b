//! `cargo xtask demo`: what berth does today, live on the local Docker Engine.
//!
//! It builds the test images, has berth talk to the engine, loads the example stack the way
//! Compose would, shows a located error for a typo, and runs the images the stack uses. Each
//! step prints what it did; the demo grows with every issue that lands (`up`, `deploy`, …).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn step(title: &str) {
    println!("\n==> {title}");
}

fn berth(root: &Path, args: &[&str], cwd: &Path) -> Result<std::process::Output> {
    Command::new(root.join("target/debug/berth"))
        .args(args)
        .current_dir(cwd)
        .output()
        .context("cannot run berth")
}

pub fn run(root: &Path) -> Result<()> {
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

    step("the stack's images run on this engine (no registry involved)");
    let name = format!("berth-demo-{}", std::process::id());
    let _guard = Cleanup(name.clone());
    crate::cmd::run(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::8080",
        "-e",
        "APP_VERSION=demo-v1",
        "--health-interval",
        "1s",
        "berth/testapp:latest",
    ]))?;
    let started = Instant::now();
    loop {
        let health = crate::cmd::output(Command::new("docker").args([
            "inspect",
            "-f",
            "{{.State.Health.Status}}",
            &name,
        ]))?;
        if health.trim() == "healthy" {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("testapp did not become healthy within 30s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let port = crate::cmd::output(Command::new("docker").args(["port", &name, "8080/tcp"]))?;
    let addr = port.lines().next().unwrap_or_default().trim().to_string();
    println!(
        "  testapp healthy after {:.1}s at {addr}",
        started.elapsed().as_secs_f64()
    );
    println!("  GET / -> {}", get(&addr, "/")?);
    println!("  GET /up -> {}", get(&addr, "/up")?);
    println!("\nberth up, deploy, proxy and backups arrive with the next issues; `berth --help` lists what is here.");
    Ok(())
}

/// A minimal HTTP/1.1 GET over a real socket; the demo needs no HTTP client crate.
fn get(addr: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf.lines().next().unwrap_or_default().to_string();
    let body = buf
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(format!("{status} {body:?}"))
}

struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}
