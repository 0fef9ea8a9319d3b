//! Running external programs with errors that name the command.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Runs `command`, letting its output through, and fails when it exits non-zero.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", describe(command)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(command));
    }
    Ok(())
}

/// Runs `command` quietly and returns its stdout; stderr is included in the error.
pub fn output(command: &mut Command) -> Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", describe(command)))?;
    if !output.status.success() {
        bail!(
            "{} failed with {}: {}",
            describe(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The content key label of `image`, or None when the image does not exist.
pub fn image_content_key(image: &str) -> Result<Option<String>> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format"])
        .arg(format!(
            "{{{{index .Config.Labels \"{}\"}}}}",
            crate::CONTENT_KEY_LABEL
        ))
        .arg(image)
        .stdin(Stdio::null())
        .output()
        .context("cannot start docker; is the Docker CLI installed?")?;
    if output.status.success() {
        return Ok(Some(
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No such image") {
        return Ok(None);
    }
    bail!("docker image inspect {image} failed: {}", stderr.trim())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    format!("`{text}`")
}

/// The ID of `image`, or None when it does not exist.
pub fn image_id(image: &str) -> Option<String> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Removes the image a rebuild replaced, so repeated rebuilds do not pile up dangling
/// images. Failure is fine: a container may still use it, and then it has to stay.
pub fn remove_replaced(old_id: Option<String>, image: &str) {
    if let Some(old_id) = old_id {
        if image_id(image).as_deref() != Some(old_id.as_str()) {
            let _ = Command::new("docker")
                .args(["image", "rm", &old_id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether a Docker network of that name exists.
pub fn network_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["network", "inspect", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
