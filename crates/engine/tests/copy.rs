//! Copying files into containers and deleting them there, on the real engine, checked with
//! `docker cp` (independent of the code under test).

mod common;

use berth_engine::EngineError;
use berth_test_support::{docker_output, run_container, POSTGRES_IMAGE, TESTAPP_IMAGE};
use common::engine;
use std::io::Read;

/// `docker cp CONTAINER:PATH -` unpacked: the file's bytes and mode, or None when absent.
fn read_back(container: &str, path: &str) -> Option<(Vec<u8>, u32)> {
    let out = docker_output(&["cp", &format!("{container}:{path}"), "-"]);
    if !out.status.success() {
        return None;
    }
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut entry = archive.entries().unwrap().next()?.unwrap();
    let mode = entry.header().mode().unwrap() & 0o777;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    Some((bytes, mode))
}

#[tokio::test]
async fn copy_into_puts_files_into_a_running_scratch_container() {
    let engine = engine().await;
    let container = run_container("berth-copy", &[TESTAPP_IMAGE]);
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.txt");
    std::fs::write(&app, "hello from the host\n").unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).unwrap();
    }

    // `/src/deep/er` does not exist in the image: the parents must be created.
    engine
        .copy_into(
            &container.name,
            &[
                (app.clone(), "/src/app.txt".to_string()),
                (script.clone(), "/src/deep/er/run.sh".to_string()),
            ],
        )
        .await
        .unwrap();

    let (bytes, _) = read_back(&container.name, "/src/app.txt").expect("app.txt arrived");
    assert_eq!(bytes, b"hello from the host\n");
    let (bytes, mode) = read_back(&container.name, "/src/deep/er/run.sh").expect("run.sh arrived");
    assert_eq!(bytes, b"#!/bin/sh\n");
    #[cfg(unix)]
    assert_eq!(mode, 0o750, "the file mode is kept");
    let _ = mode;

    // A second copy replaces the content.
    std::fs::write(&app, "changed").unwrap();
    engine
        .copy_into(&container.name, &[(app, "/src/app.txt".to_string())])
        .await
        .unwrap();
    assert_eq!(
        read_back(&container.name, "/src/app.txt").unwrap().0,
        b"changed"
    );
    assert_eq!(
        container.inspect("{{.State.Running}}"),
        "true",
        "copying does not disturb the running process"
    );
}

#[tokio::test]
async fn copy_into_a_missing_container_is_not_found() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a");
    std::fs::write(&file, "x").unwrap();
    let err = engine
        .copy_into("berth-no-such-container", &[(file, "/a".to_string())])
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn delete_paths_removes_files_where_the_image_has_rm() {
    let engine = engine().await;
    let container = run_container("berth-delete", &[POSTGRES_IMAGE, "sleep", "300"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gone.txt");
    std::fs::write(&file, "bye").unwrap();
    engine
        .copy_into(&container.name, &[(file, "/work/gone.txt".to_string())])
        .await
        .unwrap();
    assert!(read_back(&container.name, "/work/gone.txt").is_some());

    engine
        .delete_paths(&container.name, &["/work/gone.txt".to_string()])
        .await
        .unwrap();
    assert!(read_back(&container.name, "/work/gone.txt").is_none());
}

#[tokio::test]
async fn delete_paths_in_a_scratch_image_says_it_cannot() {
    let engine = engine().await;
    let container = run_container("berth-nodelete", &[TESTAPP_IMAGE]);
    let err = engine
        .delete_paths(&container.name, &["/testapp".to_string()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::CannotDelete { reason, .. } if reason.contains("no `rm`")),
        "{err}"
    );
    assert_eq!(container.inspect("{{.State.Running}}"), "true");
}
