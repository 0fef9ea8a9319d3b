//! `berth/postgres:15`: Debian bookworm's PostgreSQL 15 in an image built without a registry,
//! from a debootstrap rootfs of its own (`debian_rootfs.rs` builds it).

use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::debian_rootfs::{Asset, Image, Rootfs};

pub static ROOTFS: Rootfs = Rootfs {
    cache_name: "postgres-15",
    base_image: "berth/postgres-rootfs:15",
    debootstrap_args: &["--variant=minbase", "--include=postgresql-15"],
    assets: &[Asset {
        path: "usr/local/bin/berth-postgres-entrypoint",
        text: include_str!("../assets/berth-postgres-entrypoint"),
    }],
    customise,
    images: &[Image {
        name: "berth/postgres:15",
        dockerfile: DOCKERFILE,
    }],
};

/// Postgres treats SIGTERM as "smart" shutdown, which waits for every client to leave;
/// SIGINT is the "fast" shutdown that still checkpoints cleanly, as the official image does.
const DOCKERFILE: &str = "FROM berth/postgres-rootfs:15
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT [\"/usr/local/bin/berth-postgres-entrypoint\"]
";

/// Removes the cluster the Debian package creates: the entrypoint makes its own in $PGDATA.
fn customise(rootfs: &Path) -> Result<()> {
    for dir in ["var/lib/postgresql/15", "etc/postgresql/15"] {
        let path = rootfs.join(dir);
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}
