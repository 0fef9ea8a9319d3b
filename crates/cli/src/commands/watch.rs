//! `berth up --watch`: converge, then apply the services' `develop.watch` rules to file
//! changes until Ctrl-C.
//!
//! Events from notify are gathered into batches that end after a short quiet spell, then
//! every changed path is looked at once (exists or not, file or new directory) and
//! [`berth_deploy::plan_batch`] says what each service needs. Acting on the settled state,
//! not on each event, turns an editor's save (temp file, rename) or a `git checkout` into one
//! copy per file. Failures of one action are reported and watching goes on, because the next
//! save usually fixes them.

use super::session::Session;
use super::up::converge;
use super::CliError;
use crate::args::UpArgs;
use crate::report;
use berth_deploy::{plan_batch, watch_rules, Change, ServiceActions, WatchRule};
use berth_engine::{EngineError, ExecOptions};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A batch ends after this long without a new event. Short enough that a save reaches the
/// container well within the 2 s the issue asks for, long enough to catch an editor's burst
/// of write, rename and chmod as one batch.
const QUIET: Duration = Duration::from_millis(150);
/// A batch never waits longer than this, so a steady stream of writes still gets synced.
const LONGEST_BATCH: Duration = Duration::from_secs(1);

enum Message {
    Event(notify::Result<notify::Event>),
    Stop,
}

pub fn run(s: &Session, a: &UpArgs) -> Result<(), CliError> {
    // The rules are checked before anything is started, so a bad rule costs nothing.
    let project = &s.loaded.project;
    let rules = watch_rules(project, &a.services, |service| {
        let build = project.services.get(service)?.build.as_ref()?;
        std::fs::read_to_string(Path::new(&build.context).join(".dockerignore")).ok()
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    berth_deploy::watch::require_rules(&rules, &a.services)
        .map_err(|e| CliError::Usage(e.to_string()))?;

    // Watching only makes sense on running, healthy containers, so --watch implies --wait.
    let up = UpArgs {
        wait: true,
        ..a.clone()
    };
    converge(s, &up)?;

    let (tx, rx) = mpsc::channel();
    let events = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(Message::Event(event));
    })
    .map_err(|e| CliError::Failed(format!("cannot watch files: {e}; check the system's limit on file watches (fs.inotify.max_user_watches)")))?;
    for (path, mode) in watch_roots(&rules) {
        watcher.watch(&path, mode).map_err(|e| {
            CliError::Failed(format!(
                "cannot watch {}: {e}; check that it exists and is readable",
                path.display()
            ))
        })?;
    }
    listen_for_stop(s, tx)?;

    initial_sync(s, &rules);
    let described: Vec<String> = rules
        .iter()
        .map(|r| format!("{}: {}", r.service, r.describe(&project.project_dir)))
        .collect();
    println!("watching {}; press Ctrl-C to stop", described.join(", "));

    while let Ok(Message::Event(first)) = rx.recv() {
        let mut changed = BTreeMap::new();
        collect(first, &mut changed);
        let started = Instant::now();
        let mut stop = false;
        loop {
            let wait = QUIET.min(LONGEST_BATCH.saturating_sub(started.elapsed()));
            if wait.is_zero() {
                break;
            }
            match rx.recv_timeout(wait) {
                Ok(Message::Event(event)) => collect(event, &mut changed),
                Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
            }
        }
        if stop {
            break;
        }
        let changes = settle(&changed);
        let interrupted = plan_batch(&rules, &changes)
            .iter()
            .any(|actions| !apply(s, a, actions));
        if interrupted {
            break;
        }
    }
    drop(watcher);
    println!("stopped watching; the containers keep running (`berth down` removes them)");
    Ok(())
}

/// What to hand to the watcher: a directory recursively; a single file through its parent
/// directory, because editors replace files by renaming, which ends a watch on the file
/// itself.
fn watch_roots(rules: &[WatchRule]) -> Vec<(PathBuf, RecursiveMode)> {
    // path → recursive; a path wanted both ways is watched recursively.
    let mut roots: BTreeMap<PathBuf, bool> = BTreeMap::new();
    for rule in rules {
        if rule.path.is_dir() {
            roots.insert(rule.path.clone(), true);
        } else if let Some(parent) = rule.path.parent() {
            roots.entry(parent.to_path_buf()).or_insert(false);
        }
    }
    // A directory watched recursively already covers everything below it.
    let recursive: Vec<PathBuf> = roots
        .iter()
        .filter(|(_, &r)| r)
        .map(|(p, _)| p.clone())
        .collect();
    roots
        .into_iter()
        .filter(|(path, _)| !recursive.iter().any(|r| path != r && path.starts_with(r)))
        .map(|(path, r)| {
            let mode = if r {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            (path, mode)
        })
        .collect()
}

/// Ctrl-C (and SIGTERM, which is how service managers and test harnesses stop a process)
/// end the watch. The signal handlers are installed before this returns, so a signal that
/// arrives right after the "watching" line is not lost.
fn listen_for_stop(s: &Session, tx: mpsc::Sender<Message>) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut interrupt, mut terminate) =
            s.rt.block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                ))
            })
            .map_err(|e| CliError::Io(format!("cannot listen for Ctrl-C: {e}")))?;
        s.rt.spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = tx.send(Message::Stop);
        });
    }
    #[cfg(not(unix))]
    {
        s.rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(Message::Stop);
            }
        });
    }
    Ok(())
}

