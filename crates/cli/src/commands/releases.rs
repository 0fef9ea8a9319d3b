//! `berth releases` (the release history) and `berth promote` / `berth abort` (a decision for
//! the running canary).

use super::deploy::state_dir;
use super::release_view::release_error;
use super::CliError;
use crate::args::{ProjectArgs, ReleasesArgs, TextFormat};
use berth_deploy::release::short_id;
use berth_deploy::JournalStep;

/// `berth promote` / `berth abort`: a decision for the project's running canary, written to
/// its release's journal, where the deploy process reads it within a fraction of a second.
pub fn decide(p: &ProjectArgs, promote: bool) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let project = loaded.project.name.clone();
    let mut store = state_dir().open_store().map_err(release_error)?;
    let running = store
        .running(&project)
        .map_err(|e| CliError::Failed(e.to_string()))?
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no deploy of project `{project}` is running; `berth releases` shows the last ones"
            ))
        })?;
    let step = if promote {
        JournalStep::Promote
    } else {
        JournalStep::Abort
    };
    store
        .journal_append(&project, running.number, step)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!(
        "release {}: {} requested",
        running.number,
        if promote { "promotion" } else { "abort" }
    );
    Ok(())
}

pub fn releases(p: &ProjectArgs, a: &ReleasesArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let store = state_dir().open_store().map_err(release_error)?;
    let list = store
        .releases(&loaded.project.name)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    match a.format {
        TextFormat::Json => {
            for r in &list {
                println!(
                    "{}",
                    serde_json::to_string(r).map_err(|e| CliError::Io(e.to_string()))?
                );
            }
        }
        TextFormat::Text => {
            let mut table = crate::table::Table::new(&[
                "RELEASE", "CREATED", "STATUS", "STRATEGY", "DURATION", "COMMIT", "IMAGES",
            ])
            .right(4);
            for r in &list {
                let images: Vec<String> = r
                    .services
                    .iter()
                    .map(|s| format!("{}={}", s.service, short_id(&s.image_id)))
                    .collect();
                let mut status = r.status.to_string();
                if let Some(of) = r.rollback_of {
                    status = format!("{status} (rollback to {of})");
                }
                table.row(vec![
                    r.number.to_string(),
                    berth_deploy::clock::format_utc(r.created_at),
                    status,
                    r.strategy.clone(),
                    r.duration_ms
                        .map(|d| format!("{:.1}s", d as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into()),
                    r.git_commit
                        .as_deref()
                        .map(|c| c[..c.len().min(12)].to_string())
                        .unwrap_or_else(|| "-".into()),
                    images.join(" "),
                ]);
                if let Some(reason) = &r.reason {
                    table.note(reason.clone());
                }
                if !r.backup.is_empty() {
                    let short: Vec<&str> = r
                        .backup
                        .iter()
                        .map(|s| berth_backup::snapshot::short_id(s))
                        .collect();
                    table.note(format!(
                        "backed up before its release command: snapshot {}",
                        short.join(", ")
                    ));
                }
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}
