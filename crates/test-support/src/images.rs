//! Building the test images once per test process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The testapp image built by `cargo xtask test-images`.
pub const TESTAPP_IMAGE: &str = "berth/testapp:latest";
/// The PostgreSQL 15 image built by `cargo xtask test-images`.
pub const POSTGRES_IMAGE: &str = "berth/postgres:15";
/// The MariaDB 10.11 image built by `cargo xtask test-images` (MARIADB_ROOT_PASSWORD,
/// MARIADB_DATABASE, MARIADB_USER and MARIADB_PASSWORD as in the official image).
pub const MARIADB_IMAGE: &str = "berth/mariadb:10.11";
/// The Redis 7 image built by `cargo xtask test-images` (its data directory is /data).
pub const REDIS_IMAGE: &str = "berth/redis:7";
/// Debian's Python 3.11, the base of the build tests' sample service (xtask
/// database_images.rs).
pub const PYTHON_IMAGE: &str = "berth/python:3.11";

/// The repository root (where the workspace Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The statically linked `berth` binary that `cargo xtask test-images` builds (under
/// `target/static`), for tests that boot the proxy in a `FROM scratch` container. Call
/// [`ensure_test_images`] first.
pub fn static_berth_binary() -> PathBuf {
    workspace_root()
        .join("target/static")
        .join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
        .join("release/berth")
}

/// Runs `cargo xtask test-images` the first time it is called in this process; later calls
/// return at once. The build is cached by content, so it takes seconds when nothing changed.
///
/// Panics when the images cannot be built: the tests that need them cannot run without.
pub fn ensure_test_images() {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = RESULT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let output = Command::new(&cargo)
            .args(["xtask", "test-images"])
            .current_dir(workspace_root())
            .output()
            .map_err(|err| format!("cannot run `{cargo} xtask test-images`: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`cargo xtask test-images` failed with {}; these tests need a running Docker \
                 Engine, and the postgres, mariadb and redis images need root and \
                 debootstrap.\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}
