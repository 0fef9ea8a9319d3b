//! `berth/mariadb:10.11` and `berth/redis:7`: Debian bookworm's MariaDB and Redis for the
//! end-to-end backup tests, and `berth/python:3.11`, Debian's Python, the base of the build
//! tests' Python-style sample (#17): three images `FROM` one base made by one debootstrap
//! run (`debian_rootfs.rs` builds them).

use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::debian_rootfs::{self, Asset, Image, Rootfs};

pub static ROOTFS: Rootfs = Rootfs {
    cache_name: "dbs-bookworm",
    base_image: "berth/dbs-rootfs:bookworm",
    debootstrap_args: &[
        "--variant=minbase",
        "--include=mariadb-server,redis-server,python3",
    ],
    assets: &[Asset {
        path: "usr/local/bin/berth-mariadb-entrypoint",
        text: include_str!("../assets/berth-mariadb-entrypoint"),
    }],
    customise,
    images: &[
        Image {
            name: "berth/mariadb:10.11",
            dockerfile: MARIADB_DOCKERFILE,
        },
        Image {
            name: "berth/redis:7",
            dockerfile: REDIS_DOCKERFILE,
        },
        Image {
            name: "berth/python:3.11",
            dockerfile: PYTHON_DOCKERFILE,
        },
    ],
};

/// mariadbd shuts down cleanly on SIGTERM (Docker's default, said here for the reader).
const MARIADB_DOCKERFILE: &str = "FROM berth/dbs-rootfs:bookworm
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 3306
STOPSIGNAL SIGTERM
ENTRYPOINT [\"/usr/local/bin/berth-mariadb-entrypoint\"]
";

/// No config file: Redis 7's defaults (save points on, appendonly off) are what the official
/// image runs too. Protected mode would refuse clients from other containers without a
/// password, and `--dir` puts dump.rdb in the volume.
const REDIS_DOCKERFILE: &str = "FROM berth/dbs-rootfs:bookworm
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /data
EXPOSE 6379
CMD [\"redis-server\", \"--protected-mode\", \"no\", \"--dir\", \"/data\"]
";

/// Debian's python3 (3.11 in bookworm), unbuffered so that a container's prints reach its
/// log at once.
const PYTHON_DOCKERFILE: &str = "FROM berth/dbs-rootfs:bookworm
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONUNBUFFERED=1
CMD [\"python3\"]
";

/// Empties the data directory the Debian postinst initialised: a new named volume mounted
/// there is filled from the image, and a non-empty one would skip the entrypoint's
/// initialisation with its passwords. The directories stay, owned by mysql, so that the
/// volume is too. /data is Redis's.
fn customise(rootfs: &Path) -> Result<()> {
    let (uid, gid) = debian_rootfs::user_ids(rootfs, "mysql")?;
    let datadir = rootfs.join("var/lib/mysql");
    if datadir.exists() {
        for entry in fs::read_dir(&datadir)? {
            let path = entry?.path();
            if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
    }
    for dir in [datadir, rootfs.join("run/mysqld")] {
        fs::create_dir_all(&dir)?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    fs::create_dir_all(rootfs.join("data"))?;
    Ok(())
}
