//! The layering ARCHITECTURE.md promises, checked against `cargo metadata` (issue #15 item 5):
//! the loader does no I/O beyond files and so needs no runtime, the proxy knows nothing of
//! Compose or Docker, only the engine crate talks to Docker, and the deploy crate reaches the
//! proxy through its small admin vocabulary, not through the whole proxy with its TLS stack.
//!
//! A rule broken by a new dependency fails here with the path that brought it in, so the
//! layering is kept by the build rather than by review.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::Command;

/// The workspace's resolved dependency graph, normal and build edges only: what a crate
/// ships with, not what its tests use.
struct Graph {
    /// Package name by package id.
    names: BTreeMap<String, String>,
    /// Package id by name, for workspace members.
    members: BTreeMap<String, String>,
    /// Normal and build dependencies by package id.
    edges: BTreeMap<String, Vec<String>>,
    /// The library root (`src/lib.rs`) of every workspace member that has one, by name.
    libs: BTreeMap<String, PathBuf>,
}

impl Graph {
    fn load() -> Graph {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Only this platform's graph: the layering is the same on every platform, and the
        // whole graph would need crates for Windows and macOS that an offline machine lacks.
        let version = Command::new(&cargo)
            .arg("-vV")
            .output()
            .expect("cargo -vV runs");
        let version = String::from_utf8_lossy(&version.stdout).to_string();
        let host = version
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("cargo -vV names the host")
            .trim()
            .to_string();
        let out = Command::new(&cargo)
            .current_dir(&root)
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .args(["--filter-platform", &host])
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
        let names: BTreeMap<String, String> = meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().expect("id").to_string(),
                    p["name"].as_str().expect("name").to_string(),
                )
            })
            .collect();
        let members: BTreeMap<String, String> = meta["workspace_members"]
            .as_array()
            .expect("workspace_members")
            .iter()
            .map(|id| {
                let id = id.as_str().expect("member id").to_string();
                (names[&id].clone(), id)
            })
            .collect();
        let mut libs = BTreeMap::new();
        for p in meta["packages"].as_array().expect("packages") {
            let id = p["id"].as_str().expect("id");
            if !members.values().any(|m: &String| m == id) {
                continue;
            }
            for t in p["targets"].as_array().expect("targets") {
                let kinds = t["kind"].as_array().expect("kind");
                if kinds.iter().any(|k| k == "lib") {
                    libs.insert(
                        p["name"].as_str().expect("name").to_string(),
                        PathBuf::from(t["src_path"].as_str().expect("src_path")),
                    );
                }
            }
        }
        let mut edges = BTreeMap::new();
        for node in meta["resolve"]["nodes"].as_array().expect("resolve nodes") {
            let id = node["id"].as_str().expect("node id").to_string();
            let deps = node["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .expect("dep_kinds")
                        .iter()
                        .any(|k| k["kind"].as_str() != Some("dev"))
                })
                .map(|d| d["pkg"].as_str().expect("pkg").to_string())
                .collect();
            edges.insert(id, deps);
        }
        Graph {
            names,
            members,
            edges,
            libs,
        }
    }

    fn id(&self, member: &str) -> &str {
        self.members
            .get(member)
            .unwrap_or_else(|| panic!("`{member}` is not a workspace member"))
    }

    /// The names of a member's direct (normal and build) dependencies.
    fn direct(&self, member: &str) -> BTreeSet<String> {
        self.edges[self.id(member)]
            .iter()
            .map(|d| self.names[d].clone())
            .collect()
    }

    /// Every crate `member` depends on, transitively, each with the chain that brings it in.
    fn reach(&self, member: &str) -> BTreeMap<String, Vec<String>> {
        let start = self.id(member).to_string();
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut queue = VecDeque::from([(start, vec![member.to_string()])]);
        while let Some((id, path)) = queue.pop_front() {
            for dep in &self.edges[&id] {
                let name = self.names[dep].clone();
                if seen.contains_key(&name) {
                    continue;
                }
                let mut next = path.clone();
                next.push(name.clone());
                seen.insert(name, next.clone());
                queue.push_back((dep.clone(), next));
            }
        }
        seen
    }

    /// Fails with the chain of the first forbidden crate `member` reaches.
    fn assert_never_reaches(&self, member: &str, forbidden: &[&str], why: &str) {
        let reach = self.reach(member);
        let found: Vec<String> = forbidden
            .iter()
            .filter_map(|f| reach.get(*f).map(|path| path.join(" → ")))
            .collect();
        assert!(
            found.is_empty(),
            "{member} must not depend on {forbidden:?} ({why}), but: {}",
            found.join("; ")
        );
    }

    fn berth_members(&self) -> impl Iterator<Item = &String> {
        self.members.keys().filter(|m| m.starts_with("berth-"))
    }
}

