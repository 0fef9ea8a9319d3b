//! `berth backup verify`: a backup counts only once it has been restored. Every byte of the
//! snapshot is read back and authenticated, then the snapshot is restored into something
//! thrown away afterwards and probed: a volume's tree hash against the one recorded at
//! backup time, a database's tables and rows against the counts recorded with the dump.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_compose::Project;
use berth_deploy::labels;
use berth_engine::{ContainerSpec, Engine, VolumeSpec};
use rustic_core::{CheckOptions, IndexedFull, Repository};

use crate::catalog::Catalog;
use crate::create::running_container;
use crate::database::{self, DumpKind};
use crate::item::tag_value;
use crate::repository::err;
use crate::snapshot::{Recorded, Snapshot};
use crate::source::restore_dir;
use crate::tree_hash::tree_hash;
use crate::{dump, redis, BackupError, Repo};

/// How long a throwaway database server may take to accept connections.
const SERVER_DEADLINE: Duration = Duration::from_secs(120);

/// A validated `berth backup verify`.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// A snapshot id or prefix, or `latest` for the project's newest snapshot.
    pub snapshot: String,
    /// Where the catalog of verified snapshots is kept.
    pub state_dir: PathBuf,
}

/// What was proven.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub snapshot: Snapshot,
    /// What the restored copy was compared on, e.g. `tree hash 3f2a…` or `4 tables, 2000510 rows`.
    pub probe: String,
}

pub async fn verify(
    engine: &Engine,
    project: &Project,
    repo: Repo,
    req: &VerifyRequest,
) -> Result<Verified, BackupError> {
    // Phase 1: the snapshot, the project's own.
    let mut catalog = Catalog::open(&req.state_dir);
    let (snap, listed) = crate::snapshot::own(&repo, &project.name, &req.snapshot)?;
    let recorded = Recorded::of(&snap);
    let config = repo.config.clone();

    // Phase 2: read every byte the snapshot needs back and authenticate it.
    let indexed = tokio::task::block_in_place(|| repo.inner.to_indexed())
        .map_err(err(&config, "reading the index"))?;
    read_back(&indexed, &config, &snap, &listed.short_id)?;
    let inside = snap
        .paths
        .iter()
        .next()
        .cloned()
        .ok_or_else(|| BackupError::NotBerth(listed.short_id.clone()))?;
    let node = indexed
        .node_from_snapshot_and_path(&snap, &inside)
        .map_err(|e| BackupError::Damaged {
            snapshot: listed.short_id.clone(),
            detail: crate::repository::message(&e),
        })?;

    // Phase 3: restore into something thrown away afterwards, and probe it.
    let item = tag_value(&listed.tags, "item").unwrap_or("").to_string();
    let probe = match item.split_once(':') {
        Some(("volume" | "bind", _)) => {
            let expected = recorded
                .tree_hash
                .clone()
                .ok_or_else(|| BackupError::NotBerth(listed.short_id.clone()))?;
            let found = volume_probe(engine, &indexed, &node, &listed).await?;
            if found != expected {
                return Err(BackupError::Mismatch {
                    snapshot: listed.short_id,
                    detail: format!(
                        "the restored tree's hash is {found}, the source's was {expected}"
                    ),
                });
            }
            format!("tree hash {}", &expected[..16])
        }
        Some((kind @ ("postgres" | "mysql" | "redis" | "custom"), service)) => {
            let scratch = Scratch {
                engine,
                project,
                repo: &indexed,
                config: &config,
                service,
                node: &node,
                listed: &listed,
            };
            // Every dump: the bytes read back (while loading them, where berth loads them)
            // are the bytes that were stored.
            let intact = |read: &str| match &recorded.dump_hash {
                Some(stored) if stored != read => Err(BackupError::Mismatch {
                    snapshot: listed.short_id.clone(),
                    detail: format!(
                        "the dump read back hashes to {read}, the stored one to {stored}"
                    ),
                }),
                _ => Ok(()),
            };
            match database::builtin(kind) {
                Some(dump @ (DumpKind::Postgres | DumpKind::Mysql)) => {
                    let rows = recorded
                        .rows
                        .clone()
                        .ok_or_else(|| BackupError::NotBerth(listed.short_id.clone()))?;
                    let (found, read) = scratch.rows(&dump).await?;
                    intact(&read)?;
                    if found != rows {
                        return Err(BackupError::Mismatch {
                            snapshot: listed.short_id,
                            detail: rows_difference(&rows, &found),
                        });
                    }
                    format!("{} tables, {} rows", rows.len(), rows.values().sum::<u64>())
                }
                Some(DumpKind::Redis) => {
                    let keys = recorded
                        .keys
                        .ok_or_else(|| BackupError::NotBerth(listed.short_id.clone()))?;
                    let (found, read) = scratch.redis_keys().await?;
                    intact(&read)?;
                    // A key whose time to live ran out since the backup is dropped on load.
                    let least = keys.keys.saturating_sub(keys.expires);
                    let most = keys.keys.saturating_sub(keys.expired);
                    if found < least || found > most {
                        return Err(BackupError::Mismatch {
                            snapshot: listed.short_id,
                            detail: format!(
                                "the restored server holds {found} keys; the RDB file held {} ({} with a time to live)",
                                keys.keys, keys.expires
                            ),
                        });
                    }
                    format!("{found} keys")
                }
                // berth cannot start an engine it does not know: the dump is proven intact,
                // byte for byte, and that is what is said.
                _ => {
                    let stored = recorded
                        .dump_hash
                        .clone()
                        .ok_or_else(|| BackupError::NotBerth(listed.short_id.clone()))?;
                    let read = tokio::task::block_in_place(|| dump::hash_of(&indexed, &node))
                        .map_err(|e| BackupError::Damaged {
                            snapshot: listed.short_id.clone(),
                            detail: crate::repository::message(&e),
                        })?;
                    intact(&read)?;
                    format!("dump read back intact (blake3 {})", &stored[..16])
                }
            }
        }
        _ => return Err(BackupError::NotBerth(listed.short_id)),
    };

    // Phase 4: record the result, for `backup list` and `prune`.
    let now = rustic_core::jiff::Timestamp::now().to_string();
    catalog.record(&listed.id, &now)?;
    let mut snapshot = listed;
    snapshot.verified_at = Some(now);
    Ok(Verified { snapshot, probe })
}

