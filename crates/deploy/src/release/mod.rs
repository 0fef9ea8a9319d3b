//! One release across services: the release command, each service's rollout in dependency
//! order, and the release's all-or-nothing end — commit (old containers retired) or revert
//! (every touched service put back). Also what the next command does after a deploy was
//! killed: read the journal and converge.

// Release errors carry the failing rollout (with its log lines) by value; they are made once
// per command, so their size costs nothing worth a box on every variant.
#![allow(clippy::result_large_err)]

mod attach;
mod error;
mod record;
mod recover;
mod run;
mod state;

pub use attach::{attach_routes, route_after_up, valid_policies, RouteAfterUp};
pub use error::{short_id, ReleaseRunError};
pub use record::{changed_since, config_hash, git_commit, record_up, RecordUp};
pub use recover::{
    converge_interrupted, recover as recover_interrupted, retire_standbys, Converged,
};
pub use run::{
    containers_differ, release_strategy, rollout_policy, run, standby_services, validate,
    BeforeRisk, ReleaseEvent, Request, Rollback, RunOutcome, Validated,
};
pub use state::StateDir;

use crate::labels;
use crate::policy::Policy;
use crate::rollout::{DeployEvent, Deployer, RolloutError, ServiceUpdate};
use crate::route_change::RouteBefore;
use crate::store::{JournalEntry, JournalStep};
use berth_engine::{ContainerSpec, EngineError, RestartPolicy};
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest a release command (migrations) may run.
pub const RELEASE_COMMAND_DEADLINE: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The release command failed; nothing else changed.
    #[error("service `{service}`: release command `{command}` exited with code {code}")]
    ReleaseCommand {
        service: String,
        command: String,
        code: i64,
        logs: Vec<String>,
    },
    /// A service's new version was bad and every service was put back.
    #[error("{source}; rolled back to the previous release")]
    RolledBack {
        #[source]
        source: RolloutError,
    },
    /// A service failed and `failure_action: pause` left everything as it was.
    #[error("{source}; left as it is (failure_action: pause)")]
    Paused {
        #[source]
        source: RolloutError,
    },
    /// Putting things back failed as well; both errors are shown.
    #[error("{first}; and rolling back failed: {revert}")]
    RevertFailed {
        first: RolloutError,
        revert: RolloutError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ReleaseError {
    /// The failing container's last log lines, when there are any.
    pub fn logs(&self) -> &[String] {
        match self {
            ReleaseError::ReleaseCommand { logs, .. } => logs,
            ReleaseError::RolledBack { source } | ReleaseError::Paused { source } => match source {
                RolloutError::Unhealthy { logs, .. } => logs,
                _ => &[],
            },
            ReleaseError::RevertFailed {
                first: RolloutError::Unhealthy { logs, .. },
                ..
            } => logs,
            _ => &[],
        }
    }
}

/// Runs `command` once in a one-off container made from `spec` (the new image, the service's
/// environment and networks), before any traffic moves.
pub async fn run_release_command(
    d: &Deployer<'_>,
    service: &str,
    spec: &ContainerSpec,
    command: &[String],
) -> Result<(), ReleaseError> {
    let mut one = spec.clone();
    one.name = format!("{}-{service}-release-r{}", d.project, d.release);
    one.command = Some(command.to_vec());
    one.ports.clear();
    one.healthcheck = None;
    one.restart = RestartPolicy::No;
    one.labels
        .insert(labels::COMPOSE_ONEOFF.into(), "True".into());
    one.labels.insert(labels::ROLE.into(), "oneoff".into());
    // A release command left by an interrupted deploy is in the way of its name.
    if let Some(old) = d.engine.inspect_container(&one.name).await? {
        d.engine.remove_container(&old.id, true, false).await?;
    }
    (d.on)(DeployEvent::Step {
        service: service.to_string(),
        message: format!("release command: {}", command.join(" ")),
    });
    let id = d.engine.create_container(&one).await?;
    d.engine.start_container(&id).await?;
    let code = d
        .engine
        .wait_exit(&id, Some(RELEASE_COMMAND_DEADLINE))
        .await?
        .unwrap_or(-1);
    let logs = d.engine.last_log_lines(&id, 20).await.unwrap_or_default();
    d.engine.remove_container(&id, true, false).await?;
    if code != 0 {
        return Err(ReleaseError::ReleaseCommand {
            service: service.to_string(),
            command: command.join(" "),
            code,
            logs,
        });
    }
    Ok(())
}

/// Rolls every update in order. When one fails, every service touched so far (the failing
/// one included) is reverted in reverse order, unless its policy says pause. Each routed
/// service's route is read (and journaled) before its rollout changes it, so the revert puts
/// it back exactly.
pub async fn roll_all(d: &Deployer<'_>, updates: &[ServiceUpdate]) -> Result<(), ReleaseError> {
    let mut touched: Vec<(&ServiceUpdate, RouteBefore)> = Vec::new();
    for u in updates {
        let rolled = match d.route_before(u).await {
            Ok(before) => {
                touched.push((u, before.clone()));
                d.roll(u, &before).await
            }
            // Nothing of this service changed yet; the ones before it are reverted.
            Err(e) => Err(e),
        };
        if let Err(e) = rolled {
            if u.policy.failure_action == crate::policy::FailureAction::Pause {
                return Err(ReleaseError::Paused { source: e });
            }
            if let RolloutError::Unhealthy {
                service, reason, ..
            } = &e
            {
                (d.on)(DeployEvent::RollingBack {
                    service: service.clone(),
                    reason: reason.clone(),
                });
            }
            for (t, before) in touched.iter().rev() {
                if let Err(revert) = d.revert(&t.service, &t.policy, before).await {
                    return Err(ReleaseError::RevertFailed { first: e, revert });
                }
            }
            (d.journal)(JournalStep::Reverted);
            return Err(ReleaseError::RolledBack { source: e });
        }
    }
    Ok(())
}

/// The release is good: mark it committed in the journal, then retire the old containers.
pub async fn commit(d: &Deployer<'_>, services: &[String]) -> Result<(), RolloutError> {
    (d.journal)(JournalStep::Committed);
    for s in services {
        d.retire_old(s).await?;
    }
    Ok(())
}

/// What an interrupted release's journal says: the services it touched, and whether it had
/// committed (then only retiring old containers was left).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interrupted {
    pub services: Vec<String>,
    pub committed: bool,
    pub reverted: bool,
    /// Each routed service's route before the release changed it, when it got that far.
    pub routes: BTreeMap<String, RouteBefore>,
}

