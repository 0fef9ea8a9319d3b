//! `berth backup create`: every item of the project as one consistent set, one snapshot per
//! item.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_compose::Project;
use berth_deploy::labels;
use berth_deploy::order::DependencyGraph;
use berth_engine::{ContainerSummary, Engine, HealthOutcome};
use rustic_core::repofile::SnapshotFile;
use rustic_core::{BackupOptions, IndexedIds, Repository, SnapshotOptions};

use crate::content_hashes::ContentHashes;
use crate::repository::{err, rustic_error};
use crate::snapshot::{Recorded, Snapshot};
use crate::source::DirSource;
use crate::stopped::{recover, StoppedContainer, StoppedJournal};
use crate::tree_hash::tree_hash_reusing;
use crate::{dump, BackupError, BackupEvent, Item, Repo, RepoConfig};

/// How long a container stopped for a snapshot may take to be healthy again.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(120);

/// A validated `berth backup create`.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// From [`crate::plan`].
    pub items: Vec<Item>,
    /// The user's own tags (`--tag`), added to every snapshot.
    pub tags: Vec<String>,
    /// The project's release the data belongs to (the live one, or the one about to run
    /// its release command), tagged `release=N` so a snapshot can be matched to its code.
    pub release: Option<u64>,
    /// Stop the writers of volumes and bind mounts for their snapshot (`--stop`, the
    /// default); without, a volume holding a database's files is refused.
    pub stop: bool,
    /// Where the journal of stopped containers is kept.
    pub state_dir: PathBuf,
}

/// Refusals that need no engine: checked by the CLI before the repository is opened, and
/// again by [`create`].
pub fn validate(req: &CreateRequest) -> Result<(), BackupError> {
    for item in &req.items {
        if let (
            false,
            Item::Volume {
                key,
                database: Some(service),
                ..
            },
        ) = (req.stop, item)
        {
            return Err(BackupError::LiveDatabase {
                volume: key.clone(),
                service: service.clone(),
            });
        }
    }
    Ok(())
}

/// Backs up `req.items`: database dumps first, online; then volumes and bind mounts with
/// their writers stopped, in one stop for all of them, so the set is consistent.
pub async fn create(
    engine: &Engine,
    project: &Project,
    repo: Repo,
    req: &CreateRequest,
    on: &mut dyn FnMut(BackupEvent),
) -> Result<Vec<Snapshot>, BackupError> {
    // Phase 1: start again what an interrupted backup left stopped.
    let journal = StoppedJournal::new(&req.state_dir, &project.name);
    let recovered = recover(engine, &journal).await?;
    if !recovered.is_empty() {
        on(BackupEvent::Recovered {
            containers: recovered,
        });
    }

    // Phase 2: check every file item before anything stops, so that a refusal changes
    // nothing: a database volume under --no-stop, a missing or unreadable volume.
    validate(req)?;
    let mut files: Vec<(&Item, PathBuf)> = Vec::new();
    for item in &req.items {
        match item {
            Item::Dump { .. } => {}
            Item::Volume { name, .. } => {
                let volume =
                    engine
                        .inspect_volume(name)
                        .await?
                        .ok_or_else(|| BackupError::NoVolume {
                            volume: name.clone(),
                        })?;
                let path = PathBuf::from(volume.mountpoint);
                std::fs::read_dir(&path).map_err(|cause| BackupError::VolumeUnreadable {
                    volume: name.clone(),
                    path: path.clone(),
                    cause,
                })?;
                files.push((item, path));
            }
            Item::Bind { path, .. } => {
                std::fs::read_dir(path).map_err(|cause| BackupError::BindUnreadable {
                    path: path.clone(),
                    cause,
                })?;
                files.push((item, path.clone()));
            }
        }
    }

    // Phase 3: index the repository once for all items.
    let config = repo.config.clone();
    let indexed = tokio::task::block_in_place(|| repo.inner.to_indexed_ids())
        .map_err(err(&config, "reading the index"))?;
    let mut made = Vec::new();
    let tags = shared_tags(req, &project.project_dir);

    // Phase 4: database dumps, online and consistent by the database's own means.
    for item in &req.items {
        let Item::Dump { service, dump } = item else {
            continue;
        };
        on(BackupEvent::ItemStarted { item: item.id() });
        let started = Instant::now();
        let container = running_container(engine, project, service).await?;
        let snap = new_snapshot(&config, item, &project.name, &tags)?;
        let snap = dump::store(
            engine,
            &indexed,
            &config,
            dump,
            &container.id,
            service,
            snap,
            item.snapshot_path(),
        )
        .await?;
        made.push(done(item, &snap, started.elapsed(), on)?);
    }
    if files.is_empty() {
        return Ok(made);
    }

    // Phase 5: stop the writers, dependents first, journaled before the first stop.
    let writers = if req.stop {
        writer_containers(engine, project, &files).await?
    } else {
        Vec::new()
    };
    journal.write(&writers)?;
    for c in writers.iter().rev() {
        on(BackupEvent::Stopping {
            container: c.name.clone(),
        });
        if let Err(e) = engine.stop_container(&c.id, None).await {
            start_again(engine, &writers, &journal, on).await?;
            return Err(e.into());
        }
    }

    // Phase 6: one snapshot per volume and bind mount, while nothing writes.
    let mut snapshotted = Ok(());
    for (item, path) in &files {
        on(BackupEvent::ItemStarted { item: item.id() });
        let started = Instant::now();
        let result = new_snapshot(&config, item, &project.name, &tags).and_then(|snap| {
            tree(
                &indexed,
                &config,
                item,
                path,
                (&req.state_dir, &project.name),
                snap,
            )
        });
        match result.and_then(|snap| done(item, &snap, started.elapsed(), on)) {
            Ok(s) => made.push(s),
            Err(e) => {
                snapshotted = Err(e);
                break;
            }
        }
    }

    // Phase 7: start the writers again in dependency order, healthy, and close the journal.
    start_again(engine, &writers, &journal, on).await?;
    snapshotted.map(|()| made)
}

