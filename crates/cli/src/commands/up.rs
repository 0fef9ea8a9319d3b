//! `berth up`: converge the project on the engine — build what is missing, create networks and
//! volumes, create and start containers in dependency order, wait for health.

use super::release_view::{image_error, image_text};
use super::session::Session;
use super::CliError;
use crate::args::{ProjectArgs, UpArgs};
use crate::progress::Progress;
use berth_deploy::images::ImageEvent;
use berth_deploy::{
    desired_state, execute_until, plan, Actual, Context, Desired, ExecuteOptions, PlanOptions,
};
use std::collections::BTreeMap;
use std::time::Instant;

pub fn run(p: &ProjectArgs, a: &UpArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    s.check_services(&a.services)?;
    if !a.dry_run {
        super::deploy::converge_interrupted(&s)?;
    }
    if a.watch {
        return super::watch::run(&s, a);
    }
    converge(&s, a)
}

/// Brings the selected services to the desired state: the whole of `berth up` once the
/// project is loaded. `--watch` calls it again to rebuild one service.
pub(crate) fn converge(s: &Session, a: &UpArgs) -> Result<(), CliError> {
    let mut ctx = Context {
        working_dir: s.loaded.project_dir.clone(),
        config_files: s.loaded.files.clone(),
        services: a.services.clone(),
        image_ids: BTreeMap::new(),
        release: None,
    };
    let first = desired_state(&s.loaded.project, &ctx)?;
    for w in &first.warnings {
        crate::report::warning(w);
    }
    let progress = Progress::new();

    // Images: build what has `build:` and is missing (or everything with --build); then every
    // image must be on the engine, since there is no registry to pull from.
    ctx.image_ids = images(s, &first, a.build, &progress)?;
    let desired = desired_state(&s.loaded.project, &ctx)?;
    ensure_proxy_network(s, &desired)?;
    let actual = actual(s)?;
    let the_plan = plan(
        &desired,
        &actual,
        &PlanOptions {
            remove_orphans: a.remove_orphans,
            force_recreate: a.force_recreate,
            no_recreate: false,
            services: a.services.clone(),
        },
    )?;
    if a.dry_run {
        progress.finish();
        for step in &the_plan.steps {
            println!("{step}");
        }
        return Ok(());
    }
    let selected: Vec<String> = desired.services.iter().map(|d| d.name.clone()).collect();
    let opts = ExecuteOptions {
        remove_anonymous_volumes: false,
        wait_for: if a.wait { selected.clone() } else { vec![] },
        settle_check: selected,
    };
    let started = Instant::now();
    let on = |e| progress.event(e);
    // Ctrl-C is handed to the executor rather than dropping it, so it can put back what the
    // interrupted step had half done.
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = s.rt.block_on(execute_until(
        &s.engine,
        &desired,
        &the_plan,
        &opts,
        &on,
        interrupted,
    ));
    progress.finish();
    match result {
        Err(berth_deploy::ExecuteError::Interrupted) => Err(CliError::Interrupted),
        Ok(()) => {
            super::proxy::start_for_up(s, &desired);
            super::deploy::route_after_up(s, &desired)?;
            super::deploy::record_up(s, &desired, &ctx.image_ids)?;
            if the_plan.is_noop() && !a.wait {
                println!("{}: up to date", s.project());
            } else {
                println!(
                    "{}: up in {:.1}s",
                    s.project(),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Routed services join the host's proxy network; it is created here when no proxy was
/// booted yet, so `up` works before `berth proxy boot`.
pub(crate) fn ensure_proxy_network(s: &Session, desired: &Desired) -> Result<(), CliError> {
    Ok(s.rt.block_on(berth_deploy::images::ensure_proxy_network(
        &s.engine, desired,
    ))?)
}

/// Builds images as needed and returns the id of every service's image.
pub(crate) fn images(
    s: &Session,
    desired: &Desired,
    build_all: bool,
    progress: &Progress,
) -> Result<BTreeMap<String, String>, CliError> {
    let on = |e: ImageEvent| progress.message(&image_text(&e));
    s.rt.block_on(berth_deploy::images::resolve(
        &s.engine, desired, build_all, &on,
    ))
    .map_err(image_error)
}

/// What is on the engine: the project's containers, and every network and volume.
pub fn actual(s: &Session) -> Result<Actual, CliError> {
    Ok(s.rt.block_on(berth_deploy::actual::read(&s.engine, s.project()))?)
}
