//! `develop.watch` (Compose's develop specification): which rules apply to which services,
//! which rule a changed host file falls under, where it goes in the container, and what a
//! batch of changes asks of each service.
//!
//! Pure: the CLI watches the files, stats them after a batch settles and carries out the
//! [`ServiceActions`] through the engine. Deciding on the state at the end of a batch, rather
//! than on each event, is what makes editors' write-to-temp-then-rename saves and bursts of
//! changes (a `git checkout`) come out as one sync per file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_compose::Project;
use berth_engine::DockerIgnore;
use serde_json::Value;

/// What a rule does when a file under its path changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchAction {
    Sync,
    SyncRestart,
    SyncExec,
    Restart,
    Rebuild,
}

impl WatchAction {
    fn parse(text: &str) -> Option<WatchAction> {
        Some(match text {
            "sync" => WatchAction::Sync,
            "sync+restart" => WatchAction::SyncRestart,
            "sync+exec" => WatchAction::SyncExec,
            "restart" => WatchAction::Restart,
            "rebuild" => WatchAction::Rebuild,
            _ => return None,
        })
    }

    /// Whether the rule copies files into the container (and so needs a `target`).
    pub fn syncs(self) -> bool {
        matches!(
            self,
            WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WatchAction::Sync => "sync",
            WatchAction::SyncRestart => "sync+restart",
            WatchAction::SyncExec => "sync+exec",
            WatchAction::Restart => "restart",
            WatchAction::Rebuild => "rebuild",
        }
    }
}

/// The command of a `sync+exec` rule, run in each container after its files are synced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchExec {
    pub command: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub privileged: bool,
    /// `KEY=VALUE` pairs.
    pub environment: Vec<String>,
}

/// One `develop.watch` entry of one service.
#[derive(Debug, Clone)]
pub struct WatchRule {
    pub service: String,
    /// The watched host path (absolute; the loader resolved it).
    pub path: PathBuf,
    pub action: WatchAction,
    /// Where `path` lands in the container (sync actions only).
    pub target: Option<String>,
    pub exec: Option<WatchExec>,
    pub initial_sync: bool,
    ignore: DockerIgnore,
    include: Option<DockerIgnore>,
    /// The service's build context and its `.dockerignore`, which Compose adds to every
    /// rule's ignores (matched relative to the context, not to the rule's path).
    context_ignore: Option<(PathBuf, DockerIgnore)>,
}

/// Files editors and tools write next to the real ones and that no rule means: Compose
/// skips them too, so that saving in vim does not sync a swap file.
const ALWAYS_IGNORED: &str = ".git\n**/.git\n**/*.swp\n**/*.swx\n**/*~\n**/.#*\n**/#*#\n**/4913\n";

/// Why the watch rules of a project cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error("service `{service}`: develop.watch[{index}] {problem}")]
    Invalid {
        service: String,
        index: usize,
        problem: String,
    },
    #[error("none of the services {services} has `develop.watch` rules; add for example `develop: {{watch: [{{path: ./src, action: sync, target: /app/src}}]}}` to a service (compose.dev.yaml is the place for it with --dev)")]
    NoRules { services: String },
}

impl WatchRule {
    /// The path of `changed` relative to the rule's path (`""` when it is the path itself),
    /// or None when the rule does not watch it (outside the path, ignored, or not included).
    pub fn relative(&self, changed: &Path) -> Option<String> {
        let relative = changed.strip_prefix(&self.path).ok()?;
        let relative = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !relative.is_empty() {
            if always_ignored().is_excluded(&relative) || self.ignore.is_excluded(&relative) {
                return None;
            }
            if let Some(include) = &self.include {
                if !include.is_excluded(&relative) {
                    return None;
                }
            }
        }
        if let Some((context, ignore)) = &self.context_ignore {
            if let Ok(in_context) = changed.strip_prefix(context) {
                let in_context = in_context.to_string_lossy().replace('\\', "/");
                if !in_context.is_empty() && ignore.is_excluded(&in_context) {
                    return None;
                }
            }
        }
        Some(relative)
    }

    /// Where `changed` goes in the container, for sync rules that watch it.
    pub fn container_path(&self, changed: &Path) -> Option<String> {
        let target = self.target.as_deref()?;
        let relative = self.relative(changed)?;
        Some(if relative.is_empty() {
            target.to_string()
        } else {
            format!("{}/{relative}", target.trim_end_matches('/'))
        })
    }

