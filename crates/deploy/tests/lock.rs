//! The per-project lock: refused with the holder named, released on drop and when the holder
//! is killed with SIGKILL, and won by exactly one of two racing threads.

use berth_deploy::{Holder, LockError, ProjectLock};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

/// Set in a child copy of this test binary to the lock directory it should lock.
const CHILD_DIR: &str = "BERTH_TEST_LOCK_CHILD_DIR";
/// What the child prints once it holds the lock.
const CHILD_READY: &str = "BERTH_TEST_LOCK_HELD";

fn holder(command: &str) -> Holder {
    Holder {
        pid: 4242,
        host: "web1".to_string(),
        command: command.to_string(),
        since: 1_795_325_467_000,
    }
}

#[test]
fn a_second_acquire_is_refused_with_the_holder_named() {
    let dir = tempfile::tempdir().unwrap();
    let lock = ProjectLock::acquire(dir.path(), "shop", &holder("deploy")).unwrap();
    assert_eq!(lock.path(), dir.path().join("shop.lock"));
    assert_eq!(lock.project(), "shop");

    let err = ProjectLock::acquire(dir.path(), "shop", &holder("rollback")).unwrap_err();
    match &err {
        LockError::Held {
            project, holder: h, ..
        } => {
            assert_eq!(project, "shop");
            assert_eq!(h.as_ref(), Some(&holder("deploy")));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "project `shop` is locked by `berth deploy` (pid 4242 on host web1) since 2026-11-22 05:31:07 UTC; wait for it to finish"
    );

    // Another project has its own lock.
    let blog = ProjectLock::acquire(dir.path(), "blog", &holder("deploy")).unwrap();

    drop(lock);
    let again = ProjectLock::acquire(dir.path(), "shop", &Holder::current("rollback")).unwrap();
    drop(again);
    drop(blog);
}

#[test]
fn the_note_names_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let me = Holder::current("deploy");
    assert_eq!(me.pid, std::process::id());
    assert!(!me.host.is_empty());
    let _lock = ProjectLock::acquire(&dir.path().join("locks"), "shop", &me).unwrap();
    let note = std::fs::read_to_string(dir.path().join("locks/shop.lock")).unwrap();
    let written: Holder = serde_json::from_str(note.trim()).unwrap();
    assert_eq!(written, me);
}

#[test]
fn names_that_could_leave_the_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["", "../shop", ".hidden", "a/b"] {
        let err = ProjectLock::acquire(dir.path(), bad, &holder("deploy")).unwrap_err();
        assert!(
            matches!(err, LockError::InvalidProject { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

/// A child process holds the project lock: an acquire from this process is refused and names
/// the child (its pid, host, command and the time it took the lock); once the child is killed
/// the lock is free again. In a child copy of this binary (with [`CHILD_DIR`] set) it is that
/// child instead: it takes the lock, says so and sleeps until killed.
#[test]
fn lock_holding_child() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let _lock =
            ProjectLock::acquire(Path::new(&dir), "shop", &Holder::current("deploy")).unwrap();
        println!("{CHILD_READY}");
        std::thread::sleep(std::time::Duration::from_secs(120));
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut child = HoldingChild::spawn(dir.path());
    let child_pid = child.0.id();

    let err = ProjectLock::acquire(dir.path(), "shop", &holder("rollback")).unwrap_err();
    let LockError::Held {
        project,
        holder: Some(h),
        path,
    } = &err
    else {
        panic!("expected Held with the child's note, got {err:?}");
    };
    assert_eq!(project, "shop");
    assert_eq!(path, &dir.path().join("shop.lock"));
    assert_eq!(h.pid, child_pid);
    assert_eq!(h.command, "deploy");
    assert_eq!(h.host, Holder::current("deploy").host);
    assert!(
        h.since >= before,
        "taken at {} before the child started",
        h.since
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "project `shop` is locked by `berth deploy` (pid {child_pid} on host "
        )),
        "{message}"
    );
    // The refused acquire did not overwrite the holder's note.
    let note = std::fs::read_to_string(dir.path().join("shop.lock")).unwrap();
    assert_eq!(
        serde_json::from_str::<Holder>(note.trim()).unwrap().pid,
        child_pid
    );

    child.kill();
    let lock = ProjectLock::acquire(dir.path(), "shop", &holder("rollback"))
        .expect("the lock is free once its holder is dead");
    let note = std::fs::read_to_string(dir.path().join("shop.lock")).unwrap();
    assert_eq!(
        serde_json::from_str::<Holder>(note.trim()).unwrap(),
        holder("rollback")
    );
    drop(lock);
}

/// A child copy of this binary running [`lock_holding_child`] in its child role, killed on drop
/// so that a failed assertion does not leave it sleeping.
struct HoldingChild(std::process::Child);

impl HoldingChild {
    /// Starts the child and returns once it holds the lock of `shop` in `dir`.
    fn spawn(dir: &Path) -> HoldingChild {
        let mut child = HoldingChild(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "lock_holding_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let held = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(CHILD_READY));
        assert!(held, "the child never reported holding the lock");
        child
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no destructor runs in the child, so only
    /// the kernel can release its lock.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for HoldingChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_holder_killed_with_sigkill_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holding_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let held = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(CHILD_READY));
    assert!(held, "the child never reported holding the lock");

    let err = ProjectLock::acquire(dir.path(), "shop", &holder("deploy")).unwrap_err();
    match err {
        LockError::Held {
            holder: Some(h), ..
        } => assert_eq!(h.pid, child.id()),
        other => panic!("expected Held by the child, got {other:?}"),
    }

    // `Child::kill` sends SIGKILL on Unix: no destructor runs in the child.
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = ProjectLock::acquire(dir.path(), "shop", &holder("deploy"))
        .expect("the kernel released the dead holder's lock");
    drop(lock);
}

#[test]
fn of_two_racing_threads_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..50 {
        let project = format!("race{round}");
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let dir = dir.path().to_path_buf();
                let project = project.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    ProjectLock::acquire(&dir, &project, &Holder::current("deploy"))
                })
            })
            .collect();
        // Both results are kept until both threads are done, so the winner still holds the
        // lock while the loser tries.
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(matches!(loser, LockError::Held { .. }), "{loser:?}");
    }
}
