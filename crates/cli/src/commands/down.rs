//! `berth down`: stop and remove the project's containers and networks, and with `-v` its
//! named volumes — only what carries the project's labels, never anything else.

use super::session::Session;
use super::up::actual;
use super::CliError;
use crate::args::{DownArgs, ProjectArgs};
use crate::progress::Progress;
use berth_deploy::{desired_state, execute, plan_down, Context, DownOptions, ExecuteOptions};
use std::time::Duration;

pub fn run(p: &ProjectArgs, a: &DownArgs) -> Result<(), CliError> {
    if let Some(r) = a.rmi.as_deref().filter(|r| *r != "local") {
        return Err(CliError::Usage(format!(
            "--rmi {r} is not supported; use --rmi local (berth never pulls, so every image it uses is local)"
        )));
    }
    let s = Session::open(p)?;
    let ctx = Context {
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        ..Default::default()
    };
    let mut desired = desired_state(&s.loaded.project, &ctx)?;
    if let Some(t) = a.timeout {
        for svc in &mut desired.services {
            for c in &mut svc.containers {
                c.stop_timeout = Some(Duration::from_secs(t));
            }
        }
    }
    let plan = plan_down(
        &desired,
        &actual(&s)?,
        &DownOptions {
            volumes: a.volumes,
            remove_orphans: a.remove_orphans,
        },
    );
    let progress = Progress::new();
    let on = |e| progress.event(e);
    let opts = ExecuteOptions {
        remove_anonymous_volumes: a.volumes,
        ..Default::default()
    };
    let r =
        s.rt.block_on(execute(&s.engine, &desired, &plan, &opts, &on));
    progress.finish();
    r?;
    if a.rmi.is_some() {
        for svc in desired.services.iter().filter(|d| d.build.is_some()) {
            s.rt.block_on(s.engine.remove_image(&svc.image))?;
            println!("removed image {}", svc.image);
        }
    }
    println!("{}: down", s.project());
    Ok(())
}
