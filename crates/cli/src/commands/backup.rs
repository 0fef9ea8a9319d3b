//! `berth backup create|list|verify|restore|prune|schedule`: parses, resolves the repository once, and renders
//! the events of the sequences in crates/backup.

use std::io::IsTerminal;

use berth_backup::catalog::Catalog;
use berth_backup::{
    BackupError, BackupEvent, CreateRequest, Repo, RepoConfig, RestoreRequest, VerifyRequest,
};

use super::deploy::state_dir;
use super::session::Session;
use super::CliError;
use crate::args::{
    BackupArgs, BackupCommand, BackupCreateArgs, BackupListArgs, BackupPruneArgs,
    BackupRestoreArgs, BackupScheduleArgs, BackupVerifyArgs, ProjectArgs, TextFormat,
};

pub fn run(p: &ProjectArgs, a: &BackupArgs) -> Result<(), CliError> {
    match &a.command {
        BackupCommand::Create(a) => create(p, a),
        BackupCommand::List(a) => list(p, a),
        BackupCommand::Restore(a) => restore(p, a),
        BackupCommand::Verify(a) => verify(p, a),
        BackupCommand::Prune(a) => prune(p, a),
        BackupCommand::Schedule(a) => schedule(p, a),
    }
}

/// Refusals the user answers by changing the command, not the system: exit 2.
pub fn is_usage(e: &BackupError) -> bool {
    matches!(
        e,
        BackupError::UnknownService { .. }
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
    let mut config = RepoConfig::resolve(
        project,
        env.backup_password_file.clone(),
        &env.config_home(),
        home.as_deref(),
    );
    // Bars only on a terminal; piped output keeps its one line per item.
    if std::io::stderr().is_terminal() {
        config.meter = bar_meter();
    }
    config
}

/// A bar with bytes, throughput and time left for each counted step rustic reports.
fn bar_meter() -> berth_backup::meter::Meter {
    use berth_backup::meter::{Meter, Tick};
    use indicatif::{ProgressBar, ProgressStyle};
    let bar: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
    Meter::new(move |tick| {
        let mut slot = bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match tick {
            Tick::Begin { title } => {
                let b = ProgressBar::new(0);
                let style = ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                b.set_style(style);
                b.set_message(title);
                *slot = Some(b);
            }
            Tick::Total(n) => {
                if let Some(b) = slot.as_ref() {
                    b.set_length(n);
                }
            }
            Tick::Advance(n) => {
                if let Some(b) = slot.as_ref() {
                    b.inc(n);
                }
            }
            Tick::End => {
                if let Some(b) = slot.take() {
                    b.finish_and_clear();
                }
            }
        }
    })
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
    // The live release, to tag the snapshots with; a store that cannot be read leaves the
    // tag out rather than the backup undone.
    let release = state_dir()
        .open_store()
        .ok()
        .and_then(|store| store.last_succeeded(&loaded.project.name).ok().flatten())
        .map(|r| r.number);
    let request = CreateRequest {
        items,
        tags: a.tags.clone(),
        release,
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
            let mut table = crate::table::Table::new(&[
                "ID", "TIME", "ITEM", "SIZE", "ADDED", "VERIFIED", "TAGS",
            ])
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

fn prune(p: &ProjectArgs, a: &BackupPruneArgs) -> Result<(), CliError> {
    let loaded = berth_compose::load(&super::load_options(p))?;
    let policy = keep_policy(&loaded.project, a)?;
    let config = repo_config(&loaded.project);
    let request = berth_backup::PruneRequest {
        policy,
        dry_run: a.dry_run,
        state_dir: crate::env::get().deploy_state_dir(),
    };
    let repo = Repo::open(&config)?;
    // rustic_core's prune runs blocking work on the current thread; a runtime gives it one
    // it may block (no engine is needed).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(e.to_string()))?;
    let report =
        rt.block_on(async { berth_backup::prune(&repo, &loaded.project.name, &request) })?;
    match a.format {
        TextFormat::Json => {
            for s in &report.snapshots {
                println!(
                    "{}",
                    serde_json::to_string(s).map_err(|e| CliError::Io(e.to_string()))?
                );
            }
        }
        TextFormat::Text => {
            let verb = if report.dry_run {
                "would remove"
            } else {
                "removed"
            };
            for s in &report.snapshots {
                let what = if s.keep {
                    let why: Vec<&str> = s.reasons.iter().map(|r| r.as_str()).collect();
                    format!("keep ({})", why.join(", "))
                } else {
                    verb.to_string()
                };
                println!(
                    "{} {} {}: {what}",
                    s.snapshot.short_id,
                    short_time(&s.snapshot.time),
                    s.snapshot.item
                );
            }
            let removed = report.snapshots.iter().filter(|s| !s.keep).count();
            let kept = report.snapshots.len() - removed;
            if report.dry_run {
                eprintln!("dry run: {kept} kept, {removed} would be removed; nothing changed");
            } else {
                eprintln!(
                    "{kept} kept, {removed} removed; {} unused chunks and {} pack files dropped",
                    report.blobs_removed, report.packs_removed
                );
            }
        }
    }
    Ok(())
}

/// The flags are the whole policy when any is given (what was typed is what happens);
/// otherwise `x-berth.backups.keep`. A policy that keeps nothing is refused.
fn keep_policy(
    project: &berth_compose::Project,
    a: &BackupPruneArgs,
) -> Result<berth_backup::KeepPolicy, CliError> {
    let flags = [a.keep_last, a.keep_daily, a.keep_weekly, a.keep_monthly];
    let policy = if flags.iter().any(Option::is_some) {
        berth_backup::KeepPolicy {
            last: a.keep_last.unwrap_or(0),
            daily: a.keep_daily.unwrap_or(0),
            weekly: a.keep_weekly.unwrap_or(0),
            monthly: a.keep_monthly.unwrap_or(0),
        }
    } else {
        berth_backup::prune::project_policy(project)
    };
    if policy.is_empty() {
        return Err(CliError::Usage(
            "no keep policy: give --keep-last/--keep-daily/--keep-weekly/--keep-monthly, or set x-berth.backups.keep (for example `daily: 7`) in the compose file".into(),
        ));
    }
    Ok(policy)
}

fn schedule(p: &ProjectArgs, a: &BackupScheduleArgs) -> Result<(), CliError> {
    use berth_backup::schedule::{self, Every};
    let loaded = berth_compose::load(&super::load_options(p))?;
    let every = Every::parse(&a.every).ok_or_else(|| {
        CliError::Usage(format!(
            "--every {}: not a period berth schedules; use one of {}",
            a.every,
            schedule::ACCEPTED
        ))
    })?;
    // The routine prunes, so it needs the project's own policy (flags cannot reach a timer).
    if berth_backup::prune::project_policy(&loaded.project).is_empty() {
        return Err(CliError::Usage(
            "the scheduled routine prunes by x-berth.backups.keep, which is not set; add it to the compose file (for example `keep: {daily: 7, weekly: 4}`)".into(),
        ));
    }
    let opts = super::systemd::unit_options(p, &loaded, a.user)?;
    if a.cron {
        println!("{}", schedule::cron_line(&opts, every)?);
        return Ok(());
    }
    let stem = schedule::unit_stem(&loaded.project.name);
    let service = schedule::service_unit(&opts)?;
    let timer = schedule::timer_unit(&opts, every);
    if !a.install {
        println!("# {stem}.service\n{service}\n# {stem}.timer\n{timer}");
        return Ok(());
    }
    let files = [
        (format!("{stem}.service"), service),
        (format!("{stem}.timer"), timer),
    ];
    let timer_name = format!("{stem}.timer");
    super::systemd::install(
        &files,
        a.user,
        &["enable", "--now", &timer_name],
        "the backup routine runs on schedule",
    )
}

/// `berth deploy`'s backup before its release command (issue #16 item 5): the items of the
/// services whose `x-berth.backup` is set, resolved before the deploy touches anything.
#[derive(Clone)]
pub(crate) struct PreRelease {
    items: Vec<berth_backup::Item>,
    config: RepoConfig,
    state_dir: std::path::PathBuf,
}

/// `None` when no service sets `x-berth.backup` (or every one says `none`).
pub(crate) fn pre_release(
    project: &berth_compose::Project,
) -> Result<Option<PreRelease>, CliError> {
    use berth_compose::berth_ext::BackupKind;
    let declared: Vec<String> = project
        .services
        .iter()
        .filter(|(_, svc)| {
            svc.berth
                .as_ref()
                .and_then(|b| b.backup.as_ref())
                .is_some_and(|k| *k != BackupKind::None)
        })
        .map(|(name, _)| name.clone())
        .collect();
    if declared.is_empty() {
        return Ok(None);
    }
    let items = berth_backup::plan(project, &declared)?;
    if items.is_empty() {
        return Ok(None);
    }
    Ok(Some(PreRelease {
        items,
        config: repo_config(project),
        state_dir: crate::env::get().deploy_state_dir(),
    }))
}

impl PreRelease {
    /// The hook the release runs before its first release command: one backup of the
    /// declared items, tagged `pre-release` and `release=N`. Its lines go to standard error,
    /// so a JSON deploy's standard output stays JSON.
    pub(crate) fn hook(
        &self,
        engine: &berth_engine::Engine,
        project: &berth_compose::Project,
    ) -> Box<berth_deploy::release::BeforeRisk> {
        let (this, engine, project) = (self.clone(), engine.clone(), project.clone());
        Box::new(move |number| {
            let (this, engine, project) = (this.clone(), engine.clone(), project.clone());
            Box::pin(async move {
                let mut render = Render::new(TextFormat::Json);
                let repo = Repo::open_or_create(&this.config, &mut |e| render.event(e))
                    .map_err(|e| e.to_string())?;
                let request = CreateRequest {
                    items: this.items.clone(),
                    tags: vec!["pre-release".into()],
                    release: Some(number),
                    stop: true,
                    state_dir: this.state_dir.clone(),
                };
                let made = berth_backup::create(&engine, &project, repo, &request, &mut |e| {
                    render.event(e)
                })
                .await
                .map_err(|e| e.to_string())?;
                Ok(made.into_iter().map(|s| s.id).collect())
            })
        })
    }
}

/// After `berth rollback`: the restore commands that put the data back as it was before
/// `release` ran its release command. A rollback never restores data by itself: the data
/// written since would be lost, and only the operator knows whether that is wanted.
pub(crate) fn offer_restore(release: u64, snapshots: &[String]) {
    if snapshots.is_empty() {
        return;
    }
    eprintln!(
        "release {release} backed up the data before its release command; to put it back as it was then (the data written since is replaced):"
    );
    for id in snapshots {
        eprintln!(
            "  berth backup restore {} --force",
            berth_backup::snapshot::short_id(id)
        );
    }
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