/// Reads every pack the snapshot needs and authenticates it (`restic check --read-data`,
/// limited to the snapshot); names what is damaged.
pub(crate) fn read_back<S: IndexedFull>(
    repo: &Repository<S>,
    config: &crate::RepoConfig,
    snap: &rustic_core::repofile::SnapshotFile,
    short_id: &str,
) -> Result<(), BackupError> {
    let mut options = CheckOptions::default();
    options.read_data = true;
    let results = tokio::task::block_in_place(|| repo.check_with_trees(options, vec![snap.tree]))
        .map_err(err(config, "reading the snapshot back"))?;
    if results.is_ok().is_err() {
        let detail: Vec<String> = results.0.iter().map(|(_, e)| e.to_string()).collect();
        return Err(BackupError::Damaged {
            snapshot: short_id.to_string(),
            detail: detail.join("; "),
        });
    }
    Ok(())
}

/// Restores the tree into a scratch volume, hashes it, and removes the volume.
async fn volume_probe<S: IndexedFull>(
    engine: &Engine,
    repo: &Repository<S>,
    node: &rustic_core::repofile::Node,
    listed: &Snapshot,
) -> Result<String, BackupError> {
    let name = format!("berth-verify-{}-{}", listed.short_id, std::process::id());
    engine
        .ensure_volume(&VolumeSpec {
            name: name.clone(),
            driver: None,
            driver_opts: Default::default(),
            labels: [(labels::ROLE.to_string(), "backup-verify".to_string())]
                .into_iter()
                .collect(),
        })
        .await?;
    let result = async {
        let volume = engine
            .inspect_volume(&name)
            .await?
            .ok_or_else(|| BackupError::NoVolume {
                volume: name.clone(),
            })?;
        let path = PathBuf::from(volume.mountpoint);
        tokio::task::block_in_place(|| {
            restore_dir(repo, node, &path).map_err(|e| match e {
                crate::source::RestoreDirError::Repository(e) => BackupError::Damaged {
                    snapshot: listed.short_id.clone(),
                    detail: crate::repository::message(&e),
                },
                crate::source::RestoreDirError::Io(cause) => BackupError::BindUnreadable {
                    path: path.clone(),
                    cause,
                },
            })?;
            tree_hash(&path).map_err(|cause| BackupError::BindUnreadable {
                path: path.clone(),
                cause,
            })
        })
    }
    .await;
    let removed = engine.remove_volume(&name).await;
    let hash = result?;
    removed?;
    Ok(hash)
}

/// What a throwaway server from the service's own image is made for: loading one dump.
struct Scratch<'a, S: IndexedFull> {
    engine: &'a Engine,
    project: &'a Project,
    repo: &'a Repository<S>,
    config: &'a crate::RepoConfig,
    service: &'a str,
    node: &'a rustic_core::repofile::Node,
    listed: &'a Snapshot,
}