/// Records the paths of one event; `true` marks paths that were created or renamed into
/// place, the only directories worth walking (a directory that merely changed reports its
/// files separately).
fn collect(event: notify::Result<notify::Event>, changed: &mut BTreeMap<PathBuf, bool>) {
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            report::warning(&format!(
                "file watching reported a problem: {e}; changes may have been missed, save the files again"
            ));
            return;
        }
    };
    let created = match event.kind {
        EventKind::Access(_) => return,
        EventKind::Create(_) => true,
        EventKind::Modify(notify::event::ModifyKind::Name(_)) => true,
        _ => false,
    };
    for path in event.paths {
        let entry = changed.entry(path).or_insert(false);
        *entry |= created;
    }
}

/// The batch as it is now on disk: every changed file, every file of a new directory, and
/// the paths that are gone.
fn settle(changed: &BTreeMap<PathBuf, bool>) -> Vec<Change> {
    let mut changes = Vec::new();
    for (path, &created) in changed {
        match std::fs::symlink_metadata(path) {
            Err(_) => changes.push(Change {
                path: path.clone(),
                exists: false,
            }),
            Ok(meta) if meta.is_dir() => {
                if created {
                    changes.extend(
                        files_under(path)
                            .into_iter()
                            .map(|path| Change { path, exists: true }),
                    );
                }
            }
            Ok(_) => changes.push(Change {
                path: path.clone(),
                exists: true,
            }),
        }
    }
    changes
}

/// Every file below `dir` (symlinks as files, not followed), or `dir` itself when it is a
/// file.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    pending.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
                }
            }
            Ok(_) => files.push(path),
            Err(_) => {}
        }
    }
    files.sort();
    files
}

/// `initial_sync: true`: copies everything under the rule's path once at the start, so the
/// containers do not run with files from before this session.
fn initial_sync(s: &Session, rules: &[WatchRule]) {
    for rule in rules.iter().filter(|r| r.initial_sync && r.action.syncs()) {
        let changes: Vec<Change> = files_under(&rule.path)
            .into_iter()
            .map(|path| Change { path, exists: true })
            .collect();
        for mut actions in plan_batch(std::slice::from_ref(rule), &changes) {
            // The first sync only brings files up to date; restarting or running the hook
            // is for changes made while watching.
            actions.restart = false;
            actions.exec.clear();
            sync(s, &actions);
        }
    }
}

/// Carries out one service's actions, printing one line per action. Returns false when the
/// user interrupted a rebuild, which ends the watch.
fn apply(s: &Session, a: &UpArgs, actions: &ServiceActions) -> bool {
    let service = &actions.service;
    if actions.rebuild {
        let started = Instant::now();
        let up = UpArgs {
            build: true,
            wait: true,
            services: vec![service.clone()],
            ..a.clone()
        };
        match converge(s, &up) {
            Ok(()) => println!("rebuilt {service} ({})", elapsed(started)),
            Err(CliError::Interrupted) => return false,
            Err(e) => {
                report::error(&e);
                report::warning(&format!(
                    "{service} was not rebuilt; still watching, fix the problem and save again"
                ));
            }
        }
        return true;
    }
    let containers = sync(s, actions);
    for hook in &actions.exec {
        let opts = ExecOptions {
            cmd: hook.command.clone(),
            env: hook.environment.clone(),
            user: hook.user.clone(),
            working_dir: hook.working_dir.clone(),
            privileged: hook.privileged,
            ..Default::default()
        };
        for (id, name) in &containers {
            let started = Instant::now();
            let ran = s.rt.block_on(s.engine.exec(
                id,
                &opts,
                None::<tokio::io::Empty>,
                tokio::io::stdout(),
                tokio::io::stderr(),
            ));
            match ran {
                Ok(0) => println!(
                    "ran `{}` in {name} ({})",
                    hook.command.join(" "),
                    elapsed(started)
                ),
                Ok(code) => report::warning(&format!(
                    "`{}` exited with code {code} in {name}",
                    hook.command.join(" ")
                )),
                Err(e) => report::warning(&e.to_string()),
            }
        }
    }
    if actions.restart {
        let started = Instant::now();
        let mut restarted = 0;
        for (id, name) in &containers {
            match s.rt.block_on(
                s.engine
                    .restart_container(id, a.timeout.map(Duration::from_secs)),
            ) {
                Ok(()) => restarted += 1,
                Err(e) => report::warning(&format!("cannot restart {name}: {e}")),
            }
        }
        if restarted > 0 {
            println!(
                "restarted {service}{} ({})",
                replicas(restarted),
                elapsed(started)
            );
        }
    }
    true
}

