//! Which items a project's backup holds, decided from the compose model alone (no I/O), so
//! that an unsupported or unknown request fails before anything is stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_compose::berth_ext::BackupKind;
use berth_compose::Project;

use crate::{BackupError, DumpKind, Item};

/// The items of `project`, dumps first, then volumes and bind mounts, each once; with
/// `only`, the items of those services.
///
/// A service's `x-berth.backup` decides: `postgres`, `mysql`, `redis` and a custom
/// `{ command, restore }` dump the database by its own means and leave its data volume to
/// the dump (copying a running database's files is the notes' mistake); `volume` (the
/// default) saves the named volumes it mounts; `bind` saves its bind-mounted directories;
/// `none` saves nothing of it.
pub fn plan(project: &Project, only: &[String]) -> Result<Vec<Item>, BackupError> {
    for s in only {
        if !project.services.contains_key(s) {
            return Err(BackupError::UnknownService {
                service: s.clone(),
                project: project.name.clone(),
                known: project
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let mut services: Vec<(&String, &berth_compose::model::Service)> =
        project.services.iter().collect();
    services.sort_by(|a, b| a.0.cmp(b.0));

    let mut dumps = Vec::new();
    let mut volumes: BTreeMap<String, Item> = BTreeMap::new();
    let mut binds: BTreeMap<PathBuf, Item> = BTreeMap::new();
    for (name, service) in services {
        let kind = service
            .berth
            .as_ref()
            .and_then(|b| b.backup.clone())
            .unwrap_or(BackupKind::Volume);
        match kind {
            BackupKind::None => continue,
            BackupKind::Postgres
            | BackupKind::Mysql
            | BackupKind::Redis
            | BackupKind::Custom { .. } => {
                if let Some(dump) = DumpKind::of(&kind) {
                    dumps.push(Item::Dump {
                        service: name.clone(),
                        dump,
                    });
                }
                continue;
            }
            BackupKind::Volume | BackupKind::Bind => {}
        }
        let database = looks_like_database(service.image.as_deref()).then(|| name.clone());
        for mount in &service.volumes {
            let Some(source) = &mount.source else {
                continue;
            };
            match (mount.kind.as_str(), &kind) {
                ("volume", BackupKind::Volume) => {
                    let engine_name = project
                        .volumes
                        .get(source)
                        .map(|r| r.name.clone())
                        .unwrap_or_else(|| source.clone());
                    let item = volumes
                        .entry(source.clone())
                        .or_insert_with(|| Item::Volume {
                            key: source.clone(),
                            name: engine_name,
                            users: vec![],
                            writers: vec![],
                            database: None,
                        });
                    if let Item::Volume {
                        users,
                        writers,
                        database: db,
                        ..
                    } = item
                    {
                        push_once(users, name);
                        if !mount.read_only {
                            push_once(writers, name);
                            if db.is_none() {
                                db.clone_from(&database);
                            }
                        }
                    }
                }
                ("bind", BackupKind::Bind) => {
                    let path = PathBuf::from(source);
                    let item = binds.entry(path.clone()).or_insert_with(|| Item::Bind {
                        path,
                        users: vec![],
                        writers: vec![],
                    });
                    if let Item::Bind { users, writers, .. } = item {
                        push_once(users, name);
                        if !mount.read_only {
                            push_once(writers, name);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut items = dumps;
    items.extend(volumes.into_values());
    items.extend(binds.into_values());
    if !only.is_empty() {
        items.retain(|item| match item {
            Item::Dump { service, .. } => only.contains(service),
            Item::Volume { users, .. } | Item::Bind { users, .. } => {
                users.iter().any(|u| only.contains(u))
            }
        });
    }
    Ok(items)
}

fn push_once(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}

/// Images of database servers whose files are inconsistent while they run; a volume they
/// write is refused by `--no-stop`.
fn looks_like_database(image: Option<&str>) -> bool {
    const ENGINES: [&str; 10] = [
        "postgres",
        "postgis",
        "mysql",
        "mariadb",
        "mongo",
        "redis",
        "valkey",
        "timescaledb",
        "clickhouse",
        "cockroach",
    ];
    let Some(image) = image else { return false };
    let repo = image.rsplit('/').next().unwrap_or(image);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    ENGINES.iter().any(|e| repo.contains(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_images_are_known_by_name() {
        assert!(looks_like_database(Some("postgres:16")));
        assert!(looks_like_database(Some(
            "docker.io/library/mariadb:11@sha256:ab"
        )));
        assert!(looks_like_database(Some("berth/postgres:15")));
        assert!(!looks_like_database(Some("nginx:1.27")));
        assert!(!looks_like_database(None));
    }
}
