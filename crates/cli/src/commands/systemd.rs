//! `berth systemd`: a unit that brings the project up at boot and down at shutdown.

use super::{load_options, CliError};
use crate::args::{ProjectArgs, SystemdArgs};
use berth_deploy::systemd::{unit, unit_name, UnitOptions};
use std::path::PathBuf;

pub fn run(p: &ProjectArgs, a: &SystemdArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&load_options(p))?;
    let berth_binary = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .map_err(|e| CliError::Io(format!("cannot find berth's own path: {e}")))?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let opts = UnitOptions {
        project_name: loaded.project.name.clone(),
        working_dir: loaded.project_dir.clone(),
        config_files: loaded.files.clone(),
        berth_binary,
        user_mode: a.user,
        profiles: p.profiles.clone(),
        env_files: p.env_files.iter().map(|f| cwd.join(f)).collect(),
    };
    let text = unit(&opts)?;
    if !a.install {
        print!("{text}");
        return Ok(());
    }
    let dir = if a.user {
        let home = crate::env::get().home.clone().ok_or_else(|| {
            CliError::Failed("HOME is not set; cannot find ~/.config/systemd/user".into())
        })?;
        PathBuf::from(home).join(".config/systemd/user")
    } else {
        PathBuf::from("/etc/systemd/system")
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let name = unit_name(&loaded.project.name);
    let path = dir.join(&name);
    berth_base::atomic::write(&path, text.as_bytes())
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    let mut systemctl = std::process::Command::new("systemctl");
    if a.user {
        systemctl.arg("--user");
    }
    let reload = std::process::Command::new("systemctl")
        .args(if a.user {
            vec!["--user", "daemon-reload"]
        } else {
            vec!["daemon-reload"]
        })
        .status();
    match reload {
        Ok(st) if st.success() => {
            let enabled = systemctl.args(["enable", &name]).status();
            match enabled {
                Ok(st) if st.success() => {
                    println!("enabled {name}; it runs `berth up --wait` at boot")
                }
                _ => {
                    return Err(CliError::Failed(format!(
                        "wrote the unit but `systemctl enable {name}` failed; run it yourself"
                    )))
                }
            }
        }
        _ => {
            println!("systemd is not running here; enable it later with `systemctl enable {name}`")
        }
    }
    Ok(())
}
