//! Converging a release a killed process left running: finished when it had committed, else
//! reverted, so that the next deploy (or `up`) starts from a known state.

use super::attach::valid_policies;
use super::error::ReleaseRunError;
use super::state::StateDir;
use crate::desired::{desired_state, Context};
use crate::labels;
use crate::policy::{Kind, Policy};
use crate::release::read_journal;
use crate::rollout::{canonical_name, DeployEvent, Deployer};
use crate::store::{JournalStep, Outcome, Store};
use crate::traffic::Traffic;
use berth_compose::Project;
use berth_engine::Engine;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// Converges release `number`, which a killed process left running.
pub async fn recover(
    engine: &Engine,
    store: &Mutex<Store>,
    project: &str,
    number: u64,
    policies: &BTreeMap<String, Policy>,
    traffic: Option<&Traffic>,
    on: &(dyn Fn(DeployEvent) + Sync),
) -> Result<(), ReleaseRunError> {
    let entries = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .journal(project, number)?;
    let j = read_journal(&entries);
    on(DeployEvent::Warning {
        message: format!(
            "release {number} was interrupted; {} it first",
            if j.committed {
                "finishing"
            } else {
                "reverting"
            }
        ),
    });
    let journal = |step: JournalStep| {
        let _ = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal_append(project, number, step);
    };
    let d = Deployer {
        engine,
        traffic,
        project,
        release: number,
        on,
        journal: &journal,
        control: &|| None,
    };
    // The one-off release command container, if it was running.
    for name in &j.services {
        let one = format!("{project}-{name}-release-r{number}");
        if let Some(c) = engine.inspect_container(&one).await? {
            engine.remove_container(&c.id, true, false).await?;
        }
    }
    let committed = crate::release::recover(&d, &j, policies)
        .await
        .map_err(|source| ReleaseRunError::Recover { number, source })?;
    let outcome = if committed {
        Outcome::Succeeded
    } else {
        Outcome::Interrupted(
            "berth was stopped during the deploy; the next command reverted it".into(),
        )
    };
    store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .finish_release(project, number, outcome)?;
    Ok(())
}

/// Removes the previous set a blue-green deploy kept running (containers renamed aside):
/// its window ends with the next command that changes the project.
pub async fn retire_standbys(engine: &Engine, project: &str) -> Result<(), ReleaseRunError> {
    let list = engine
        .list_containers(
            &[
                (labels::COMPOSE_PROJECT, Some(project)),
                (labels::COMPOSE_ONEOFF, Some("False")),
            ],
            true,
        )
        .await?;
    for c in list {
        if canonical_name(&c.name) != c.name {
            engine.remove_container(&c.id, true, false).await?;
        }
    }
    Ok(())
}

/// What converging before `berth up` found.
#[derive(Debug)]
pub enum Converged {
    /// Nothing was interrupted (or it was converged); standbys are retired.
    Done,
    /// The state store could not be read, so an interrupted deploy was not checked.
    Unreadable(ReleaseRunError),
}

/// `berth up` first converges what a killed deploy left (and a blue-green standby), so that
/// it plans against one container per replica.
pub async fn converge_interrupted(
    engine: &Engine,
    project: &Project,
    working_dir: PathBuf,
    config_files: Vec<PathBuf>,
    state: &StateDir,
    traffic: &Traffic,
    on: &(dyn Fn(DeployEvent) + Sync),
) -> Result<Converged, ReleaseRunError> {
    let name = project.name.as_str();
    // No state store means nothing was ever deployed here: `up` must not create one, nor
    // fail because its directory is not writable.
    if !state.has_store() {
        return Ok(Converged::Done);
    }
    let store = match state.open_store() {
        Ok(store) => store,
        Err(e) => return Ok(Converged::Unreadable(e)),
    };
    let Some(r) = store.running(name)? else {
        retire_standbys(engine, name).await?;
        return Ok(Converged::Done);
    };
    let _lock = state.lock(name, "berth up")?;
    let ctx = Context {
        working_dir,
        config_files,
        ..Default::default()
    };
    let first = desired_state(project, &ctx)?;
    let policies = valid_policies(project, &first);
    let routed = policies.values().any(|p| matches!(p.kind, Kind::Routed(_)))
        && traffic.check().await.is_ok();
    let store = Mutex::new(store);
    recover(
        engine,
        &store,
        name,
        r.number,
        &policies,
        routed.then_some(traffic),
        on,
    )
    .await?;
    retire_standbys(engine, name).await?;
    Ok(Converged::Done)
}