pub fn read_journal(entries: &[JournalEntry]) -> Interrupted {
    let mut out = Interrupted::default();
    for e in entries {
        match &e.step {
            JournalStep::Begin { services, .. } => out.services = services.clone(),
            JournalStep::Committed => out.committed = true,
            JournalStep::Route { service, before } => {
                out.routes.insert(service.clone(), before.clone());
            }
            JournalStep::Reverted => out.reverted = true,
            _ => {}
        }
    }
    out
}

/// Converges what a killed deploy left: a committed release is finished (old containers
/// retired); anything else is reverted, service by service in reverse order. Returns true
/// when the release ended committed.
pub async fn recover(
    d: &Deployer<'_>,
    journal: &Interrupted,
    policies: &BTreeMap<String, Policy>,
) -> Result<bool, RolloutError> {
    if journal.committed {
        for s in &journal.services {
            d.retire_old(s).await?;
        }
        return Ok(true);
    }
    for s in journal.services.iter().rev() {
        let before = journal
            .routes
            .get(s)
            .cloned()
            .unwrap_or(RouteBefore::Unknown);
        match policies.get(s) {
            Some(p) => d.revert(s, p, &before).await?,
            None => {
                // The service left the project since; its new containers still go.
                (d.on)(DeployEvent::Warning {
                    message: format!(
                        "service `{s}` of the interrupted release is no longer in the project; its new containers are removed"
                    ),
                });
                let fallback = Policy {
                    kind: crate::policy::Kind::Worker {
                        has_healthcheck: false,
                    },
                    ..placeholder_policy()
                };
                d.revert(s, &fallback, &before).await?;
            }
        }
    }
    Ok(false)
}

fn placeholder_policy() -> Policy {
    Policy {
        kind: crate::policy::Kind::Worker {
            has_healthcheck: false,
        },
        strategy: Default::default(),
        order: crate::policy::Order::StopFirst,
        parallelism: 1,
        delay: Duration::ZERO,
        monitor: Duration::ZERO,
        max_error_rate: crate::policy::DEFAULT_MAX_ERROR_RATE,
        failure_action: crate::policy::FailureAction::Rollback,
        drain_timeout: berth_proxy_api::DEFAULT_DRAIN_TIMEOUT,
        health_deadline: Duration::from_secs(60),
        stop_grace: None,
        canary_steps: Vec::new(),
        canary_pauses: Vec::new(),
        canary_interval: Duration::ZERO,
        release_command: None,
        notes: Vec::new(),
    }
}
