//! `berth backup restore`: a snapshot back into its volume, directory or database.

use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_compose::Project;
use berth_deploy::labels;
use berth_engine::{Engine, VolumeSpec};

use crate::create::{new_snapshot, running_container, tree};
use crate::database::{self, DumpKind};
use crate::item::tag_value;
use crate::repository::{err, rustic_error};
use crate::stopped::{recover, StoppedContainer, StoppedJournal};
use crate::{dump, BackupError, BackupEvent, Item, Repo};

/// A validated `berth backup restore`.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// A snapshot id, or a unique prefix of one (8 characters as `list` shows), or `latest`.
    pub snapshot: String,
    /// Another target: a volume (its compose key or engine name), a directory, or a
    /// service running the same database engine.
    pub into: Option<String>,
    /// Replace a target that holds data (after a safety snapshot of it).
    pub force: bool,
    pub state_dir: PathBuf,
}

/// Where a snapshot goes back to.
enum Target {
    Volume {
        item: Item,
        mountpoint: PathBuf,
    },
    Bind {
        item: Item,
    },
    /// A database server, loaded by its engine's own tool.
    Dump {
        service: String,
        dump: DumpKind,
    },
}

/// Restores one snapshot. A target that holds data is refused without `force`; with it,
/// the target's present state is saved first (a snapshot tagged `safety`), and afterwards
/// the target is exactly the snapshot: files it does not hold are removed.
pub async fn restore(
    engine: &Engine,
    project: &Project,
    repo: Repo,
    req: &RestoreRequest,
    on: &mut dyn FnMut(BackupEvent),
) -> Result<(), BackupError> {
    // Phase 1: start again what an interrupted run left stopped.
    let journal = StoppedJournal::new(&req.state_dir, &project.name);
    let recovered = recover(engine, &journal).await?;
    if !recovered.is_empty() {
        on(BackupEvent::Recovered {
            containers: recovered,
        });
    }

    // Phase 2: the snapshot, which must be berth's and this project's.
    let (snap, listed) = crate::snapshot::own(&repo, &project.name, &req.snapshot)?;
    let item_id = tag_value(&listed.tags, "item").unwrap_or("").to_string();
    let inside = snap
        .paths
        .iter()
        .next()
        .cloned()
        .ok_or_else(|| BackupError::NotBerth(listed.short_id.clone()))?;

    // Phase 3: the target, and whether it holds data.
    let target = target(engine, project, &item_id, req.into.as_deref()).await?;
    let (holds_data, target_name) = match &target {
        Target::Volume { item, mountpoint } => (!is_empty(mountpoint)?, item.id()),
        Target::Bind { item } => {
            let Item::Bind { path, .. } = item else {
                unreachable!("a bind target holds a bind item")
            };
            (path.exists() && !is_empty(path)?, item.id())
        }
        Target::Dump { service, dump } => {
            let c = running_container(engine, project, service).await?;
            let holds = match dump.count_script() {
                Some(script) => {
                    let out = dump::output(
                        engine,
                        &c.id,
                        service,
                        "counting what the server holds",
                        &script,
                    )
                    .await?;
                    out.trim().parse::<u64>().map_or(true, |n| n > 0)
                }
                // berth cannot ask an engine it does not know: it counts as holding data.
                None => true,
            };
            (holds, format!("{}:{service}", dump.name()))
        }
    };
    if holds_data && !req.force {
        return Err(BackupError::TargetNotEmpty {
            target: target_name,
        });
    }

    // Phase 4: every byte the snapshot needs, read back and authenticated: a damaged
    // snapshot is refused before anything is stopped or replaced.
    let config = repo.config.clone();
    let indexed = tokio::task::block_in_place(|| repo.inner.to_indexed())
        .map_err(err(&config, "reading the index"))?;
    crate::verify::read_back(&indexed, &config, &snap, &listed.short_id)?;

    // Phase 5: a safety snapshot of what is about to be replaced.
    let users = match &target {
        Target::Volume { item, .. } => users_of(engine, project, item).await?,
        Target::Bind { .. } => Vec::new(),
        // A server that reads its data only when it starts is restarted after the load.
        Target::Dump { service, dump } if dump.restarts_after_load() => {
            let c = running_container(engine, project, service).await?;
            vec![StoppedContainer {
                id: c.id,
                name: c.name,
            }]
        }
        Target::Dump { .. } => Vec::new(),
    };
    if holds_data {
        let safety = vec!["safety".to_string()];
        let saved = match &target {
            Target::Volume { item, mountpoint } => {
                let snap = new_snapshot(&config, item, &project.name, &safety)?;
                let cache = (req.state_dir.as_path(), project.name.as_str());
                tree(&indexed, &config, item, mountpoint, cache, snap)?
            }
            Target::Bind { item } => {
                let Item::Bind { path, .. } = item else {
                    unreachable!("a bind target holds a bind item")
                };
                let snap = new_snapshot(&config, item, &project.name, &safety)?;
                let cache = (req.state_dir.as_path(), project.name.as_str());
                tree(&indexed, &config, item, path, cache, snap)?
            }
            Target::Dump { service, dump } => {
                let item = Item::Dump {
                    service: service.clone(),
                    dump: dump.clone(),
                };
                let c = running_container(engine, project, service).await?;
                let snap = new_snapshot(&config, &item, &project.name, &safety)?;
                dump::store(
                    engine,
                    &indexed,
                    &config,
                    dump,
                    &c.id,
                    service,
                    snap,
                    item.snapshot_path(),
                )
                .await?
            }
        };
        on(BackupEvent::SafetySnapshot {
            item: target_name.clone(),
            snapshot: saved.id.to_hex().chars().take(8).collect(),
        });
    }

    let node = indexed
        .node_from_snapshot_and_path(&snap, &inside)
        .map_err(err(&config, "reading the snapshot"))?;
    let started = Instant::now();
    match &target {
        // Phase 6 (database): the engine's loader in the running server (pg_restore in one
        // transaction), then a restart for an engine that reads its files only at start.
        Target::Dump { service, dump } => {
            let c = running_container(engine, project, service).await?;
            dump::load(
                engine,
                &indexed,
                &config,
                dump,
                &dump.load_script(),
                &c.id,
                service,
                &node,
            )
            .await?;
            if !users.is_empty() {
                stop(engine, &users, &journal, on).await?;
                crate::create::start_again_pub(engine, &users, &journal, on).await?;
            }
        }
        // Phase 6 (files): stop the users, write the tree, start them again.
        Target::Volume { .. } | Target::Bind { .. } => {
            let path = match &target {
                Target::Volume { mountpoint, .. } => mountpoint.clone(),
                Target::Bind {
                    item: Item::Bind { path, .. },
                } => path.clone(),
                _ => unreachable!("matched above"),
            };
            stop(engine, &users, &journal, on).await?;
            let written =
                tokio::task::block_in_place(|| crate::source::restore_dir(&indexed, &node, &path))
                    .map_err(|e| match e {
                        crate::source::RestoreDirError::Repository(e) => {
                            rustic_error(&config, "restoring the snapshot", &e)
                        }
                        crate::source::RestoreDirError::Io(cause) => BackupError::BindUnreadable {
                            path: path.clone(),
                            cause,
                        },
                    });
            let back = crate::create::start_again_pub(engine, &users, &journal, on).await;
            written?;
            back?;
        }
    }
    let _ = started;
    on(BackupEvent::Restored {
        item: item_id,
        target: target_name,
    });
    Ok(())
}

