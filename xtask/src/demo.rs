//! `cargo xtask demo`: what berth does today, live on the local Docker Engine.
//!
//! It builds the test images, has berth talk to the engine, loads the example stack the way
//! Compose would, shows a located error for a typo, and runs the images the stack uses. Each
//! step prints what it did; the demo grows with every issue that lands (`up`, `deploy`, …).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

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
    println!("\nzero-downtime deploys, the proxy and backups arrive with the next issues; `berth --help` lists what is here.");
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
