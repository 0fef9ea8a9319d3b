//! The labels berth puts on everything it creates.
//!
//! State is read back from the engine through these labels, never from a local file, so that
//! `berth up` converges whatever is running, whoever started it. Besides berth's own `berth.*`
//! labels, containers, networks and volumes carry the standard `com.docker.compose.*` labels so
//! that `docker compose ps`, `docker compose logs` and `docker ps --filter
//! label=com.docker.compose.project=NAME` see the stack as a Compose project.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub const PROJECT: &str = "berth.project";
pub const SERVICE: &str = "berth.service";
pub const CONFIG_HASH: &str = "berth.config-hash";
pub const RELEASE: &str = "berth.release";
pub const ROLE: &str = "berth.role";

pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
pub const COMPOSE_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const COMPOSE_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const COMPOSE_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const COMPOSE_VERSION: &str = "com.docker.compose.version";
pub const COMPOSE_NETWORK: &str = "com.docker.compose.network";
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";

/// The value of `com.docker.compose.version`.
///
/// Compose writes its own version here and does not act on it; tools that read it expect a
/// semantic version. We write `2.0.0+berth.<berth version>`: a valid semver that says "Compose
/// v2 label layout" and, in its build metadata, which berth wrote it.
/// The network the host's shared proxy and every routed service join (`berth proxy boot`
/// creates it; `up` and `deploy` create it when it is missing).
pub const PROXY_NETWORK: &str = "berth";

/// The proxy network as `berth proxy boot`, `up` and `deploy` create it: a plain bridge that
/// no project owns, so `down` never removes it.
pub fn proxy_network() -> berth_engine::NetworkSpec {
    berth_engine::NetworkSpec {
        name: PROXY_NETWORK.to_string(),
        driver: Some("bridge".to_string()),
        labels: BTreeMap::from([(ROLE.to_string(), "proxy".to_string())]),
        attachable: true,
        ..Default::default()
    }
}

pub fn compose_version() -> String {
    format!("2.0.0+berth.{}", env!("CARGO_PKG_VERSION"))
}

/// What a container is for: a long-running service replica, or a one-off (`berth run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    App,
    Oneoff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Oneoff => "oneoff",
        }
    }
}

/// Project-wide facts that go into labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectLabels {
    pub project: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub release: Option<String>,
}

/// The labels of one service container, without the config hash (see [`set_config_hash`]).
///
/// `user` labels come first and ours are written over them: a user label must not be able to
/// hide a container from berth or move it into another project.
pub fn container(
    p: &ProjectLabels,
    service: &str,
    number: u64,
    role: Role,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = user.clone();
    l.insert(PROJECT.into(), p.project.clone());
    l.insert(SERVICE.into(), service.into());
    l.insert(ROLE.into(), role.as_str().into());
    if let Some(r) = &p.release {
        l.insert(RELEASE.into(), r.clone());
    }
    l.insert(COMPOSE_PROJECT.into(), p.project.clone());
    l.insert(COMPOSE_SERVICE.into(), service.into());
    l.insert(COMPOSE_CONTAINER_NUMBER.into(), number.to_string());
    l.insert(
        COMPOSE_ONEOFF.into(),
        if role == Role::Oneoff {
            "True"
        } else {
            "False"
        }
        .into(),
    );
    l.insert(
        COMPOSE_WORKING_DIR.into(),
        p.working_dir.display().to_string(),
    );
    // Compose joins the files with commas; a comma inside a path is ambiguous there too.
    l.insert(
        COMPOSE_CONFIG_FILES.into(),
        p.config_files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    l.insert(COMPOSE_VERSION.into(), compose_version());
    l
}

/// Writes the config hash into both berth's and Compose's hash label.
pub fn set_config_hash(labels: &mut BTreeMap<String, String>, hash: &str) {
    labels.insert(CONFIG_HASH.into(), hash.into());
    labels.insert(COMPOSE_CONFIG_HASH.into(), hash.into());
}

/// Labels of a project network; `key` is the network's key in the compose file.
pub fn network(
    project: &str,
    key: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    resource(project, COMPOSE_NETWORK, key, user)
}

/// Labels of a project volume; `key` is the volume's key in the compose file.
pub fn volume(
    project: &str,
    key: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    resource(project, COMPOSE_VOLUME, key, user)
}

/// The user's labels, then ours over them (a user label cannot move a resource into another
/// project); `kind_label` names the compose-file key under Compose's own label for the kind.
fn resource(
    project: &str,
    kind_label: &str,
    key: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = user.clone();
    l.insert(PROJECT.into(), project.into());
    l.insert(COMPOSE_PROJECT.into(), project.into());
    l.insert(kind_label.into(), key.into());
    l.insert(COMPOSE_VERSION.into(), compose_version());
    l
}

/// Whether a label is one berth or Compose manages (as opposed to one the user wrote).
pub fn is_managed(key: &str) -> bool {
    key.starts_with("berth.") || key.starts_with("com.docker.compose.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_labels_cover_berth_and_compose() {
        let p = ProjectLabels {
            project: "shop".into(),
            working_dir: "/srv/shop".into(),
            config_files: vec![
                "/srv/shop/compose.yaml".into(),
                "/srv/shop/prod.yaml".into(),
            ],
            release: Some("r7".into()),
        };
        let mut user = BTreeMap::new();
        user.insert("team".to_string(), "a".to_string());
        user.insert(COMPOSE_PROJECT.to_string(), "other".to_string());
        let mut l = container(&p, "web", 2, Role::App, &user);
        set_config_hash(&mut l, "abc");
        let get = |k: &str| l.get(k).map(String::as_str);
        assert_eq!(get(PROJECT), Some("shop"));
        assert_eq!(get(SERVICE), Some("web"));
        assert_eq!(get(ROLE), Some("app"));
        assert_eq!(get(RELEASE), Some("r7"));
        assert_eq!(
            get(COMPOSE_PROJECT),
            Some("shop"),
            "ours win over the user's"
        );
        assert_eq!(get(COMPOSE_SERVICE), Some("web"));
        assert_eq!(get(COMPOSE_CONTAINER_NUMBER), Some("2"));
        assert_eq!(get(COMPOSE_ONEOFF), Some("False"));
        assert_eq!(get(CONFIG_HASH), Some("abc"));
        assert_eq!(get(COMPOSE_CONFIG_HASH), Some("abc"));
        assert_eq!(get(COMPOSE_WORKING_DIR), Some("/srv/shop"));
        assert_eq!(
            get(COMPOSE_CONFIG_FILES),
            Some("/srv/shop/compose.yaml,/srv/shop/prod.yaml")
        );
        assert!(get(COMPOSE_VERSION).unwrap().starts_with("2.0.0+berth."));
        assert_eq!(get("team"), Some("a"));

        let one = container(&p, "web", 1, Role::Oneoff, &BTreeMap::new());
        assert_eq!(one[COMPOSE_ONEOFF], "True");
        assert_eq!(one[ROLE], "oneoff");
    }

    #[test]
    fn network_and_volume_labels() {
        let n = network("shop", "default", &BTreeMap::new());
        assert_eq!(n[COMPOSE_NETWORK], "default");
        assert_eq!(n[COMPOSE_PROJECT], "shop");
        assert_eq!(n[PROJECT], "shop");
        let v = volume("shop", "pgdata", &BTreeMap::new());
        assert_eq!(v[COMPOSE_VOLUME], "pgdata");
        assert_eq!(v[COMPOSE_PROJECT], "shop");
        assert!(is_managed(COMPOSE_VOLUME) && is_managed(ROLE) && !is_managed("team"));
    }
}
