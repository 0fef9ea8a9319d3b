//! An item: one thing a backup saves as one snapshot — a database dump, a named volume, or a
//! bind-mounted directory — and how it is named in the snapshot's tags and paths.

use std::path::PathBuf;

use crate::database::DumpKind;

/// The tag every berth snapshot carries, so that berth's snapshots stand apart from others
/// in a shared repository.
pub const TAG: &str = "berth";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A database dump by the engine's own tool, by exec in the service's running
    /// container (`pg_dump`, `mysqldump`, `BGSAVE`, or the service's own command).
    Dump { service: String, dump: DumpKind },
    /// A named volume: its key in the compose file, its engine name, the services that
    /// mount it (and of those, the ones that write), and a database service whose files it
    /// holds, if any.
    Volume {
        key: String,
        name: String,
        users: Vec<String>,
        writers: Vec<String>,
        database: Option<String>,
    },
    /// A bind-mounted host directory and the services that write to it.
    Bind {
        path: PathBuf,
        users: Vec<String>,
        writers: Vec<String>,
    },
}

impl Item {
    /// The item's name in tags, lists and on the command line: `postgres:db`, `redis:cache`,
    /// `volume:media`, `bind:/srv/app/uploads`.
    pub fn id(&self) -> String {
        match self {
            Item::Dump { service, dump } => format!("{}:{service}", dump.name()),
            Item::Volume { key, .. } => format!("volume:{key}"),
            Item::Bind { path, .. } => format!("bind:{}", path.display()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Item::Dump { dump, .. } => dump.name(),
            Item::Volume { .. } => "volume",
            Item::Bind { .. } => "bind",
        }
    }

    /// Where the item lies inside its snapshot, so that `restic restore` of a snapshot
    /// gives a directory that says what it holds.
    pub fn snapshot_path(&self) -> PathBuf {
        match self {
            Item::Dump { service, dump } => {
                PathBuf::from(format!("/{}/{service}.{}", dump.name(), dump.extension()))
            }
            Item::Volume { key, .. } => PathBuf::from(format!("/volume/{key}")),
            Item::Bind { path, .. } => {
                PathBuf::from("/bind").join(path.strip_prefix("/").unwrap_or(path))
            }
        }
    }

    /// The services whose containers must not write while the item is read.
    pub fn writers(&self) -> &[String] {
        match self {
            Item::Dump { .. } => &[],
            Item::Volume { writers, .. } | Item::Bind { writers, .. } => writers,
        }
    }

    /// The snapshot's tags: berth's mark, the project, the item, its kind, and the services
    /// it belongs to, then the user's own.
    pub fn tags(&self, project: &str, extra: &[String]) -> Vec<String> {
        let mut tags = vec![
            TAG.to_string(),
            format!("project={project}"),
            format!("item={}", self.id()),
            format!("kind={}", self.kind()),
        ];
        match self {
            Item::Dump { service, .. } => tags.push(format!("service={service}")),
            Item::Volume { users, .. } | Item::Bind { users, .. } => {
                tags.extend(users.iter().map(|u| format!("service={u}")))
            }
        }
        tags.extend(extra.iter().cloned());
        tags
    }
}

/// The value of `key=` among a snapshot's tags.
pub fn tag_value<'a>(tags: &'a [String], key: &str) -> Option<&'a str> {
    tags.iter()
        .find_map(|t| t.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_named_alike_in_its_tags_and_its_snapshot_path() {
        let v = Item::Volume {
            key: "media".into(),
            name: "shop_media".into(),
            users: vec!["web".into(), "worker".into()],
            writers: vec!["web".into()],
            database: None,
        };
        let tags = v.tags("shop", &["nightly".into()]);
        assert_eq!(
            tags,
            [
                "berth",
                "project=shop",
                "item=volume:media",
                "kind=volume",
                "service=web",
                "service=worker",
                "nightly"
            ]
        );
        assert_eq!(tag_value(&tags, "item"), Some("volume:media"));
        assert_eq!(tag_value(&tags, "project"), Some("shop"));
        assert_eq!(v.snapshot_path(), PathBuf::from("/volume/media"));
        let b = Item::Bind {
            path: "/srv/app/uploads".into(),
            users: vec![],
            writers: vec![],
        };
        assert_eq!(b.id(), "bind:/srv/app/uploads");
        assert_eq!(b.snapshot_path(), PathBuf::from("/bind/srv/app/uploads"));
    }
}