/// Copies and deletes a service's files in each of its running containers. Returns the
/// containers (id, name), for the actions that follow a sync.
fn sync(s: &Session, actions: &ServiceActions) -> Vec<(String, String)> {
    let service = &actions.service;
    let containers: Vec<(String, String)> = match s.containers(std::slice::from_ref(service), false)
    {
        Ok(list) => list.into_iter().map(|c| (c.id, c.name)).collect(),
        Err(e) => {
            report::warning(&format!("cannot list the containers of {service}: {e}"));
            return Vec::new();
        }
    };
    if containers.is_empty() {
        report::warning(&format!(
            "{service} has no running container; changes were not applied (run `berth up` to start it)"
        ));
        return containers;
    }
    if !actions.copy.is_empty() {
        let started = Instant::now();
        let mut done = 0;
        for (id, name) in &containers {
            match s.rt.block_on(s.engine.copy_into(id, &actions.copy)) {
                Ok(()) => done += 1,
                Err(e) => report::warning(&format!("cannot sync to {name}: {e}")),
            }
        }
        if done > 0 {
            println!(
                "synced {} to {service}{} ({})",
                count(actions.copy.len(), "file"),
                replicas(done),
                elapsed(started)
            );
        }
    }
    if !actions.delete.is_empty() {
        let started = Instant::now();
        let mut done = 0;
        for (id, name) in &containers {
            match s.rt.block_on(s.engine.delete_paths(id, &actions.delete)) {
                Ok(()) => done += 1,
                // Images built FROM scratch have no `rm`; the stale files are harmless
                // until the next restart or rebuild replaces the container's files.
                Err(e @ EngineError::CannotDelete { .. }) => report::warning(&e.to_string()),
                Err(e) => report::warning(&format!("cannot delete files in {name}: {e}")),
            }
        }
        if done > 0 {
            println!(
                "deleted {} in {service}{} ({})",
                count(actions.delete.len(), "file"),
                replicas(done),
                elapsed(started)
            );
        }
    }
    containers
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// " (3 containers)" when a service runs several replicas, else nothing.
fn replicas(n: usize) -> String {
    if n > 1 {
        format!(" ({n} containers)")
    } else {
        String::new()
    }
}

fn elapsed(started: Instant) -> String {
    let d = started.elapsed();
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_walked_and_a_missing_path_is_a_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        std::fs::create_dir_all(new.join("deep")).unwrap();
        std::fs::write(new.join("deep/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        let changed = BTreeMap::from([
            (new.clone(), true),
            (dir.path().join("b.txt"), false),
            (dir.path().join("gone"), false),
        ]);
        let changes = settle(&changed);
        assert_eq!(
            changes,
            vec![
                Change {
                    path: dir.path().join("b.txt"),
                    exists: true
                },
                Change {
                    path: dir.path().join("gone"),
                    exists: false
                },
                Change {
                    path: new.join("deep/a.txt"),
                    exists: true
                },
            ]
        );
        // A directory that only changed is not walked: its files report themselves.
        let changes = settle(&BTreeMap::from([(new, false)]));
        assert!(changes.is_empty());
    }

    #[test]
    fn nested_roots_are_watched_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/sub")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        let project: berth_compose::Project = serde_json::from_value(serde_json::json!({
            "name": "p",
            "services": {"web": {"image": "x", "develop": {"watch": [
                {"path": dir.path().join("src"), "action": "sync", "target": "/a"},
                {"path": dir.path().join("src/sub"), "action": "restart"},
                {"path": dir.path().join("Cargo.toml"), "action": "restart"}
            ]}}}
        }))
        .unwrap();
        let rules = watch_rules(&project, &[], |_| None).unwrap();
        let roots = watch_roots(&rules);
        assert_eq!(
            roots,
            vec![
                (dir.path().to_path_buf(), RecursiveMode::NonRecursive),
                (dir.path().join("src"), RecursiveMode::Recursive),
            ]
        );
    }
}
