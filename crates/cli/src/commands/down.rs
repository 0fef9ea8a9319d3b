//! `berth down`: stop and remove the project's containers and networks, and with `-v` its
//! named volumes — only what carries the project's labels, never anything else — and the
//! proxy routes of its services.

use super::session::Session;
use super::up::actual;
use super::CliError;
use crate::args::{DownArgs, ProjectArgs};
use crate::progress::Progress;
use berth_deploy::policy::Kind;
use berth_deploy::traffic::replica_set;
use berth_deploy::{
    desired_state, execute, plan_down, Actual, Context, Desired, DownOptions, ExecuteOptions,
};
use berth_proxy_api::{AdminClient, AdminError};
use std::time::Duration;

pub fn run(p: &ProjectArgs, a: &DownArgs) -> Result<(), CliError> {
    if let Some(r) = a.rmi.as_deref().filter(|r| *r != "local") {
        return Err(CliError::Usage(format!(
            "--rmi {r} is not supported; use --rmi local (berth never pulls, so every image it uses is local)"
        )));
    }
    let s = Session::open(p)?;
    s.check_services(&a.services)?;
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
    let actual = actual(&s)?;
    let plan = plan_down(
        &desired,
        &actual,
        &DownOptions {
            volumes: a.volumes,
            remove_orphans: a.remove_orphans,
            services: a.services.clone(),
        },
    );
    // Routes go before the containers: a stopped project's host then answers 404 (no route)
    // instead of 502 while its containers stop and 503 for good after.
    remove_routes(&s, &desired, &actual, &a.services);
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
        for svc in desired
            .services
            .iter()
            .filter(|d| d.build.is_some())
            .filter(|d| a.services.is_empty() || a.services.contains(&d.name))
        {
            s.rt.block_on(s.engine.remove_image(&svc.image))?;
            println!("removed image {}", svc.image);
        }
    }
    if a.services.is_empty() {
        println!("{}: down", s.project());
    } else {
        println!("{}: {} down", s.project(), a.services.join(", "));
    }
    Ok(())
}

/// Removes from the host's proxy the routes of `services` (all when empty) and says so. A
/// route is the project's when it has the name berth gives a routed service's route
/// (`PROJECT-SERVICE`), or when one of its target sets is one of the service's containers
/// (a service whose `x-berth.proxy` was taken out of the files since it was routed). `down`
/// never fails for the proxy's sake: without a proxy there is nothing to remove, and a route
/// the proxy refuses to remove is a warning that says how to remove it by hand.
fn remove_routes(s: &Session, desired: &Desired, actual: &Actual, services: &[String]) {
    let selected = |service: &str| services.is_empty() || services.iter().any(|s| s == service);
    let mut by_name: Vec<(String, String)> = Vec::new();
    for d in desired.services.iter().filter(|d| selected(&d.name)) {
        let svc = &s.loaded.project.services[&d.name];
        let Some(spec) = d.containers.first() else {
            continue;
        };
        if let Ok(p) =
            berth_deploy::policy(&s.loaded.project, &d.name, svc, spec, d.health_deadline)
        {
            if let Kind::Routed(route) = p.kind {
                by_name.push((route.name, d.name.clone()));
            }
        }
    }
    let by_set: Vec<(String, String)> = actual
        .project_containers(s.project())
        .into_iter()
        .filter(|o| selected(o.service))
        .map(|o| (replica_set(&o.summary.id), o.service.to_string()))
        .collect();

    let client = AdminClient::new(super::proxy::admin_socket(None));
    let status = match s.rt.block_on(client.status()) {
        Ok(status) => status,
        // No proxy on this host (its socket was never made): nothing routes to the project.
        Err(AdminError::Unreachable { path, .. }) if !path.exists() => return,
        Err(e) => {
            if !by_name.is_empty() {
                crate::report::warning(&format!(
                    "the routes of the project were not removed: {e}; run `berth down` again once the proxy runs"
                ));
            }
            return;
        }
    };
    for route in &status.routes {
        let owner = by_name
            .iter()
            .find(|(name, _)| *name == route.name)
            .or_else(|| {
                by_set
                    .iter()
                    .find(|(set, _)| route.sets.iter().any(|x| x.id == *set))
            })
            .map(|(_, service)| service);
        let Some(service) = owner else { continue };
        match s.rt.block_on(client.remove_route(&route.name)) {
            Ok(()) => {
                let hosts = if route.hosts.is_empty() {
                    "any host".to_string()
                } else {
                    route.hosts.join(", ")
                };
                println!("removed route {service} ({hosts})");
            }
            Err(e) => crate::report::warning(&format!(
                "route {} of service `{service}` was not removed: {e}; remove it with `berth proxy route rm {}`",
                route.name, route.name
            )),
        }
    }
}
