//! The environment berth reads, read once per run: every variable a command consults is in
//! [`Env`], filled by [`crate::run`] before the command starts, so a command never sees two
//! values of one variable and the paths derived from them have one home.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `BERTH_STATE_DIR` when set and not empty: deploy state and the proxy's data.
    pub state_dir: Option<PathBuf>,
    /// `BERTH_PROXY_SOCKET` when set and not empty: the proxy's admin socket.
    pub proxy_socket: Option<PathBuf>,
    /// `BERTH_PROXY_CONTAINER` when set and not empty: the proxy container's name.
    pub proxy_container: Option<String>,
    /// `BERTH_BACKUP_PASSWORD_FILE` when set and not empty: the backup repository's password.
    pub backup_password_file: Option<PathBuf>,
    /// `XDG_CONFIG_HOME` when set, not empty and absolute (as the XDG spec asks).
    pub xdg_config_home: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR` when set and not empty.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `XDG_STATE_HOME` as set (each rule decides what an empty or relative value means).
    pub xdg_state_home: Option<OsString>,
    /// `HOME` as set.
    pub home: Option<OsString>,
    /// The effective user, from the owner of `/proc/self`; `None` without `/proc`.
    pub uid: Option<u32>,
}

impl Env {
    /// Reads the process environment.
    pub fn read() -> Env {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            state_dir: path("BERTH_STATE_DIR"),
            proxy_socket: path("BERTH_PROXY_SOCKET"),
            proxy_container: std::env::var("BERTH_PROXY_CONTAINER")
                .ok()
                .filter(|n| !n.is_empty()),
            backup_password_file: path("BERTH_BACKUP_PASSWORD_FILE"),
            xdg_config_home: path("XDG_CONFIG_HOME").filter(|p| p.is_absolute()),
            xdg_runtime_dir: path("XDG_RUNTIME_DIR"),
            xdg_state_home: std::env::var_os("XDG_STATE_HOME"),
            home: std::env::var_os("HOME"),
            uid: {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata("/proc/self").map(|m| m.uid()).ok()
            },
        }
    }

    /// The user's configuration directory: `$XDG_CONFIG_HOME`, else `~/.config`, else
    /// `/etc` for a user without a home (the backup password's default home).
    pub fn config_home(&self) -> PathBuf {
        match (&self.xdg_config_home, &self.home) {
            (Some(dir), _) => dir.clone(),
            (None, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".config"),
            _ => PathBuf::from("/etc"),
        }
    }

    /// Where releases and locks live: `$BERTH_STATE_DIR` when set (tests, several hosts'
    /// state side by side), else beside the state store's default path.
    pub fn deploy_state_dir(&self) -> PathBuf {
        match &self.state_dir {
            Some(dir) => dir.clone(),
            None => berth_deploy::store::default_path_in(
                self.uid == Some(0),
                self.xdg_state_home.clone(),
                self.home.clone(),
            )
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
        }
    }
}

static ENV: OnceLock<Env> = OnceLock::new();

/// Sets the run's environment; the first call wins.
pub fn init(env: Env) {
    let _ = ENV.set(env);
}

/// The run's environment (read now when [`init`] was not called, as in a unit test).
pub fn get() -> &'static Env {
    ENV.get_or_init(Env::read)
}
