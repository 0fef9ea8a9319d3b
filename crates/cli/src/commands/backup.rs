//! `berth backup create|list|restore`: parses, resolves the repository once, and renders
//! the events of the sequences in crates/backup.

use std::io::IsTerminal;

use berth_backup::catalog::Catalog;
use berth_backup::{
    BackupError, BackupEvent, CreateRequest, Repo, RepoConfig, RestoreRequest, VerifyRequest,
};

use super::session::Session;
use super::CliError;
use crate::args::{
    BackupArgs, BackupCommand, BackupCreateArgs, BackupListArgs, BackupRestoreArgs,
    BackupVerifyArgs, ProjectArgs, TextFormat,
};

pub fn run(p: &ProjectArgs, a: &BackupArgs) -> Result<(), CliError> {
    match &a.command {
        BackupCommand::Create(a) => create(p, a),
        BackupCommand::List(a) => list(p, a),
        BackupCommand::Restore(a) => restore(p, a),
        BackupCommand::Verify(a) => verify(p, a),
    }
}

/// Refusals the user answers by changing the command, not the system: exit 2.
pub fn is_usage(e: &BackupError) -> bool {
    matches!(
        e,
        BackupError::UnknownService { .. }
            | BackupError::Unsupported { .. }
            | BackupError::BadInto { .. }
            | BackupError::NoSnapshot(_)
            | BackupError::TargetNotEmpty { .. }
            | BackupError::LiveDatabase { .. }
            | BackupError::OtherProject { .. }
            | BackupError::NotBerth(_)
            | BackupError::NoRepository { .. }
    )
}

fn repo_config(project: &berth_compose::Project) -> RepoConfig {
    let env = crate::env::get();
    let home = env.home.as_ref().map(std::path::PathBuf::from);
    RepoConfig::resolve(
        project,
        env.backup_password_file.clone(),
        &env.config_home(),
        home.as_deref(),
    )
}

fn create(p: &ProjectArgs, a: &BackupCreateArgs) -> Result<(), CliError> {
    // Everything the command says is checked before the engine is asked anything.
    let loaded = berth_compose::load(&super::load_options(p))?;
    for tag in &a.tags {
        if tag.is_empty() || tag.contains(',') || tag.contains(char::is_whitespace) {
            return Err(CliError::Usage(format!(
                "--tag `{tag}`: a tag is one word without commas or spaces"
            )));
        }
    }
    let items = berth_backup::plan(&loaded.project, &a.services)?;
    if items.is_empty() {
        return Err(CliError::Usage(
            "nothing to back up: no service has a database dump, a named volume or x-berth.backup: bind".into(),
        ));
    }
    let config = repo_config(&loaded.project);
    let request = CreateRequest {
        items,
        tags: a.tags.clone(),
        stop: !a.no_stop,
        state_dir: crate::env::get().deploy_state_dir(),
    };
    berth_backup::validate(&request)?;
    let s = Session::open(p)?;
    let mut render = Render::new(a.format);
    let repo = Repo::open_or_create(&config, &mut |e| render.event(e))?;
    let made = s.rt.block_on(berth_backup::create(
        &s.engine,
        &loaded.project,
        repo,
        &request,
        &mut |e| render.event(e),
    ))?;
    if a.format == TextFormat::Json {
        for snap in &made {
            println!("{}", json(snap)?);
        }
    }
    Ok(())
}