/// The tags every snapshot of this backup carries besides the item's own: the release and
/// the git commit of the project's directory, when there are, then the user's.
fn shared_tags(req: &CreateRequest, project_dir: &std::path::Path) -> Vec<String> {
    let mut tags = Vec::new();
    if let Some(n) = req.release {
        tags.push(format!("release={n}"));
    }
    if let Some(commit) = berth_deploy::release::git_commit(project_dir) {
        tags.push(format!("commit={commit}"));
    }
    tags.extend(req.tags.iter().cloned());
    tags
}

/// Starts `stopped` in order, waits for each to be healthy (or running, without a
/// healthcheck), then clears the journal. Every container is started even when an earlier
/// one fails; the first failure is returned.
pub(crate) async fn start_again_pub(
    engine: &Engine,
    stopped: &[StoppedContainer],
    journal: &StoppedJournal,
    on: &mut dyn FnMut(BackupEvent),
) -> Result<(), BackupError> {
    start_again(engine, stopped, journal, on).await
}

async fn start_again(
    engine: &Engine,
    stopped: &[StoppedContainer],
    journal: &StoppedJournal,
    on: &mut dyn FnMut(BackupEvent),
) -> Result<(), BackupError> {
    let mut first_error = None;
    for c in stopped {
        let started = match engine.start_container(&c.id).await {
            Ok(()) => engine.wait_healthy(&c.id, HEALTH_DEADLINE).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(HealthOutcome::Healthy | HealthOutcome::Running) => on(BackupEvent::Started {
                container: c.name.clone(),
            }),
            Ok(outcome) => {
                first_error.get_or_insert(BackupError::NotBack {
                    container: c.name.clone(),
                    service: c.name.clone(),
                    outcome: format!("{outcome:?}").to_lowercase(),
                });
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    journal.clear()?;
    first_error.map_or(Ok(()), Err)
}

/// The project's running containers that write to the file items, in start order
/// (dependencies first). A running container of another project that mounts one of the
/// volumes is refused: berth cannot stop it, and its writes would tear the snapshot.
async fn writer_containers(
    engine: &Engine,
    project: &Project,
    files: &[(&Item, PathBuf)],
) -> Result<Vec<StoppedContainer>, BackupError> {
    let services: BTreeSet<&str> = files
        .iter()
        .flat_map(|(item, _)| item.writers().iter().map(String::as_str))
        .collect();
    for (item, _) in files {
        if let Item::Volume { name, .. } = item {
            for c in engine.containers_using_volume(name).await? {
                let theirs = c.labels.get(labels::COMPOSE_PROJECT).map(String::as_str);
                if c.state == "running" && theirs != Some(project.name.as_str()) {
                    return Err(BackupError::ForeignUser {
                        volume: name.clone(),
                        container: c.name,
                        project: project.name.clone(),
                    });
                }
            }
        }
    }
    let running = engine
        .list_containers(&[(labels::COMPOSE_PROJECT, Some(&project.name))], false)
        .await?;
    let order: Vec<String> = DependencyGraph::from_project(project)
        .levels()
        .map(|levels| levels.into_iter().flatten().collect())
        .unwrap_or_else(|_| project.services.keys().cloned().collect());
    let mut out = Vec::new();
    for service in &order {
        if !services.contains(service.as_str()) {
            continue;
        }
        let mut of_service: Vec<&ContainerSummary> = running
            .iter()
            .filter(|c| c.labels.get(labels::COMPOSE_SERVICE) == Some(service))
            .collect();
        of_service.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(of_service.into_iter().map(|c| StoppedContainer {
            id: c.id.clone(),
            name: c.name.clone(),
        }));
    }
    Ok(out)
}

/// The running container of `service` that a dump runs in.
pub(crate) async fn running_container(
    engine: &Engine,
    project: &Project,
    service: &str,
) -> Result<ContainerSummary, BackupError> {
    let mut running = engine
        .list_containers(
            &[
                (labels::COMPOSE_PROJECT, Some(&project.name)),
                (labels::COMPOSE_SERVICE, Some(service)),
                (labels::COMPOSE_ONEOFF, Some("False")),
            ],
            false,
        )
        .await?;
    running.sort_by(|a, b| a.name.cmp(&b.name));
    running
        .into_iter()
        .next()
        .ok_or_else(|| BackupError::NotRunning {
            service: service.to_string(),
        })
}

/// A new snapshot of `item`, tagged.
pub(crate) fn new_snapshot(
    config: &RepoConfig,
    item: &Item,
    project: &str,
    extra: &[String],
) -> Result<SnapshotFile, BackupError> {
    SnapshotOptions::default()
        .add_tags(&item.tags(project, extra).join(","))
        .and_then(|o| o.to_snapshot())
        .map_err(err(config, "preparing the snapshot"))
}

/// Stores the directory `path` as the snapshot of `item`, at the item's snapshot path;
/// the item's previous snapshot is the parent, so unchanged files are not read again.
/// `cache` (the state directory and the project) holds the item's file contents' hashes
/// ([`ContentHashes`]), which does the same for the tree hash.
pub(crate) fn tree<S: IndexedIds>(
    indexed: &Repository<S>,
    config: &RepoConfig,
    item: &Item,
    path: &std::path::Path,
    cache: (&std::path::Path, &str),
    mut snap: SnapshotFile,
) -> Result<SnapshotFile, BackupError> {
    // The tree hash is taken while nothing writes, like the snapshot, for `verify`. It runs
    // before the archive (whose snapshot must carry it), so on a first backup it is the pass
    // that reads from disk and the archive reads from the page cache.
    let hashes = ContentHashes::path(cache.0, cache.1, &item.id());
    let known = ContentHashes::load(&hashes);
    let (hash, seen) =
        tokio::task::block_in_place(|| tree_hash_reusing(path, &known)).map_err(|cause| {
            BackupError::BindUnreadable {
                path: path.to_path_buf(),
                cause,
            }
        })?;
    // A cache that cannot be written costs the next backup a full read, nothing else; the
    // backup itself goes on.
    let _ = seen.save(&hashes);
    snap.description = Recorded {
        tree_hash: Some(hash),
        ..Recorded::default()
    }
    .to_description();
    let as_path = item.snapshot_path();
    let source =
        DirSource::new(path, &as_path).map_err(err(config, "reading the source directory"))?;
    let mut options = BackupOptions::default();
    options.as_path = Some(as_path);
    tokio::task::block_in_place(|| indexed.archive(&options, &source, snap, &[path.to_path_buf()]))
        .map_err(|e| rustic_error(config, "storing the snapshot", &e))
}

fn done(
    item: &Item,
    snap: &SnapshotFile,
    elapsed: Duration,
    on: &mut dyn FnMut(BackupEvent),
) -> Result<Snapshot, BackupError> {
    let listed =
        Snapshot::from_file(snap).ok_or_else(|| BackupError::NotBerth(snap.id.to_string()))?;
    on(BackupEvent::ItemDone {
        item: item.id(),
        snapshot: listed.short_id.clone(),
        bytes: listed.bytes,
        added: listed.added,
        elapsed,
    });
    Ok(listed)
}
