//! `berth systemd`: a unit that brings the project up at boot and down at shutdown. Also the
//! writing and enabling of units that `backup schedule --install` shares.

use super::{load_options, CliError};
use crate::args::{ProjectArgs, SystemdArgs};
use berth_deploy::systemd::{unit, unit_name, UnitOptions};
use std::path::PathBuf;

pub fn run(p: &ProjectArgs, a: &SystemdArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&load_options(p))?;
    let opts = unit_options(p, &loaded, a.user)?;
    let text = unit(&opts)?;
    if !a.install {
        print!("{text}");
        return Ok(());
    }
    let name = unit_name(&loaded.project.name);
    install(
        &[(name.clone(), text)],
        a.user,
        &["enable", &name],
        "it runs `berth up --wait` at boot",
    )
}

/// What every unit berth writes pins: this binary, the project's directory, files, profiles
/// and env files, all absolute.
pub fn unit_options(
    p: &ProjectArgs,
    loaded: &berth_compose::Loaded,
    user_mode: bool,
) -> Result<UnitOptions, CliError> {
    let berth_binary = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .map_err(|e| CliError::Io(format!("cannot find berth's own path: {e}")))?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    Ok(UnitOptions {
        project_name: loaded.project.name.clone(),
        working_dir: loaded.project_dir.clone(),
        config_files: loaded.files.clone(),
        berth_binary,
        user_mode,
        profiles: p.profiles.clone(),
        env_files: p.env_files.iter().map(|f| cwd.join(f)).collect(),
    })
}

/// Writes `files` (name, text) atomically into the system or user unit directory, reloads
/// systemd and runs `systemctl <enable>` (`enable NAME`, or `enable --now NAME` for a timer
/// that must start before the next boot). Without a running systemd the files stay written and the
/// user is told how to enable them later.
pub fn install(
    files: &[(String, String)],
    user: bool,
    enable: &[&str],
    what_it_does: &str,
) -> Result<(), CliError> {
    let dir = if user {
        let home = crate::env::get().home.clone().ok_or_else(|| {
            CliError::Failed("HOME is not set; cannot find ~/.config/systemd/user".into())
        })?;
        PathBuf::from(home).join(".config/systemd/user")
    } else {
        PathBuf::from("/etc/systemd/system")
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    for (name, text) in files {
        let path = dir.join(name);
        berth_base::atomic::write(&path, text.as_bytes())
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    let systemctl = |args: &[&str]| {
        let mut c = std::process::Command::new("systemctl");
        if user {
            c.arg("--user");
        }
        c.args(args).status()
    };
    match systemctl(&["daemon-reload"]) {
        Ok(st) if st.success() => match systemctl(enable) {
            Ok(st) if st.success() => println!(
                "enabled {}; {what_it_does}",
                enable.last().copied().unwrap_or_default()
            ),
            _ => {
                return Err(CliError::Failed(format!(
                    "wrote the units but `systemctl {}` failed; run it yourself",
                    enable.join(" ")
                )))
            }
        },
        _ => println!(
            "systemd is not running here; enable it later with `systemctl {}`",
            enable.join(" ")
        ),
    }
    Ok(())
}
