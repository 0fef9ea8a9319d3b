//! `berth run`: a one-off container of a service (migrations, `createsuperuser`), attached to
//! the terminal, with the command's exit code.

use super::session::Session;
use super::up::{actual, images};
use super::CliError;
use crate::args::{ProjectArgs, RunArgs};
use crate::progress::Progress;
use berth_deploy::{desired_state, execute, labels, plan, Context, ExecuteOptions, PlanOptions};
use std::io::IsTerminal;

pub fn run(p: &ProjectArgs, a: &RunArgs) -> Result<i32, CliError> {
    let s = Session::open(p)?;
    s.check_services(std::slice::from_ref(&a.service))?;
    let mut ctx = Context {
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        services: vec![a.service.clone()],
        ..Default::default()
    };
    // The image ids are part of the config hash, so they are resolved (and missing images
    // built) exactly as `up` does: planning the dependencies without them gives every running
    // dependency another hash than `up` gave it, and it would be recreated for nothing.
    let first = desired_state(&s.loaded.project, &ctx)?;
    let progress = Progress::new();
    let ids = images(&s, &first, false, &progress);
    progress.finish();
    ctx.image_ids = ids?;
    let desired = desired_state(&s.loaded.project, &ctx)?;
    let Some(svc) = desired.service(&a.service) else {
        return Err(CliError::Usage(format!("no such service `{}`", a.service)));
    };

    // Like `docker compose run`, dependencies are brought up first; the service itself is not.
    let deps: Vec<String> = desired
        .services
        .iter()
        .map(|d| d.name.clone())
        .filter(|n| *n != a.service)
        .collect();
    if !deps.is_empty() {
        let dep_plan = plan(
            &desired,
            &actual(&s)?,
            &PlanOptions {
                services: deps.clone(),
                ..Default::default()
            },
        )?;
        let opts = ExecuteOptions {
            wait_for: deps,
            ..Default::default()
        };
        s.rt.block_on(execute(&s.engine, &desired, &dep_plan, &opts, &|_| {}))?;
    } else {
        for n in &desired.networks {
            s.rt.block_on(s.engine.ensure_network(n))?;
        }
        for v in &desired.volumes {
            s.rt.block_on(s.engine.ensure_volume(v))?;
        }
    }

    // Standard input is always attached and its end delivered, as `docker compose run`
    // (whose -i is on by default) does, with -T or without.
    let tty = !a.no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut spec = svc.containers[0].clone();
    let suffix = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffffff
    );
    spec.name = format!("{}-{}-run-{suffix}", desired.project, a.service);
    spec.labels
        .insert(labels::COMPOSE_ONEOFF.into(), "True".into());
    spec.labels.insert(labels::ROLE.into(), "oneoff".into());
    // One-off containers publish no ports and never restart, as in Compose.
    spec.ports.clear();
    spec.restart = berth_engine::RestartPolicy::No;
    spec.healthcheck = None;
    spec.tty = tty;
    spec.stdin_open = true;
    if !a.command.is_empty() {
        spec.command = Some(a.command.clone());
    }
    if let Some(ep) = &a.entrypoint {
        spec.entrypoint = Some(vec![ep.clone()]);
    }
    if let Some(u) = &a.user {
        spec.user = Some(u.clone());
    }
    spec.env.extend(a.env.iter().cloned());
    let id = s.rt.block_on(s.engine.create_attached_container(&spec))?;
    let code = s.rt.block_on(async {
        s.engine
            .attach_and_start(
                &id,
                Some(crate::stdin::stdin()),
                tokio::io::stdout(),
                tokio::io::stderr(),
                tty,
            )
            .await
    });
    if a.rm {
        s.rt.block_on(s.engine.remove_container(&id, true, true))?;
    }
    match code {
        Ok(code) => Ok(code.clamp(0, 255) as i32),
        // The reader of the output went away (`berth run … | head -1`): a quiet end, as for
        // every command (see `output`).
        Err(berth_engine::EngineError::OutputClosed { .. }) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