/// Stops `users` (dependents first), journaled before the first stop so that the next berth
/// command starts them again if this one is killed.
async fn stop(
    engine: &Engine,
    users: &[StoppedContainer],
    journal: &StoppedJournal,
    on: &mut dyn FnMut(BackupEvent),
) -> Result<(), BackupError> {
    journal.write(users)?;
    for c in users.iter().rev() {
        on(BackupEvent::Stopping {
            container: c.name.clone(),
        });
        engine.stop_container(&c.id, None).await?;
    }
    Ok(())
}

/// Resolves the restore's target from the snapshot's item and `--into`.
async fn target(
    engine: &Engine,
    project: &Project,
    item_id: &str,
    into: Option<&str>,
) -> Result<Target, BackupError> {
    let (kind, name) = item_id
        .split_once(':')
        .ok_or_else(|| BackupError::NotBerth(item_id.to_string()))?;
    match kind {
        "postgres" | "mysql" | "redis" | "custom" => {
            let service = into.unwrap_or(name).to_string();
            let Some(definition) = project.services.get(&service) else {
                return Err(BackupError::BadInto {
                    into: service,
                    what: "service",
                    project: project.name.clone(),
                });
            };
            // A built-in engine is known by the snapshot's kind; a custom one loads with the
            // restore command the target service declares.
            let declared = definition
                .berth
                .as_ref()
                .and_then(|b| b.backup.as_ref())
                .and_then(DumpKind::of);
            let dump = match (database::builtin(kind), declared) {
                (Some(dump), _) => dump,
                (None, Some(custom @ DumpKind::Custom { .. })) => custom,
                (None, _) => {
                    return Err(BackupError::BadInto {
                        into: service,
                        what: "service with x-berth.backup: { command, restore } (the snapshot was made by a custom command)",
                        project: project.name.clone(),
                    })
                }
            };
            Ok(Target::Dump { service, dump })
        }
        "volume" => {
            let wanted = into.unwrap_or(name);
            // A compose key names the project's volume; anything else is an engine name.
            let (key, engine_name) = match project.volumes.get(wanted) {
                Some(r) => (wanted.to_string(), r.name.clone()),
                None if into.is_some() => (wanted.to_string(), wanted.to_string()),
                None => {
                    return Err(BackupError::BadInto {
                        into: wanted.to_string(),
                        what: "volume (the snapshot's volume is gone from the compose file; name one with --into)",
                        project: project.name.clone(),
                    })
                }
            };
            let volume = match engine.inspect_volume(&engine_name).await? {
                Some(v) => v,
                None => {
                    engine
                        .ensure_volume(&VolumeSpec {
                            name: engine_name.clone(),
                            driver: None,
                            driver_opts: Default::default(),
                            labels: Default::default(),
                        })
                        .await?;
                    engine.inspect_volume(&engine_name).await?.ok_or_else(|| {
                        BackupError::NoVolume {
                            volume: engine_name.clone(),
                        }
                    })?
                }
            };
            let item = Item::Volume {
                key,
                name: engine_name,
                users: vec![],
                writers: vec![],
                database: None,
            };
            Ok(Target::Volume {
                item,
                mountpoint: PathBuf::from(volume.mountpoint),
            })
        }
        "bind" => {
            let path = PathBuf::from(into.unwrap_or(name));
            Ok(Target::Bind {
                item: Item::Bind {
                    path,
                    users: vec![],
                    writers: vec![],
                },
            })
        }
        _ => Err(BackupError::NotBerth(item_id.to_string())),
    }
}

/// The running containers that use the volume, in start order; one outside the project is
/// refused, by name.
async fn users_of(
    engine: &Engine,
    project: &Project,
    item: &Item,
) -> Result<Vec<StoppedContainer>, BackupError> {
    let Item::Volume { name, .. } = item else {
        return Ok(Vec::new());
    };
    let mut users = Vec::new();
    for c in engine.containers_using_volume(name).await? {
        if c.state != "running" {
            continue;
        }
        let theirs = c.labels.get(labels::COMPOSE_PROJECT).map(String::as_str);
        if theirs != Some(project.name.as_str()) {
            return Err(BackupError::ForeignUser {
                volume: name.clone(),
                container: c.name,
                project: project.name.clone(),
            });
        }
        users.push(StoppedContainer {
            id: c.id,
            name: c.name,
        });
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

fn is_empty(path: &Path) -> Result<bool, BackupError> {
    let mut entries = std::fs::read_dir(path).map_err(|cause| BackupError::BindUnreadable {
        path: path.to_path_buf(),
        cause,
    })?;
    Ok(entries.next().is_none())
}
