//! Recording what `berth up` changed as a release of its own, and what every release records:
//! the commit it was made from and the hash of its whole configuration.

use super::error::ReleaseRunError;
use super::state::StateDir;
use crate::desired::Desired;
use crate::store::{JournalStep, NewRelease, Outcome, ServiceImage};
use std::collections::BTreeMap;
use std::path::Path;

/// The commit checked out in `dir`, when it is a git work tree.
pub fn git_commit(dir: &Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}

/// A release's configuration hash: of every service's name and config hash, in order.
pub fn config_hash<'a>(services: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    blake3::hash(
        services
            .into_iter()
            .map(|(name, hash)| format!("{name}={hash};"))
            .collect::<String>()
            .as_bytes(),
    )
    .to_hex()
    .to_string()
}

/// The services whose desired configuration differs from what `last` recorded (or that it
/// did not record at all).
/// What a release records of each desired service whose image id is known: its image by
/// name and id, and its configuration hash. A deploy and `up` record the same way.
pub fn service_images(desired: &Desired, ids: &BTreeMap<String, String>) -> Vec<ServiceImage> {
    desired
        .services
        .iter()
        .filter_map(|d| {
            ids.get(&d.name).map(|id| ServiceImage {
                service: d.name.clone(),
                image_ref: d.image.clone(),
                image_id: id.clone(),
                config_hash: d.config_hash.clone(),
            })
        })
        .collect()
}

pub fn changed_since(desired: &Desired, last: &[ServiceImage]) -> Vec<String> {
    let recorded = |name: &str| last.iter().find(|r| r.service == name);
    desired
        .services
        .iter()
        .filter(|d| recorded(&d.name).is_none_or(|r| r.config_hash != d.config_hash))
        .map(|d| d.name.clone())
        .collect()
}

/// What recording after `berth up` did.
#[derive(Debug)]
pub enum RecordUp {
    /// The project was never deployed, or `up` changed nothing.
    Nothing,
    /// `up` changed what runs but the history could not record it (the store or the lock).
    NotRecorded(ReleaseRunError),
    /// Release `number` records what `up` changed.
    Recorded { number: u64, changed: Vec<String> },
}

/// After `berth up`, when the project has a release history: if what runs now differs from
/// the newest succeeded release (`up` changed a service's configuration or image), it is
/// recorded as a release of its own, strategy `up`, with the specs a `rollback` returns to.
/// So `releases` and `rollback` always know what runs. Nothing is recorded for a project never
/// deployed, nor when `up` changed nothing.
pub fn record_up(
    state: &StateDir,
    project: &str,
    project_dir: &Path,
    desired: &Desired,
    ids: &BTreeMap<String, String>,
) -> Result<RecordUp, ReleaseRunError> {
    if !state.has_store() {
        return Ok(RecordUp::Nothing);
    }
    let mut store = match state.open_store() {
        Ok(store) => store,
        Err(e) => return Ok(RecordUp::NotRecorded(e)),
    };
    let Some(last) = store.last_succeeded(project)? else {
        return Ok(RecordUp::Nothing);
    };
    let changed = changed_since(desired, &last.services);
    if changed.is_empty() {
        return Ok(RecordUp::Nothing);
    }
    let _lock = match state.lock(project, "berth up") {
        Ok(l) => l,
        Err(e) => return Ok(RecordUp::NotRecorded(e)),
    };
    let mut services = service_images(desired, ids);
    // Services `up` did not select run what the last release recorded.
    for r in &last.services {
        if !services.iter().any(|x| x.service == r.service) {
            services.push(r.clone());
        }
    }
    let new = NewRelease {
        git_commit: git_commit(project_dir),
        config_hash: config_hash(
            services
                .iter()
                .map(|x| (x.service.as_str(), x.config_hash.as_str())),
        ),
        strategy: "up".to_string(),
        services,
        rollback_of: None,
    };
    let rel = store.begin_release(project, &new)?;
    let specs = desired
        .services
        .iter()
        .map(|d| (d.name.clone(), d.containers.clone()))
        .collect();
    store.journal_append(
        project,
        rel.number,
        JournalStep::Begin {
            services: changed.clone(),
            specs,
        },
    )?;
    store.finish_release(project, rel.number, Outcome::Succeeded)?;
    Ok(RecordUp::Recorded {
        number: rel.number,
        changed,
    })
}