    /// A short description for the "watching" line: `src → /app/src (sync)`.
    pub fn describe(&self, project_dir: &Path) -> String {
        let shown = self
            .path
            .strip_prefix(project_dir)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.path.display().to_string());
        match &self.target {
            Some(target) => format!("{shown} → {target} ({})", self.action.as_str()),
            None => format!("{shown} ({})", self.action.as_str()),
        }
    }
}

fn always_ignored() -> &'static DockerIgnore {
    static ONCE: std::sync::OnceLock<DockerIgnore> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| DockerIgnore::parse(ALWAYS_IGNORED))
}

/// The watch rules of `services` (all services when empty), in service then file order.
/// `dockerignore(service)` gives the text of the service's build context `.dockerignore`,
/// if it has one; reading it is the caller's I/O.
pub fn watch_rules(
    project: &Project,
    services: &[String],
    dockerignore: impl Fn(&str) -> Option<String>,
) -> Result<Vec<WatchRule>, WatchError> {
    let mut rules = Vec::new();
    for (name, service) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(entries) = service
            .other
            .get("develop")
            .and_then(|d| d.get("watch"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let context_ignore = service.build.as_ref().and_then(|b| {
            let text = dockerignore(name)?;
            Some((PathBuf::from(&b.context), DockerIgnore::parse(&text)))
        });
        for (index, entry) in entries.iter().enumerate() {
            let invalid = |problem: &str| WatchError::Invalid {
                service: name.clone(),
                index,
                problem: problem.to_string(),
            };
            let path = entry
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("has no `path`; add the host directory to watch"))?;
            let action = entry
                .get("action")
                .and_then(Value::as_str)
                .and_then(WatchAction::parse)
                .ok_or_else(|| {
                    invalid(
                        "needs `action`: one of sync, sync+restart, sync+exec, restart, rebuild",
                    )
                })?;
            let target = entry
                .get("target")
                .and_then(Value::as_str)
                .map(str::to_string);
            if action.syncs() {
                match &target {
                    None => {
                        return Err(invalid(&format!(
                            "uses `action: {}` without `target`; add the container path the files go to",
                            action.as_str()
                        )))
                    }
                    Some(t) if !t.starts_with('/') => {
                        return Err(invalid(&format!(
                            "has `target: {t}`, which is not an absolute path; write it as /{t}"
                        )))
                    }
                    Some(_) => {}
                }
            }
            if action == WatchAction::Rebuild && service.build.is_none() {
                return Err(invalid(
                    "uses `action: rebuild`, but the service has no `build:`; add `build:` or use sync or restart",
                ));
            }
            let exec = match (action, entry.get("exec")) {
                (WatchAction::SyncExec, Some(hook)) => Some(parse_exec(hook).ok_or_else(|| {
                    invalid("has an `exec` without `command`; add the command to run")
                })?),
                (WatchAction::SyncExec, None) => {
                    return Err(invalid(
                        "uses `action: sync+exec` without `exec`; add `exec: {command: ...}`",
                    ))
                }
                _ => None,
            };
            rules.push(WatchRule {
                service: name.clone(),
                path: PathBuf::from(path),
                action,
                target,
                exec,
                initial_sync: entry
                    .get("initial_sync")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                ignore: patterns(entry.get("ignore")),
                include: entry.get("include").map(|v| patterns(Some(v))),
                context_ignore: context_ignore.clone(),
            });
        }
    }
    Ok(rules)
}

/// `ignore`/`include`: a pattern or a list of them.
fn patterns(value: Option<&Value>) -> DockerIgnore {
    let text = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    DockerIgnore::parse(&text)
}

fn parse_exec(hook: &Value) -> Option<WatchExec> {
    let command = match hook.get("command")? {
        // The shell form runs through `sh -c`, as Compose does for hooks.
        Value::String(s) => vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()],
        Value::Array(list) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => return None,
    };
    let environment = match hook.get("environment") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                Value::Null => k.clone(),
                other => format!("{k}={other}"),
            })
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Some(WatchExec {
        command,
        user: hook.get("user").and_then(Value::as_str).map(str::to_string),
        working_dir: hook
            .get("working_dir")
            .and_then(Value::as_str)
            .map(str::to_string),
        privileged: hook
            .get("privileged")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        environment,
    })
}

