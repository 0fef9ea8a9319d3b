//! `berth/testapp:latest`: the static testapp binary in a `FROM scratch` image.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;
use crate::{Outcome, CONTENT_KEY_LABEL, XTASK_VERSION};

const IMAGE: &str = "berth/testapp:latest";

/// The healthcheck uses the exec form because a scratch image has no shell; tests and compose
/// files can still override its timing (`--health-interval`) or disable it.
const DOCKERFILE: &str = "FROM scratch
COPY testapp /testapp
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=2s --retries=3 CMD [\"/testapp\", \"health\"]
ENTRYPOINT [\"/testapp\"]
";

pub fn ensure(root: &Path, force: bool) -> Result<Outcome> {
    let binary = crate::progress::during(
        "berth/testapp:latest: building the static testapp binary",
        || build_static_binary(root, "testapp", "testapp"),
    )?;
    let bytes = fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;

    // The key covers everything that ends up in the image, so an unchanged binary is a hit.
    let mut hasher = blake3::Hasher::new();
    hasher.update(XTASK_VERSION.as_bytes());
    hasher.update(DOCKERFILE.as_bytes());
    hasher.update(&bytes);
    let key = hasher.finalize().to_hex().to_string();

    if !force && cmd::image_content_key(IMAGE)?.as_deref() == Some(key.as_str()) {
        return Ok(Outcome::Cached);
    }

    let old_id = cmd::image_id(IMAGE);
    let context = tempfile::tempdir().context("cannot create a build context directory")?;
    fs::copy(&binary, context.path().join("testapp"))
        .context("cannot copy testapp into the build context")?;
    fs::write(context.path().join("Dockerfile"), DOCKERFILE)?;
    cmd::output(
        Command::new("docker")
            .args(["build", "--quiet", "--label"])
            .arg(format!("{CONTENT_KEY_LABEL}={key}"))
            .args(["--tag", IMAGE])
            .arg(context.path()),
    )?;
    cmd::remove_replaced(old_id, IMAGE);
    Ok(Outcome::Built)
}

/// Builds `package`'s binary `bin` with a static C runtime so it runs in an empty image. It
/// uses its own target directory because different RUSTFLAGS would otherwise invalidate the
/// normal build.
pub fn build_static_binary(root: &Path, package: &str, bin: &str) -> Result<std::path::PathBuf> {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let target_dir = root.join("target").join("static");
    cmd::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
            .current_dir(root)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--quiet", "--release", "--locked", "-p", package])
            .args(["--bin", bin, "--target", &target]),
    )?;
    Ok(target_dir.join(target).join("release").join(bin))
}