fn list(p: &ProjectArgs, a: &BackupListArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let config = repo_config(&loaded.project);
    let repo = Repo::open(&config)?;
    let catalog = Catalog::open(&crate::env::get().deploy_state_dir());
    let snaps = berth_backup::snapshot::list(&repo, &loaded.project.name, &catalog)?;
    match a.format {
        TextFormat::Json => {
            for s in &snaps {
                println!("{}", json(s)?);
            }
        }
        TextFormat::Text => {
            let mut table =
                crate::table::Table::new(&["ID", "TIME", "ITEM", "SIZE", "ADDED", "TAGS"])
                    .right(3)
                    .right(4);
            for s in &snaps {
                let own: Vec<&str> = s
                    .tags
                    .iter()
                    .map(String::as_str)
                    .filter(|t| *t != "berth" && !t.contains('='))
                    .collect();
                table.row(vec![
                    s.short_id.clone(),
                    short_time(&s.time),
                    s.item.clone(),
                    bytes(s.bytes),
                    bytes(s.added),
                    s.verified_at
                        .as_deref()
                        .map(short_time)
                        .unwrap_or_else(|| "-".into()),
                    own.join(","),
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}

fn restore(p: &ProjectArgs, a: &BackupRestoreArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let config = repo_config(&loaded.project);
    let request = RestoreRequest {
        snapshot: a.snapshot.clone(),
        into: a.into.clone(),
        force: a.force,
        state_dir: crate::env::get().deploy_state_dir(),
    };
    let repo = Repo::open(&config)?;
    let s = Session::open(p)?;
    let mut render = Render::new(TextFormat::Text);
    s.rt.block_on(berth_backup::restore(
        &s.engine,
        &loaded.project,
        repo,
        &request,
        &mut |e| render.event(e),
    ))?;
    Ok(())
}

fn verify(p: &ProjectArgs, a: &BackupVerifyArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let config = repo_config(&loaded.project);
    let request = VerifyRequest {
        snapshot: a.snapshot.clone().unwrap_or_else(|| "latest".into()),
        state_dir: crate::env::get().deploy_state_dir(),
    };
    let repo = Repo::open(&config)?;
    let s = Session::open(p)?;
    let verified = s.rt.block_on(berth_backup::verify(
        &s.engine,
        &loaded.project,
        repo,
        &request,
    ))?;
    match a.format {
        TextFormat::Json => println!(
            "{}",
            serde_json::to_string(&verified).map_err(|e| CliError::Io(e.to_string()))?
        ),
        TextFormat::Text => println!(
            "{} {}: verified, every byte read back and restored ({})",
            verified.snapshot.short_id, verified.snapshot.item, verified.probe
        ),
    }
    Ok(())
}

fn json(snap: &berth_backup::Snapshot) -> Result<String, CliError> {
    serde_json::to_string(snap).map_err(|e| CliError::Io(e.to_string()))
}

/// `2026-12-05T18:57:11.8Z` as `2026-12-05 18:57:11`.
fn short_time(rfc3339: &str) -> String {
    rfc3339
        .chars()
        .take(19)
        .collect::<String>()
        .replace('T', " ")
}

/// Human sizes as `restic stats` prints them (binary units).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Renders backup events: a line each on standard error (progress, not results), so that
/// standard output holds only what `--format json` promises.
struct Render {
    format: TextFormat,
    terminal: bool,
}

impl Render {
    fn new(format: TextFormat) -> Render {
        Render {
            format,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn event(&mut self, e: BackupEvent) {
        let _ = self.terminal;
        match e {
            BackupEvent::PasswordCreated { path } => eprintln!(
                "created the backup password file {} (0600); keep a copy off this server: without it the backups cannot be read",
                path.display()
            ),
            BackupEvent::RepositoryCreated { path } => {
                eprintln!("created the backup repository {}", path.display())
            }
            BackupEvent::Recovered { containers } => eprintln!(
                "started {} again (left stopped by an interrupted backup)",
                containers.join(", ")
            ),
            BackupEvent::Stopping { container } => eprintln!("stopping {container} for the snapshot"),
            BackupEvent::Started { container } => eprintln!("started {container}"),
            BackupEvent::ItemStarted { item } => {
                if self.format == TextFormat::Text {
                    eprintln!("{item}: backing up");
                }
            }
            BackupEvent::ItemDone {
                item,
                snapshot,
                bytes: read,
                added,
                elapsed,
            } => {
                let secs = elapsed.as_secs_f64().max(0.001);
                let line = format!(
                    "{item}: snapshot {snapshot}, {} read, {} added, {:.1}s ({}/s)",
                    bytes(read),
                    bytes(added),
                    secs,
                    bytes((read as f64 / secs) as u64)
                );
                if self.format == TextFormat::Text {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            BackupEvent::SafetySnapshot { item, snapshot } => eprintln!(
                "{item}: saved its present state as snapshot {snapshot} (tag safety) before replacing it"
            ),
            BackupEvent::Restored { item, target } => println!("restored {item} into {target}"),
        }
    }
}