impl<S: IndexedFull> Scratch<'_, S> {
    /// Loads the dump into a throwaway server and counts its rows per table; with the hash
    /// of the dump as it was read back.
    async fn rows(&self, dump: &DumpKind) -> Result<(BTreeMap<String, u64>, String), BackupError> {
        let count = dump
            .count_rows_script()
            .ok_or_else(|| BackupError::NotBerth(self.listed.short_id.clone()))?;
        self.with_server(dump, |id| async move {
            let read = dump::load(
                self.engine,
                self.repo,
                self.config,
                dump,
                &dump.load_script(),
                &id,
                self.service,
                self.node,
            )
            .await?;
            let out = dump::output(self.engine, &id, self.service, "counting rows", &count).await?;
            Ok((database::parse_rows(&out), read))
        })
        .await
    }

    /// Loads the RDB file into a second server inside a throwaway container of the service's
    /// image, and counts its keys once it has loaded; with the hash of the RDB file as it was
    /// read back.
    async fn redis_keys(&self) -> Result<(u64, String), BackupError> {
        self.with_server(&DumpKind::Redis, |id| async move {
            let read = dump::load(
                self.engine,
                self.repo,
                self.config,
                &DumpKind::Redis,
                &redis::probe_load_script(),
                &id,
                self.service,
                self.node,
            )
            .await?;
            let until = Instant::now() + SERVER_DEADLINE;
            loop {
                let counted = dump::output(
                    self.engine,
                    &id,
                    self.service,
                    "counting keys",
                    &redis::probe_count_script(),
                )
                .await;
                if let Ok(Ok(n)) = counted.as_deref().map(str::trim).map(str::parse::<u64>) {
                    return Ok((n, read));
                }
                if Instant::now() >= until {
                    return Err(BackupError::Mismatch {
                        snapshot: self.listed.short_id.clone(),
                        detail: format!(
                            "a Redis server did not load the RDB file in {}s",
                            SERVER_DEADLINE.as_secs()
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await
    }

    /// Starts a throwaway server from the service's own image (no network, no volume),
    /// waits until it serves, runs `work`, and removes it whatever happened.
    async fn with_server<T, F, Fut>(&self, dump: &DumpKind, work: F) -> Result<T, BackupError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, BackupError>>,
    {
        let definition =
            self.project
                .services
                .get(self.service)
                .ok_or_else(|| BackupError::BadInto {
                    into: self.service.to_string(),
                    what: "service (the snapshot's service is gone from the compose file)",
                    project: self.project.name.clone(),
                })?;
        // The exact image the service runs, else the one the compose file names.
        let image = match running_container(self.engine, self.project, self.service).await {
            Ok(c) => c.image_id,
            Err(_) => definition.image.clone().unwrap_or_default(),
        };
        let mut env: Vec<String> = definition
            .environment
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        dump.scratch_env(&mut env);
        let ready = dump.ready_script();
        let spec = ContainerSpec {
            name: format!(
                "berth-verify-{}-{}",
                self.listed.short_id,
                std::process::id()
            ),
            image,
            env,
            labels: [(labels::ROLE.to_string(), "backup-verify".to_string())]
                .into_iter()
                .collect(),
            network_mode: Some("none".into()),
            ..Default::default()
        };
        let id = self.engine.create_container(&spec).await?;
        let result = async {
            self.engine.start_container(&id).await?;
            let until = Instant::now() + SERVER_DEADLINE;
            while !dump::succeeds(self.engine, &id, &ready).await {
                if Instant::now() >= until {
                    return Err(BackupError::Scratch {
                        what: "database server",
                        detail: format!("not ready after {}s", SERVER_DEADLINE.as_secs()),
                    });
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            work(id.clone()).await
        }
        .await;
        let removed = self.engine.remove_container(&id, true, true).await;
        let value = result?;
        removed?;
        Ok(value)
    }
}

/// The first tables whose row counts differ, in words.
fn rows_difference(
    expected: &std::collections::BTreeMap<String, u64>,
    found: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut out = Vec::new();
    for (table, n) in expected {
        match found.get(table) {
            None => out.push(format!("table {table} is missing")),
            Some(m) if m != n => out.push(format!("table {table} has {m} rows, not {n}")),
            _ => {}
        }
    }
    for table in found.keys().filter(|t| !expected.contains_key(*t)) {
        out.push(format!("table {table} was not in the backup"));
    }
    out.truncate(3);
    out.join("; ")
}