/// Checks that `services` (all when empty) have at least one rule, for `up --watch`.
pub fn require_rules(rules: &[WatchRule], services: &[String]) -> Result<(), WatchError> {
    if rules.is_empty() {
        return Err(WatchError::NoRules {
            services: if services.is_empty() {
                "of the project".to_string()
            } else {
                services
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    }
    Ok(())
}

/// A host path that changed, as it was when the batch settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    /// False when the path no longer exists (deleted or renamed away).
    pub exists: bool,
}

/// What one service must do for a batch of changes, in this order: sync (copy and delete),
/// then exec, then restart; or, instead of all that, rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceActions {
    pub service: String,
    /// Host file → container path, sorted, each path once.
    pub copy: Vec<(PathBuf, String)>,
    /// Container paths whose host file is gone.
    pub delete: Vec<String>,
    pub exec: Vec<WatchExec>,
    pub restart: bool,
    /// Rebuilding recreates the containers from the new image, so nothing else is done.
    pub rebuild: bool,
}

impl ServiceActions {
    pub fn is_empty(&self) -> bool {
        self.copy.is_empty()
            && self.delete.is_empty()
            && self.exec.is_empty()
            && !self.restart
            && !self.rebuild
    }
}

/// Coalesces a batch of changes into one [`ServiceActions`] per service that has something
/// to do, in the order the services' rules first appear. A path may fall under several
/// rules (of one service or several); each applies.
pub fn plan_batch(rules: &[WatchRule], changes: &[Change]) -> Vec<ServiceActions> {
    // Later events for the same path win: the last one says whether it still exists.
    let mut latest: BTreeMap<&Path, bool> = BTreeMap::new();
    for change in changes {
        latest.insert(&change.path, change.exists);
    }
    let mut order: Vec<&str> = Vec::new();
    let mut copy: BTreeMap<&str, BTreeMap<String, PathBuf>> = BTreeMap::new();
    let mut delete: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut exec: BTreeMap<&str, Vec<WatchExec>> = BTreeMap::new();
    let mut restart: BTreeSet<&str> = BTreeSet::new();
    let mut rebuild: BTreeSet<&str> = BTreeSet::new();
    for rule in rules {
        let service = rule.service.as_str();
        let mut triggered = false;
        for (&path, &exists) in &latest {
            if rule.action.syncs() {
                let Some(target) = rule.container_path(path) else {
                    continue;
                };
                if exists {
                    copy.entry(service)
                        .or_default()
                        .insert(target, path.to_path_buf());
                } else {
                    delete.entry(service).or_default().insert(target);
                }
                triggered = true;
            } else if rule.relative(path).is_some() {
                triggered = true;
            }
        }
        if !triggered {
            continue;
        }
        if !order.contains(&service) {
            order.push(service);
        }
        match rule.action {
            WatchAction::SyncRestart | WatchAction::Restart => {
                restart.insert(service);
            }
            WatchAction::Rebuild => {
                rebuild.insert(service);
            }
            WatchAction::SyncExec => {
                if let Some(hook) = &rule.exec {
                    let hooks = exec.entry(service).or_default();
                    if !hooks.contains(hook) {
                        hooks.push(hook.clone());
                    }
                }
            }
            WatchAction::Sync => {}
        }
    }
    order
        .into_iter()
        .map(|service| {
            if rebuild.contains(service) {
                return ServiceActions {
                    service: service.to_string(),
                    rebuild: true,
                    ..Default::default()
                };
            }
            let copy = copy
                .remove(service)
                .unwrap_or_default()
                .into_iter()
                .map(|(target, host)| (host, target))
                .collect();
            ServiceActions {
                service: service.to_string(),
                copy,
                delete: delete
                    .remove(service)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                exec: exec.remove(service).unwrap_or_default(),
                restart: restart.contains(service),
                rebuild: false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(services: Value) -> Project {
        let mut value = json!({ "name": "p", "services": services });
        // The typed model reads the canonical JSON the loader produces.
        value["networks"] = json!({});
        serde_json::from_value(value).unwrap()
    }

    fn rules(services: Value) -> Vec<WatchRule> {
        watch_rules(&project(services), &[], |_| None).unwrap()
    }

    fn change(path: &str) -> Change {
        Change {
            path: PathBuf::from(path),
            exists: true,
        }
    }

    fn web_sync(extra: Value) -> Vec<WatchRule> {
        let mut rule = json!({"path": "/p/src", "action": "sync", "target": "/app"});
        for (k, v) in extra.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rules(json!({"web": {"image": "x", "develop": {"watch": [rule]}}}))
    }

    #[test]
    fn a_file_under_the_path_maps_below_the_target() {
        let r = web_sync(json!({}));
        assert_eq!(
            r[0].container_path(Path::new("/p/src/a/b.txt")).as_deref(),
            Some("/app/a/b.txt")
        );
        assert_eq!(
            r[0].container_path(Path::new("/p/src")).as_deref(),
            Some("/app")
        );
        assert_eq!(r[0].container_path(Path::new("/p/srcx/a")), None);
        assert_eq!(r[0].container_path(Path::new("/p/other.txt")), None);
    }

    #[test]
    fn a_trailing_slash_on_the_target_is_not_doubled() {
        let r = web_sync(json!({"target": "/app/"}));
        assert_eq!(
            r[0].container_path(Path::new("/p/src/x")).as_deref(),
            Some("/app/x")
        );
    }

    #[test]
    fn ignore_patterns_are_relative_to_the_rule_path_and_cover_directories() {
        let r = web_sync(json!({"ignore": ["*.tmp", "node_modules/", "build/**/*.o"]}));
        assert!(r[0].relative(Path::new("/p/src/a.tmp")).is_none());
        // `*` stays within one segment, as in .dockerignore.
        assert!(r[0].relative(Path::new("/p/src/sub/a.tmp")).is_some());
        assert!(r[0]
            .relative(Path::new("/p/src/node_modules/x/index.js"))
            .is_none());
        assert!(r[0].relative(Path::new("/p/src/build/x/y/z.o")).is_none());
        assert!(r[0].relative(Path::new("/p/src/app.txt")).is_some());
    }

    #[test]
    fn a_single_string_ignore_is_one_pattern() {
        let r = web_sync(json!({"ignore": "*.log"}));
        assert!(r[0].relative(Path::new("/p/src/x.log")).is_none());
        assert!(r[0].relative(Path::new("/p/src/x.txt")).is_some());
    }

    #[test]
    fn include_keeps_only_matching_files() {
        let r = web_sync(json!({"include": "*.go"}));
        assert!(r[0].relative(Path::new("/p/src/main.go")).is_some());
        assert!(r[0].relative(Path::new("/p/src/README.md")).is_none());
    }

    #[test]
    fn editor_files_and_git_are_always_ignored() {
        let r = web_sync(json!({}));
        for p in [
            "/p/src/.a.txt.swp",
            "/p/src/a.txt~",
            "/p/src/.git/index",
            "/p/src/sub/.#lock",
            "/p/src/4913",
        ] {
            assert!(r[0].relative(Path::new(p)).is_none(), "{p}");
        }
    }

    #[test]
    fn the_build_contexts_dockerignore_applies_relative_to_the_context() {
        let project = project(json!({"web": {
            "image": "x",
            "build": {"context": "/p"},
            "develop": {"watch": [{"path": "/p/src", "action": "rebuild"}]}
        }}));
        let r = watch_rules(&project, &[], |_| Some("src/generated\n".into())).unwrap();
        assert!(r[0].relative(Path::new("/p/src/generated/a.rs")).is_none());
        assert!(r[0].relative(Path::new("/p/src/main.rs")).is_some());
    }

    #[test]
    fn only_selected_services_are_read() {
        let project = project(json!({
            "web": {"image": "x", "develop": {"watch": [{"path": "/p/a", "action": "restart"}]}},
            "db": {"image": "y", "develop": {"watch": [{"path": "/p/b", "action": "restart"}]}},
            "plain": {"image": "z"}
        }));
        let r = watch_rules(&project, &["db".into()], |_| None).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].service, "db");
        let none = watch_rules(&project, &["plain".into()], |_| None).unwrap();
        let err = require_rules(&none, &["plain".into()]).unwrap_err();
        assert!(err.to_string().contains("`plain`"), "{err}");
        assert!(err.to_string().contains("add for example"), "{err}");
    }

    #[test]
    fn invalid_rules_say_what_to_add() {
        let bad = |rule: Value, needle: &str| {
            let project = project(json!({"web": {"image": "x", "develop": {"watch": [rule]}}}));
            let err = watch_rules(&project, &[], |_| None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
            assert!(err.starts_with("service `web`: develop.watch[0]"), "{err}");
        };
        bad(json!({"path": "/p", "action": "sync"}), "without `target`");
        bad(
            json!({"path": "/p", "action": "sync", "target": "app"}),
            "write it as /app",
        );
        bad(json!({"path": "/p", "action": "rebuild"}), "no `build:`");
        bad(
            json!({"path": "/p", "action": "sync+exec", "target": "/a"}),
            "without `exec`",
        );
    }

    #[test]
    fn a_batch_is_coalesced_per_service() {
        let r = rules(json!({
            "web": {"image": "x", "develop": {"watch": [
                {"path": "/p/src", "action": "sync", "target": "/app", "ignore": ["*.tmp"]},
                {"path": "/p/conf", "action": "sync+restart", "target": "/etc/app"}
            ]}},
            "api": {"image": "y", "develop": {"watch": [
                {"path": "/p/api", "action": "restart"}
            ]}}
        }));
        let batch = vec![
            change("/p/src/a.txt"),
            change("/p/src/a.txt"),
            change("/p/src/b.tmp"),
            Change {
                path: "/p/src/gone.txt".into(),
                exists: false,
            },
            change("/p/unrelated"),
        ];
        let actions = plan_batch(&r, &batch);
        assert_eq!(
            actions,
            vec![ServiceActions {
                service: "web".into(),
                copy: vec![("/p/src/a.txt".into(), "/app/a.txt".into())],
                delete: vec!["/app/gone.txt".into()],
                ..Default::default()
            }]
        );

        let actions = plan_batch(&r, &[change("/p/conf/x.ini"), change("/p/api/main.go")]);
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[0].service, "web");
        assert!(actions[0].restart);
        assert_eq!(
            actions[0].copy,
            vec![("/p/conf/x.ini".into(), "/etc/app/x.ini".into())]
        );
        assert_eq!(actions[1].service, "api");
        assert!(actions[1].restart && actions[1].copy.is_empty());
    }

    #[test]
    fn the_last_state_of_a_path_wins() {
        let r = web_sync(json!({}));
        let batch = vec![
            Change {
                path: "/p/src/a".into(),
                exists: false,
            },
            change("/p/src/a"),
        ];
        let actions = plan_batch(&r, &batch);
        assert_eq!(actions[0].copy.len(), 1);
        assert!(actions[0].delete.is_empty());
    }

    #[test]
    fn rebuild_replaces_every_other_action() {
        let r = rules(json!({"web": {
            "image": "x",
            "build": {"context": "/p"},
            "develop": {"watch": [
                {"path": "/p/src", "action": "sync", "target": "/app"},
                {"path": "/p/Cargo.toml", "action": "rebuild"}
            ]}
        }}));
        let actions = plan_batch(&r, &[change("/p/src/a"), change("/p/Cargo.toml")]);
        assert_eq!(
            actions,
            vec![ServiceActions {
                service: "web".into(),
                rebuild: true,
                ..Default::default()
            }]
        );
    }

    #[test]
    fn sync_exec_runs_its_hook_once_per_batch() {
        let r = rules(json!({"web": {"image": "x", "develop": {"watch": [
            {"path": "/p/etc", "action": "sync+exec", "target": "/etc/app",
             "exec": {"command": "app reload", "environment": {"A": "1"}}}
        ]}}}));
        let actions = plan_batch(&r, &[change("/p/etc/a"), change("/p/etc/b")]);
        assert_eq!(actions[0].copy.len(), 2);
        assert_eq!(
            actions[0].exec,
            vec![WatchExec {
                command: vec!["/bin/sh".into(), "-c".into(), "app reload".into()],
                environment: vec!["A=1".into()],
                ..Default::default()
            }]
        );
    }

    #[test]
    fn nothing_to_do_for_ignored_changes() {
        let r = web_sync(json!({"ignore": ["*.tmp"]}));
        assert!(plan_batch(&r, &[change("/p/src/x.tmp")]).is_empty());
    }
}