#[test]
fn compose_does_no_io_but_files() {
    let g = Graph::load();
    g.assert_never_reaches(
        "berth-compose",
        &[
            "berth-engine",
            "berth-proxy",
            "berth-proxy-api",
            "berth-deploy",
            "tokio",
            "bollard",
            "hyper",
        ],
        "the loader reads files and nothing else; it runs before any socket is opened",
    );
}

#[test]
fn proxy_knows_no_berth_crate_but_its_leaves() {
    let g = Graph::load();
    let allowed = ["berth-proxy-api", "berth-base"];
    let berth: Vec<String> = g
        .direct("berth-proxy")
        .into_iter()
        .filter(|d| d.starts_with("berth-") && !allowed.contains(&d.as_str()))
        .collect();
    assert!(
        berth.is_empty(),
        "the proxy may use only {allowed:?} of berth's crates (routes, addresses and health, nothing of Compose or Docker), but it depends on {berth:?}"
    );
    g.assert_never_reaches(
        "berth-proxy",
        &["berth-compose", "berth-engine", "berth-deploy", "bollard"],
        "the proxy routes addresses; Compose and Docker are the CLI's and deploy's business",
    );
}

#[test]
fn only_the_engine_crate_talks_to_docker() {
    let g = Graph::load();
    let direct: Vec<&String> = g
        .berth_members()
        .filter(|m| g.direct(m).contains("bollard"))
        .collect();
    assert_eq!(
        direct,
        vec!["berth-engine"],
        "only berth-engine may depend on bollard: every Docker call goes through it"
    );
}

#[test]
fn deploy_reaches_the_proxy_only_through_its_admin_vocabulary() {
    let g = Graph::load();
    g.assert_never_reaches(
        "berth-deploy",
        &["berth-proxy", "instant-acme", "rcgen", "tokio-rustls"],
        "deploy speaks to the proxy through berth-proxy-api; TLS and ACME are the proxy's own",
    );
}

#[test]
fn leaf_crates_stay_leaves() {
    let g = Graph::load();
    for leaf in ["berth-proxy-api", "berth-base", "berth-engine"] {
        let berth: Vec<String> = g
            .direct(leaf)
            .into_iter()
            .filter(|d| d.starts_with("berth-") && d != "berth-base")
            .collect();
        assert!(
            berth.is_empty(),
            "{leaf} may depend on no berth crate but berth-base, but it depends on {berth:?}"
        );
    }
    let base: Vec<String> = g.direct("berth-base").into_iter().collect();
    assert!(
        base.is_empty(),
        "berth-base is std only (everyone may depend on it, so it must depend on nothing), but it depends on {base:?}"
    );
}

/// Only the CLI prints: every other library crate denies `print!`/`eprint!` at its root, so
/// clippy (run with `-D warnings` in CI) fails on a print added anywhere in it. This test keeps
/// a new library crate from being born without the lint.
#[test]
fn every_library_but_the_cli_denies_printing() {
    let g = Graph::load();
    let lint = "#![deny(clippy::print_stdout, clippy::print_stderr)]";
    let missing: Vec<String> = g
        .libs
        .iter()
        .filter(|(name, _)| name.starts_with("berth-") && name.as_str() != "berth-cli")
        .filter(|(_, root)| {
            !std::fs::read_to_string(root)
                .unwrap_or_default()
                .lines()
                .any(|l| l.trim() == lint)
        })
        .map(|(name, root)| format!("{name} ({})", root.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "these library crates lack `{lint}` at their root: {}",
        missing.join(", ")
    );
}
