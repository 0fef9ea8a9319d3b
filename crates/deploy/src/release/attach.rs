//! Pointing the proxy at services' running containers without a rollout: routed services a
//! deploy did not change, and what `berth up` started.

use super::error::ReleaseRunError;
use crate::desired::Desired;
use crate::policy::{Kind, Policy};
use crate::rollout::{DeployEvent, Deployer};
use crate::store::JournalStep;
use crate::traffic::Traffic;
use berth_compose::Project;
use berth_engine::Engine;
use berth_proxy_api::AdminError;
use std::collections::BTreeMap;

/// Routed services that did not change still get their route (a first deploy after `up`, or
/// a proxy that lost its state): the proxy is pointed at their running containers.
pub async fn attach_routes(
    engine: &Engine,
    project: &str,
    desired: &Desired,
    policies: &BTreeMap<String, Policy>,
    traffic: Option<&Traffic>,
    on: &(dyn Fn(DeployEvent) + Sync),
) -> Result<(), ReleaseRunError> {
    let journal = |_: JournalStep| {};
    let d = Deployer {
        engine,
        traffic,
        project,
        release: 0,
        on,
        journal: &journal,
        control: &|| None,
    };
    for svc in &desired.services {
        if let Some(p) = policies.get(&svc.name) {
            d.attach(&svc.name, p).await?;
        }
    }
    Ok(())
}

/// The rollout policy of every service whose policy is valid. `up` uses them to revert and to
/// route what it started; a service whose `x-berth` a deploy would refuse is left alone here.
pub fn valid_policies(project: &Project, desired: &Desired) -> BTreeMap<String, Policy> {
    desired
        .services
        .iter()
        .filter_map(|d| {
            let svc = &project.services[&d.name];
            let spec = d.containers.first()?;
            let p = crate::policy::policy(project, &d.name, svc, spec, d.health_deadline).ok()?;
            Some((d.name.clone(), p))
        })
        .collect()
}

/// What routing after `berth up` did.
#[derive(Debug)]
pub enum RouteAfterUp {
    /// No service is routed, or each was pointed at its containers.
    Done,
    /// The proxy does not answer: these services are not routed yet.
    ProxyDown {
        services: Vec<String>,
        error: AdminError,
    },
}

/// After `berth up`: routed services are pointed at their containers when the proxy runs
/// (`up` recreates containers without a deploy's traffic moves; this keeps the proxy's sets in
/// step); when it does not, the caller says how to start it.
pub async fn route_after_up(
    engine: &Engine,
    project: &Project,
    desired: &Desired,
    traffic: &Traffic,
) -> Result<RouteAfterUp, ReleaseRunError> {
    let mut policies = valid_policies(project, desired);
    policies.retain(|_, p| matches!(p.kind, Kind::Routed(_)));
    if policies.is_empty() {
        return Ok(RouteAfterUp::Done);
    }
    if let Err(error) = traffic.check().await {
        return Ok(RouteAfterUp::ProxyDown {
            services: policies.keys().cloned().collect(),
            error,
        });
    }
    attach_routes(
        engine,
        &project.name,
        desired,
        &policies,
        Some(traffic),
        &|_| {},
    )
    .await?;
    Ok(RouteAfterUp::Done)
}
