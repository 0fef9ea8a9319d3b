//! The merged tree turned into the canonical project: profiles applied, references checked,
//! short syntax turned into long syntax, environment files read, names and defaults filled in —
//! the form `docker compose config` prints.

use crate::berth_ext;
use crate::dotenv;
use crate::duration;
use crate::error::{LoadError, Problem};
use crate::model::Project;
use crate::mounts;
use crate::node::{Entry, Kind, Map, Node};
use crate::ports;
use crate::shell;
use crate::source::{SourceMap, Span};
use indexmap::IndexMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub struct Input<'a> {
    pub sources: &'a SourceMap,
    pub model: Node,
    pub name: &'a str,
    pub project_dir: &'a Path,
    pub environment: &'a IndexMap<String, String>,
    pub active_profiles: &'a [String],
}

pub struct Normalized {
    pub project: Project,
    pub canonical: serde_json::Value,
    pub all_profiles: Vec<String>,
    pub warnings: Vec<String>,
}

/// Sections whose entries get a `name: <project>_<key>` unless they set one or are external.
const RESOURCES: [&str; 4] = ["networks", "volumes", "secrets", "configs"];

pub fn normalize(input: Input<'_>) -> Result<Normalized, LoadError> {
    let mut n = Normalizer {
        sources: input.sources,
        env: input.environment,
        project_dir: input.project_dir,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let model = input.model;
    let empty = Map::new();
    let services_map = model
        .get("services")
        .and_then(Node::as_map)
        .unwrap_or(&empty);

    // Profiles (15-profiles.md): a service with profiles runs only when one of them is active.
    let mut all_profiles = BTreeSet::new();
    let mut enabled: IndexMap<&str, &Entry> = IndexMap::new();
    let mut disabled: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let all_active = input.active_profiles.iter().any(|p| p == "*");
    for (name, e) in services_map {
        let profiles: Vec<String> = match e.value.get("profiles").map(|p| &p.kind) {
            Some(Kind::Seq(items)) => items.iter().filter_map(Node::scalar_string).collect(),
            _ => vec![],
        };
        all_profiles.extend(profiles.iter().cloned());
        let on = profiles.is_empty()
            || all_active
            || profiles.iter().any(|p| input.active_profiles.contains(p));
        if on {
            enabled.insert(name.as_str(), e);
        } else {
            disabled.insert(name.as_str(), profiles);
        }
    }

    let top = |key: &str| model.get(key).and_then(Node::as_map).unwrap_or(&empty);
    let declared_networks = top("networks");
    let declared_volumes = top("volumes");
    let declared_secrets = top("secrets");
    let declared_configs = top("configs");

    let mut services = Map::new();
    let mut uses_default_network = false;
    let mut deps: BTreeMap<String, Vec<(String, Span)>> = BTreeMap::new();
    let mut berth_services = IndexMap::new();
    let mut names: Vec<&&str> = enabled.keys().collect();
    names.sort();
    for name in names {
        let e = enabled[*name];
        let ctx = ServiceCtx {
            name,
            defined: services_map,
            enabled: &enabled,
            disabled: &disabled,
            networks: declared_networks,
            volumes: declared_volumes,
            secrets: declared_secrets,
            configs: declared_configs,
        };
        let svc = n.service(&ctx, &e.value, &mut deps);
        if svc
            .get("networks")
            .is_some_and(|nw| nw.get("default").is_some())
        {
            uses_default_network = true;
        }
        if let Some(x) = e.value.get("x-berth") {
            match berth_ext::service(x, n.sources) {
                Ok(b) => {
                    berth_services.insert(name.to_string(), b);
                }
                Err(ps) => n.problems.extend(ps),
            }
        }
        services.insert(
            name.to_string(),
            Entry {
                key_span: e.key_span,
                value: svc,
            },
        );
    }
    n.check_cycles(&deps);

    // Top-level resources, with the names Compose gives them.
    let mut root = Map::new();
    put(&mut root, "name", Node::string(input.name, Span::NONE));
    root.insert(
        "services".into(),
        Entry {
            key_span: Span::NONE,
            value: Node::map(services, Span::NONE),
        },
    );
    for section in RESOURCES {
        let mut items: Vec<(String, Entry)> = top(section)
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        if section == "networks" && uses_default_network && !top(section).contains_key("default") {
            items.push((
                "default".into(),
                Entry {
                    key_span: Span::NONE,
                    value: Node::null(Span::NONE),
                },
            ));
        }
        if items.is_empty() {
            continue;
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Map::new();
        for (key, e) in items {
            let v = n.resource(input.name, &key, &e.value);
            out.insert(
                key,
                Entry {
                    key_span: e.key_span,
                    value: v,
                },
            );
        }
        put(&mut root, section, Node::map(out, Span::NONE));
    }
    if model.get("version").is_some() {
        n.warnings
            .push("the top-level `version` key is obsolete and ignored; remove it".to_string());
    }
    let mut project_berth = berth_ext::ProjectBerth::default();
    if let Some(Kind::Map(m)) = model.as_map().map(|_| &model.kind) {
        let mut ext: Vec<(&String, &Entry)> =
            m.iter().filter(|(k, _)| k.starts_with("x-")).collect();
        ext.sort_by(|a, b| a.0.cmp(b.0));
        for (k, e) in ext {
            if k == "x-berth" {
                match berth_ext::project(&e.value, n.sources) {
                    Ok(b) => project_berth = b,
                    Err(ps) => n.problems.extend(ps),
                }
            }
            root.insert(
                k.clone(),
                Entry {
                    key_span: e.key_span,
                    value: sorted(&e.value),
                },
            );
        }
    }

    if !n.problems.is_empty() {
        // Report in file order, whatever order the checks ran in.
        n.problems.sort_by_key(|p| {
            p.location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column))
        });
        return Err(LoadError {
            problems: n.problems,
        });
    }
    let canonical = Node::map(root, Span::NONE).to_json();
    let mut project: Project = serde_json::from_value(canonical.clone()).map_err(|e| {
        Problem::plain(format!(
            "internal error: the normalized project does not fit berth's model ({e}); please report this with your compose file"
        ))
    })?;
    project.project_dir = input.project_dir.to_path_buf();
    project.berth = project_berth;
    for (name, b) in berth_services {
        if let Some(s) = project.services.get_mut(&name) {
            s.berth = Some(b);
        }
    }
    Ok(Normalized {
        project,
        canonical,
        all_profiles: all_profiles.into_iter().collect(),
        warnings: n.warnings,
    })
}

/// A mapping node from keys already in the order they should print.
fn sorted_map(items: BTreeMap<String, Node>, span: Span) -> Node {
    let map = items
        .into_iter()
        .map(|(k, value)| {
            (
                k,
                Entry {
                    key_span: value.span,
                    value,
                },
            )
        })
        .collect();
    Node::map(map, span)
}

fn put(map: &mut Map, key: &str, value: Node) {
    map.insert(
        key.to_string(),
        Entry {
            key_span: value.span,
            value,
        },
    );
}

/// A copy of `node` with every mapping's keys sorted, as Compose prints them.
pub fn sorted(node: &Node) -> Node {
    match &node.kind {
        Kind::Map(m) => {
            let mut items: Vec<(&String, &Entry)> = m.iter().collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            let out = items
                .into_iter()
                .map(|(k, e)| {
                    (
                        k.clone(),
                        Entry {
                            key_span: e.key_span,
                            value: sorted(&e.value),
                        },
                    )
                })
                .collect();
            Node::map(out, node.span)
        }
        Kind::Seq(items) => Node::seq(items.iter().map(sorted).collect(), node.span),
        _ => node.clone(),
    }
}

struct ServiceCtx<'a> {
    name: &'a str,
    defined: &'a Map,
    enabled: &'a IndexMap<&'a str, &'a Entry>,
    disabled: &'a BTreeMap<&'a str, Vec<String>>,
    networks: &'a Map,
    volumes: &'a Map,
    secrets: &'a Map,
    configs: &'a Map,
}

struct Normalizer<'a> {
    sources: &'a SourceMap,
    env: &'a IndexMap<String, String>,
    project_dir: &'a Path,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Normalizer<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.problems.push(Problem::at(self.sources, span, msg));
    }

    fn err_help(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        self.problems
            .push(Problem::at(self.sources, span, msg).with_help(help));
    }

    fn service(
        &mut self,
        ctx: &ServiceCtx<'_>,
        svc: &Node,
        deps: &mut BTreeMap<String, Vec<(String, Span)>>,
    ) -> Node {
        let name = ctx.name;
        let Some(map) = svc.as_map() else {
            if !svc.is_null() {
                self.err(svc.span, format!("service `{name}` must be a mapping"));
            }
            return Node::map(Map::new(), svc.span);
        };
        if let (Some(_), Some(nw)) = (map.get("network_mode"), map.get("networks")) {
            self.err_help(
                nw.key_span,
                format!("service `{name}` sets both `network_mode` and `networks`, which exclude each other"),
                "remove `networks` to keep `network_mode`, or remove `network_mode`",
            );
        }
        let mut out: BTreeMap<String, Node> = BTreeMap::new();
        let mut environment: Option<Node> = None;
        let mut label_files: Vec<(String, Span)> = Vec::new();
        let mut env_file_values: Vec<(String, Option<String>, Span)> = Vec::new();
        for (key, e) in map {
            let v = &e.value;
            let normalized = match key.as_str() {
                "build" => Some(self.build(name, v)),
                "command" | "entrypoint" => self.command(name, key, v),
                "environment" => {
                    environment = Some(v.clone());
                    None
                }
                "env_file" => {
                    env_file_values = self.env_files(v);
                    None
                }
                "ports" => Some(self.ports(name, v)),
                "expose" => Some(Node::seq(
                    v.as_seq()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|x| x.scalar_string().map(|s| Node::string(s, x.span)))
                        .collect(),
                    v.span,
                )),
                "volumes" => Some(self.volumes(ctx, v)),
                "depends_on" => Some(self.depends_on(ctx, v, deps)),
                "networks" => Some(self.service_networks(ctx, v)),
                "healthcheck" => Some(self.healthcheck(v)),
                "label_file" => {
                    label_files = match &v.kind {
                        Kind::Str(s) => vec![(s.clone(), v.span)],
                        Kind::Seq(items) => items
                            .iter()
                            .filter_map(|i| i.scalar_string().map(|s| (s, i.span)))
                            .collect(),
                        _ => vec![],
                    };
                    None
                }
                "labels" | "annotations" | "sysctls" => Some(self.dict(v, false)),
                "secrets" => Some(self.file_refs(name, "secrets", ctx.secrets, v)),
                "configs" => Some(self.file_refs(name, "configs", ctx.configs, v)),
                "stop_grace_period" => Some(self.duration_node(v)),
                "extra_hosts" => Some(self.extra_hosts(v)),
                "profiles" => Some(sorted(v)),
                "deploy" => Some(self.deploy(v)),
                "dns" | "dns_search" | "tmpfs" | "cap_add" | "cap_drop" | "security_opt"
                | "devices" | "group_add" | "external_links" | "links" | "volumes_from" => {
                    Some(match &v.kind {
                        Kind::Str(s) => Node::seq(vec![Node::string(s.clone(), v.span)], v.span),
                        _ => sorted(v),
                    })
                }
                "x-berth" => Some(sorted(v)),
                _ => {
                    if v.is_null() {
                        None
                    } else {
                        Some(sorted(v))
                    }
                }
            };
            if let Some(nv) = normalized {
                out.insert(key.clone(), nv);
            }
        }
        if !label_files.is_empty() {
            let mut labels = self.label_files(&label_files);
            if let Some(Kind::Map(m)) = out.get("labels").map(|l| &l.kind) {
                for (k, e) in m {
                    labels.insert(k.clone(), e.value.clone());
                }
            }
            out.insert("labels".into(), sorted_map(labels, svc.span));
        }
        // Environment: env_file values first, then `environment:` over them (Compose's order).
        let env = self.environment(env_file_values, environment.as_ref());
        if !env.is_empty() {
            let m: Map = env
                .into_iter()
                .map(|(k, (v, span))| {
                    let value = match v {
                        Some(s) => Node::string(s, span),
                        None => Node::null(span),
                    };
                    (
                        k,
                        Entry {
                            key_span: span,
                            value,
                        },
                    )
                })
                .collect();
            out.insert("environment".into(), Node::map(m, Span::NONE));
        }
        if !out.contains_key("networks") && !out.contains_key("network_mode") {
            let mut m = Map::new();
            put(&mut m, "default", Node::null(Span::NONE));
            out.insert("networks".into(), Node::map(m, Span::NONE));
        }
        if !out.contains_key("image") && !out.contains_key("build") {
            self.err_help(
                svc.span,
                format!("service `{name}` has neither an image nor a build context"),
                "add `image: NAME` or `build: ./dir`",
            );
        }
        let m: Map = out
            .into_iter()
            .map(|(k, v)| {
                let key_span = map.get(&k).map(|e| e.key_span).unwrap_or(Span::NONE);
                (k, Entry { key_span, value: v })
            })
            .collect();
        Node::map(m, svc.span)
    }

    fn build(&mut self, service: &str, v: &Node) -> Node {
        let mut m: BTreeMap<String, Node> = BTreeMap::new();
        match &v.kind {
            Kind::Str(s) => {
                m.insert("context".into(), Node::string(s.clone(), v.span));
            }
            Kind::Map(map) => {
                for (k, e) in map {
                    let val = match k.as_str() {
                        "args" => self.dict(&e.value, true),
                        "labels" | "additional_contexts" => self.dict(&e.value, false),
                        _ => sorted(&e.value),
                    };
                    m.insert(k.clone(), val);
                }
            }
            _ => {
                self.err(
                    v.span,
                    format!("service `{service}`: `build` must be a path or a mapping"),
                );
            }
        }
        // Compose's default context is the project directory, absolute like every other path.
        m.entry("context".into()).or_insert_with(|| {
            Node::string(self.project_dir.to_string_lossy().into_owned(), v.span)
        });
        let is_remote = m
            .get("context")
            .and_then(Node::as_str)
            .map(crate::paths::is_remote)
            .unwrap_or(false);
        if !is_remote && !m.contains_key("dockerfile_inline") {
            m.entry("dockerfile".into())
                .or_insert_with(|| Node::string("Dockerfile", Span::NONE));
        }
        sorted_map(m, v.span)
    }

    fn command(&mut self, service: &str, key: &str, v: &Node) -> Option<Node> {
        match &v.kind {
            Kind::Null => None,
            Kind::Str(s) => match shell::split(s) {
                Ok(words) => Some(Node::seq(
                    words.into_iter().map(|w| Node::string(w, v.span)).collect(),
                    v.span,
                )),
                Err(e) => {
                    self.err(
                        v.span,
                        format!("service `{service}`: cannot split `{key}`: {e}"),
                    );
                    None
                }
            },
            Kind::Seq(items) => Some(Node::seq(
                items
                    .iter()
                    .map(|i| Node::string(i.scalar_string().unwrap_or_default(), i.span))
                    .collect(),
                v.span,
            )),
            _ => Some(v.clone()),
        }
    }

    /// A list (`KEY=VALUE`) or mapping turned into a sorted mapping of strings. With
    /// `from_env`, a bare `KEY` takes its value from the environment, as build args do.
    fn dict(&mut self, v: &Node, from_env: bool) -> Node {
        let mut out: BTreeMap<String, Node> = BTreeMap::new();
        match &v.kind {
            Kind::Seq(items) => {
                for i in items {
                    let Some(s) = i.scalar_string() else { continue };
                    if from_env {
                        self.check_name(&s, i.span);
                    }
                    match s.split_once('=') {
                        Some((k, val)) => {
                            out.insert(k.to_string(), Node::string(val, i.span));
                        }
                        None => {
                            let val = if from_env {
                                self.env.get(&s).cloned()
                            } else {
                                Some(String::new())
                            };
                            out.insert(
                                s.clone(),
                                val.map(|x| Node::string(x, i.span))
                                    .unwrap_or_else(|| Node::null(i.span)),
                            );
                        }
                    }
                }
            }
            Kind::Map(m) => {
                for (k, e) in m {
                    let val = match e.value.scalar_string() {
                        Some(s) => Node::string(s, e.value.span),
                        None if from_env => self
                            .env
                            .get(k)
                            .map(|x| Node::string(x.clone(), e.value.span))
                            .unwrap_or_else(|| Node::null(e.value.span)),
                        None => Node::string("", e.value.span),
                    };
                    out.insert(k.clone(), val);
                }
            }
            _ => {}
        }
        sorted_map(out, v.span)
    }

    /// A list-form `KEY=VALUE` entry whose key ends in white space (`DEBUG = true`) is an error,
    /// as in compose-go, rather than the variable `"DEBUG "`.
    fn check_name(&mut self, entry: &str, span: Span) {
        let key = entry.split_once('=').map(|(k, _)| k).unwrap_or(entry);
        if key.ends_with(char::is_whitespace) {
            self.err_help(
                span,
                format!("the variable name `{key}` ends in a space"),
                format!(
                    "write `{}={}` without spaces around `=`",
                    key.trim_end(),
                    entry
                        .split_once('=')
                        .map(|(_, v)| v.trim_start())
                        .unwrap_or("")
                ),
            );
        }
    }

    /// The labels of `label_file` files, in order, each read as a `.env` file whose `${VAR}`
    /// refer to labels read before it (compose-go's rule); a missing file is an error.
    fn label_files(&mut self, files: &[(String, Span)]) -> BTreeMap<String, Node> {
        let mut labels: BTreeMap<String, Node> = BTreeMap::new();
        for (path, span) in files {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    self.err_help(
                        *span,
                        format!("cannot read label_file {path}: {e}"),
                        "create the file or fix the path",
                    );
                    continue;
                }
            };
            let known: IndexMap<String, String> = labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect();
            let lookup = |k: &str| known.get(k).cloned();
            match dotenv::parse(&text, &lookup) {
                Ok(entries) => {
                    for (k, v) in entries {
                        labels.insert(k, Node::string(v.unwrap_or_default(), *span));
                    }
                }
                Err(e) => self.err(*span, format!("{path}:{}:{}: {}", e.line, e.col, e.message)),
            }
        }
        labels
    }

    fn env_files(&mut self, v: &Node) -> Vec<(String, Option<String>, Span)> {
        let entries: Vec<(String, bool, Span)> = match &v.kind {
            Kind::Str(s) => vec![(s.clone(), true, v.span)],
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| match &i.kind {
                    Kind::Str(s) => Some((s.clone(), true, i.span)),
                    Kind::Map(_) => Some((
                        i.get("path").and_then(Node::as_str)?.to_string(),
                        i.get("required").and_then(Node::as_bool).unwrap_or(true),
                        i.span,
                    )),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        };
        let mut out = Vec::new();
        for (path, required, span) in entries {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    self.err_help(
                        span,
                        format!("cannot read env_file {path}: {e}"),
                        "create the file, fix the path, or mark it `required: false`",
                    );
                    continue;
                }
            };
            let env = self.env;
            let lookup = |k: &str| env.get(k).cloned();
            match dotenv::parse(&text, &lookup) {
                Ok(entries) => {
                    for (k, val) in entries {
                        out.push((k, val, span));
                    }
                }
                Err(e) => self.err(span, format!("{path}:{}:{}: {}", e.line, e.col, e.message)),
            }
        }
        out
    }

    fn environment(
        &mut self,
        from_files: Vec<(String, Option<String>, Span)>,
        environment: Option<&Node>,
    ) -> BTreeMap<String, (Option<String>, Span)> {
        let mut out = BTreeMap::new();
        for (k, v, span) in from_files {
            let v = v.or_else(|| self.env.get(&k).cloned());
            if let Some(v) = v {
                out.insert(k, (Some(v), span));
            }
        }
        let Some(env) = environment else { return out };
        match &env.kind {
            Kind::Seq(items) => {
                for i in items {
                    let Some(s) = i.scalar_string() else { continue };
                    self.check_name(&s, i.span);
                    match s.split_once('=') {
                        Some((k, v)) => {
                            out.insert(k.to_string(), (Some(v.to_string()), i.span));
                        }
                        None => {
                            out.insert(s.clone(), (self.env.get(&s).cloned(), i.span));
                        }
                    }
                }
            }
            Kind::Map(m) => {
                for (k, e) in m {
                    let v = match e.value.scalar_string() {
                        Some(s) => Some(s),
                        None => self.env.get(k).cloned(),
                    };
                    out.insert(k.clone(), (v, e.value.span));
                }
            }
            _ => {}
        }
        out
    }

    fn ports(&mut self, service: &str, v: &Node) -> Node {
        let mut out = Vec::new();
        for item in v.as_seq().unwrap_or_default() {
            match &item.kind {
                Kind::Map(_) => {
                    let target = item.get("target").and_then(|t| t.scalar_string());
                    let target = match target.as_deref().map(str::parse::<u16>) {
                        Some(Ok(t)) if t > 0 => t,
                        _ => {
                            self.err_help(
                                item.get("target").map(|t| t.span).unwrap_or(item.span),
                                format!("service `{service}`: port `target` must be a port number from 1 to 65535"),
                                "write `target: 80`",
                            );
                            continue;
                        }
                    };
                    let published = item.get("published").and_then(Node::scalar_string);
                    if let Some(p) = &published {
                        if let Err(e) = ports::parse_short(&format!("{p}:{target}")) {
                            self.err(
                                item.get("published").map(|n| n.span).unwrap_or(item.span),
                                format!("service `{service}`: {e}"),
                            );
                            continue;
                        }
                    }
                    let mut m = Map::new();
                    let get = |k: &str| item.get(k).and_then(Node::scalar_string);
                    if let Some(name) = get("name") {
                        put(&mut m, "name", Node::string(name, item.span));
                    }
                    put(
                        &mut m,
                        "mode",
                        Node::string(get("mode").unwrap_or_else(|| "ingress".into()), item.span),
                    );
                    if let Some(ip) = get("host_ip") {
                        if ports::parse_host_ip(&ip).as_deref() != Some(ip.as_str()) {
                            self.err_help(
                                item.get("host_ip").map(|n| n.span).unwrap_or(item.span),
                                format!("service `{service}`: invalid host IP {ip:?} in a port"),
                                "write an IP address like 127.0.0.1 or ::1 (without brackets)",
                            );
                            continue;
                        }
                        put(&mut m, "host_ip", Node::string(ip, item.span));
                    }
                    put(
                        &mut m,
                        "target",
                        Node::new(Kind::Int(target as i64), item.span),
                    );
                    if let Some(p) = published {
                        put(&mut m, "published", Node::string(p, item.span));
                    }
                    put(
                        &mut m,
                        "protocol",
                        Node::string(get("protocol").unwrap_or_else(|| "tcp".into()), item.span),
                    );
                    if let Some(a) = get("app_protocol") {
                        put(&mut m, "app_protocol", Node::string(a, item.span));
                    }
                    out.push(Node::map(m, item.span));
                }
                _ => {
                    let Some(s) = item.scalar_string() else {
                        self.err(item.span, format!("service `{service}`: a port must be a string like \"8080:80\" or a mapping"));
                        continue;
                    };
                    match ports::parse_short(&s) {
                        Ok(specs) => {
                            for p in specs {
                                let mut m = Map::new();
                                put(&mut m, "mode", Node::string("ingress", item.span));
                                if let Some(ip) = p.host_ip {
                                    put(&mut m, "host_ip", Node::string(ip, item.span));
                                }
                                put(
                                    &mut m,
                                    "target",
                                    Node::new(Kind::Int(p.target as i64), item.span),
                                );
                                if let Some(pb) = p.published {
                                    put(&mut m, "published", Node::string(pb, item.span));
                                }
                                put(&mut m, "protocol", Node::string(p.protocol, item.span));
                                out.push(Node::map(m, item.span));
                            }
                        }
                        Err(e) => self.err_help(
                            item.span,
                            format!("service `{service}`: {e}"),
                            "write ports as \"8080:80\", \"127.0.0.1:8080:80\" or \"80\"",
                        ),
                    }
                }
            }
        }
        Node::seq(out, v.span)
    }

    fn volumes(&mut self, ctx: &ServiceCtx<'_>, v: &Node) -> Node {
        let service = ctx.name;
        let mut out = Vec::new();
        for item in v.as_seq().unwrap_or_default() {
            let mut m = Map::new();
            match &item.kind {
                Kind::Str(s) => match mounts::parse_short(s) {
                    Ok(spec) => {
                        put(&mut m, "type", Node::string(spec.kind, item.span));
                        if let Some(src) = &spec.source {
                            put(&mut m, "source", Node::string(src.clone(), item.span));
                        }
                        put(
                            &mut m,
                            "target",
                            Node::string(spec.target.clone(), item.span),
                        );
                        if spec.read_only {
                            put(&mut m, "read_only", Node::new(Kind::Bool(true), item.span));
                        }
                        if spec.kind == "bind" {
                            let mut b = Map::new();
                            put(
                                &mut b,
                                "create_host_path",
                                Node::new(Kind::Bool(true), item.span),
                            );
                            if let Some(p) = spec.propagation {
                                put(&mut b, "propagation", Node::string(p, item.span));
                            }
                            if let Some(z) = spec.selinux {
                                put(&mut b, "selinux", Node::string(z, item.span));
                            }
                            put(&mut m, "bind", Node::map(b, item.span));
                        } else {
                            let mut vm = Map::new();
                            if spec.nocopy {
                                put(&mut vm, "nocopy", Node::new(Kind::Bool(true), item.span));
                            }
                            put(&mut m, "volume", Node::map(vm, item.span));
                        }
                        if let Some(c) = spec.consistency {
                            put(&mut m, "consistency", Node::string(c, item.span));
                        }
                    }
                    Err(e) => {
                        self.err(item.span, format!("service `{service}`: {e}"));
                        continue;
                    }
                },
                Kind::Map(src) => {
                    let order = [
                        "type",
                        "source",
                        "target",
                        "read_only",
                        "bind",
                        "volume",
                        "tmpfs",
                        "image",
                        "consistency",
                    ];
                    let mut keys: Vec<&String> = src.keys().collect();
                    keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(order.len()));
                    for k in keys {
                        put(&mut m, k, sorted(&src[k.as_str()].value));
                    }
                    if item.get("target").and_then(Node::as_str).is_none() {
                        self.err_help(item.span, format!("service `{service}`: a volume needs a `target` (the path in the container)"), "add `target: /path`");
                        continue;
                    }
                }
                _ => {
                    self.err(item.span, format!("service `{service}`: a volume must be a string like \"data:/path\" or a mapping"));
                    continue;
                }
            }
            let node = Node::map(m, item.span);
            let is_volume = node.get("type").and_then(Node::as_str) == Some("volume");
            if let (true, Some(src)) = (is_volume, node.get("source").and_then(Node::as_str)) {
                if !ctx.volumes.contains_key(src) {
                    self.err_help(
                        item.span,
                        format!("service `{service}` uses volume `{src}`, which is not declared in the top-level `volumes` section"),
                        format!("add `volumes: {{ {src}: {{}} }}` at the top level, or use a path like ./{src} for a bind mount"),
                    );
                }
            }
            out.push(node);
        }
        Node::seq(out, v.span)
    }

    fn depends_on(
        &mut self,
        ctx: &ServiceCtx<'_>,
        v: &Node,
        deps: &mut BTreeMap<String, Vec<(String, Span)>>,
    ) -> Node {
        let service = ctx.name;
        let mut out: BTreeMap<String, (Node, Span)> = BTreeMap::new();
        let mut add = |name: String, opts: Option<&Node>, span: Span| {
            let mut m = Map::new();
            let cond = opts
                .and_then(|o| o.get("condition"))
                .and_then(Node::scalar_string)
                .unwrap_or_else(|| "service_started".into());
            put(&mut m, "condition", Node::string(cond, span));
            if let Some(r) = opts.and_then(|o| o.get("restart")) {
                put(&mut m, "restart", truthy(r, span));
            }
            let required = opts
                .and_then(|o| o.get("required"))
                .map(|r| truthy(r, span));
            put(
                &mut m,
                "required",
                required.unwrap_or_else(|| Node::new(Kind::Bool(true), span)),
            );
            out.insert(name, (Node::map(m, span), span));
        };
        match &v.kind {
            Kind::Seq(items) => {
                for i in items {
                    if let Some(s) = i.scalar_string() {
                        add(s, None, i.span);
                    }
                }
            }
            Kind::Map(m) => {
                for (k, e) in m {
                    add(k.clone(), Some(&e.value), e.key_span);
                }
            }
            _ => {}
        }
        let mut result = Map::new();
        for (dep, (node, span)) in out {
            let required = node.get("required").and_then(Node::as_bool).unwrap_or(true);
            if ctx.enabled.contains_key(dep.as_str()) {
                deps.entry(service.to_string())
                    .or_default()
                    .push((dep.clone(), span));
            } else if let Some(profiles) = ctx.disabled.get(dep.as_str()) {
                if required {
                    self.err_help(
                        span,
                        format!(
                            "service `{service}` depends on `{dep}`, which is disabled because none of its profiles ({}) is active",
                            profiles.join(", ")
                        ),
                        format!("activate one with --profile {} or COMPOSE_PROFILES, or mark the dependency `required: false`", profiles[0]),
                    );
                }
                continue;
            } else if !ctx.defined.contains_key(&dep) {
                self.err_help(
                    span,
                    format!("service `{service}` depends on `{dep}`, which is not defined"),
                    suggest(&dep, ctx.defined.keys()),
                );
                continue;
            }
            result.insert(
                dep,
                Entry {
                    key_span: span,
                    value: node,
                },
            );
        }
        Node::map(result, v.span)
    }

    fn service_networks(&mut self, ctx: &ServiceCtx<'_>, v: &Node) -> Node {
        let mut out: BTreeMap<String, (Node, Span)> = BTreeMap::new();
        match &v.kind {
            Kind::Seq(items) => {
                for i in items {
                    if let Some(s) = i.scalar_string() {
                        out.insert(s, (Node::null(i.span), i.span));
                    }
                }
            }
            Kind::Map(m) => {
                for (k, e) in m {
                    out.insert(k.clone(), (sorted(&e.value), e.key_span));
                }
            }
            _ => {}
        }
        let mut result = Map::new();
        for (name, (node, span)) in out {
            if name != "default" && !ctx.networks.contains_key(&name) {
                self.err_help(
                    span,
                    format!("service `{}` uses network `{name}`, which is not declared in the top-level `networks` section", ctx.name),
                    format!("add `networks: {{ {name}: {{}} }}` at the top level"),
                );
            }
            result.insert(
                name,
                Entry {
                    key_span: span,
                    value: node,
                },
            );
        }
        Node::map(result, v.span)
    }

    fn healthcheck(&mut self, v: &Node) -> Node {
        let Some(m) = v.as_map() else {
            return sorted(v);
        };
        let mut out: BTreeMap<String, Node> = BTreeMap::new();
        for (k, e) in m {
            let val = match k.as_str() {
                "test" => match &e.value.kind {
                    Kind::Str(s) => Node::seq(
                        vec![
                            Node::string("CMD-SHELL", e.value.span),
                            Node::string(s.clone(), e.value.span),
                        ],
                        e.value.span,
                    ),
                    _ => sorted(&e.value),
                },
                "interval" | "timeout" | "start_period" | "start_interval" => {
                    self.duration_node(&e.value)
                }
                "retries" => int_node(&e.value),
                _ => sorted(&e.value),
            };
            out.insert(k.clone(), val);
        }
        sorted_map(out, v.span)
    }

    fn deploy(&mut self, v: &Node) -> Node {
        let mut node = sorted(v);
        if let Some(r) = node.get_mut("replicas") {
            *r = int_node(r);
        }
        for section in ["update_config", "rollback_config"] {
            if let Some(sec) = node.get_mut(section) {
                for key in ["delay", "monitor"] {
                    if let Some(d) = sec.get_mut(key) {
                        *d = self.duration_node(d);
                    }
                }
                for key in ["parallelism"] {
                    if let Some(d) = sec.get_mut(key) {
                        *d = int_node(d);
                    }
                }
            }
        }
        if let Some(rp) = node.get_mut("restart_policy") {
            for key in ["delay", "window"] {
                if let Some(d) = rp.get_mut(key) {
                    *d = self.duration_node(d);
                }
            }
        }
        node
    }

    fn duration_node(&mut self, v: &Node) -> Node {
        let Some(s) = v.scalar_string() else {
            return v.clone();
        };
        // A bare number is read as seconds by Compose for these keys.
        let parsed = duration::parse(&s)
            .or_else(|| s.parse::<u64>().ok().map(std::time::Duration::from_secs));
        match parsed {
            Some(d) => Node::string(duration::format_go(d), v.span),
            None => {
                self.err_help(
                    v.span,
                    format!("invalid duration `{s}`"),
                    "use a duration like 10s, 1m30s or 500ms",
                );
                v.clone()
            }
        }
    }

    fn extra_hosts(&mut self, v: &Node) -> Node {
        let mut out = Vec::new();
        match &v.kind {
            Kind::Seq(items) => {
                for i in items {
                    if let Some(s) = i.scalar_string() {
                        // `host:ip` and `host=ip` are both accepted; Compose prints `host=ip`.
                        let entry = match s.split_once('=') {
                            Some(_) => s.clone(),
                            None => match s.split_once(':') {
                                Some((h, ip)) => format!("{h}={ip}"),
                                None => s.clone(),
                            },
                        };
                        out.push(Node::string(entry, i.span));
                    }
                }
            }
            Kind::Map(m) => {
                for (k, e) in m {
                    match &e.value.kind {
                        Kind::Seq(ips) => {
                            for ip in ips {
                                out.push(Node::string(
                                    format!("{k}={}", ip.scalar_string().unwrap_or_default()),
                                    ip.span,
                                ));
                            }
                        }
                        _ => out.push(Node::string(
                            format!("{k}={}", e.value.scalar_string().unwrap_or_default()),
                            e.value.span,
                        )),
                    }
                }
            }
            _ => {}
        }
        Node::seq(out, v.span)
    }

    fn file_refs(&mut self, service: &str, section: &str, declared: &Map, v: &Node) -> Node {
        let mut out = Vec::new();
        for i in v.as_seq().unwrap_or_default() {
            let (source, node) = match &i.kind {
                Kind::Str(s) => {
                    let mut m = Map::new();
                    put(&mut m, "source", Node::string(s.clone(), i.span));
                    (s.clone(), Node::map(m, i.span))
                }
                Kind::Map(_) => {
                    let mut node = sorted(i);
                    if let Some(mode) = i.get("mode") {
                        match self.file_mode(mode) {
                            Some(m) => {
                                if let Some(n) = node.get_mut("mode") {
                                    *n = Node::string(format!("0{m:o}"), mode.span);
                                }
                            }
                            None => {
                                self.err_help(
                                    mode.span,
                                    format!(
                                        "service `{service}`: invalid file mode `{}`",
                                        mode.scalar_string().unwrap_or_default()
                                    ),
                                    "write an octal mode like 0440",
                                );
                                continue;
                            }
                        }
                    }
                    (
                        i.get("source")
                            .and_then(Node::scalar_string)
                            .unwrap_or_default(),
                        node,
                    )
                }
                _ => continue,
            };
            // Compose mounts a secret without a target at /run/secrets/<source>.
            let mut node = node;
            if section == "secrets" && node.get("target").is_none() {
                if let Some(m) = node.as_map_mut() {
                    let span = i.span;
                    m.insert(
                        "target".into(),
                        Entry {
                            key_span: span,
                            value: Node::string(format!("/run/secrets/{source}"), span),
                        },
                    );
                }
            }
            let node = sorted(&node);
            if !declared.contains_key(&source) {
                self.err_help(
                    i.span,
                    format!("service `{service}` uses {} `{source}`, which is not declared in the top-level `{section}` section", &section[..section.len() - 1]),
                    format!("add `{section}: {{ {source}: {{ file: ./{source}.txt }} }}` at the top level"),
                );
            }
            out.push(node);
        }
        Node::seq(out, v.span)
    }

    /// A file mode as compose-go reads it: a string is octal (`"0440"`, `"440"`), an integer is
    /// what YAML made of it, where go-yaml reads `0440` as octal (YAML 1.1) and `0o440` too.
    /// berth's YAML reader gives `0440` as decimal 440, so the source text decides.
    fn file_mode(&self, n: &Node) -> Option<u32> {
        match &n.kind {
            Kind::Str(s) => u32::from_str_radix(s.strip_prefix("0o").unwrap_or(s), 8).ok(),
            Kind::Int(i) => {
                let written = self
                    .sources
                    .get(n.span.source)
                    .and_then(|f| f.text.get(n.span.start..n.span.end))
                    .unwrap_or("");
                let octal = written.len() > 1
                    && written.starts_with('0')
                    && written.bytes().all(|b| b.is_ascii_digit());
                if octal {
                    u32::from_str_radix(written, 8).ok()
                } else {
                    u32::try_from(*i).ok()
                }
            }
            _ => None,
        }
    }

    /// A top-level network, volume, secret or config with its engine name filled in.
    fn resource(&mut self, project: &str, key: &str, v: &Node) -> Node {
        let mut m: BTreeMap<String, Node> = BTreeMap::new();
        if let Some(map) = v.as_map() {
            for (k, e) in map {
                let val = match k.as_str() {
                    "labels" | "driver_opts" => self.dict(&e.value, false),
                    "external" => match &e.value.kind {
                        // The legacy `external: {name: x}` form names the resource.
                        Kind::Map(_) => {
                            if let Some(n) = e.value.get("name").and_then(Node::scalar_string) {
                                m.entry("name".into())
                                    .or_insert(Node::string(n, e.value.span));
                            }
                            Node::new(Kind::Bool(true), e.value.span)
                        }
                        _ => truthy(&e.value, e.value.span),
                    },
                    _ => sorted(&e.value),
                };
                m.insert(k.clone(), val);
            }
        }
        let external = m.get("external").and_then(Node::as_bool).unwrap_or(false);
        if !m.contains_key("name") {
            let name = if external {
                key.to_string()
            } else {
                format!("{project}_{key}")
            };
            m.insert("name".into(), Node::string(name, v.span));
        }
        sorted_map(m, v.span)
    }

    fn check_cycles(&mut self, deps: &BTreeMap<String, Vec<(String, Span)>>) {
        // Depth-first search with colours; the first cycle found is reported with its path.
        #[derive(Clone, Copy, PartialEq)]
        enum C {
            White,
            Grey,
            Black,
        }
        let mut colour: BTreeMap<&str, C> = deps.keys().map(|k| (k.as_str(), C::White)).collect();
        fn visit<'a>(
            node: &'a str,
            deps: &'a BTreeMap<String, Vec<(String, Span)>>,
            colour: &mut BTreeMap<&'a str, C>,
            path: &mut Vec<(&'a str, Span)>,
        ) -> Option<(Vec<String>, Span)> {
            colour.insert(node, C::Grey);
            for (dep, span) in deps.get(node).map(Vec::as_slice).unwrap_or_default() {
                match colour.get(dep.as_str()).copied().unwrap_or(C::White) {
                    C::Grey => {
                        let start = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[start..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(node.to_string());
                        cycle.push(dep.clone());
                        return Some((cycle, *span));
                    }
                    C::White => {
                        path.push((node, *span));
                        if let Some(c) = visit(dep, deps, colour, path) {
                            return Some(c);
                        }
                        path.pop();
                    }
                    C::Black => {}
                }
            }
            colour.insert(node, C::Black);
            None
        }
        let keys: Vec<&str> = deps.keys().map(String::as_str).collect();
        for k in keys {
            if colour.get(k) == Some(&C::White) {
                let mut path = Vec::new();
                if let Some((cycle, span)) = visit(k, deps, &mut colour, &mut path) {
                    let mut cycle = cycle;
                    cycle.dedup();
                    self.err_help(
                        span,
                        format!("dependency cycle between services: {}", cycle.join(" -> ")),
                        "remove one of these `depends_on` entries",
                    );
                    return;
                }
            }
        }
    }
}

fn truthy(v: &Node, span: Span) -> Node {
    let b = match &v.kind {
        Kind::Bool(b) => *b,
        Kind::Str(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on"),
        Kind::Int(i) => *i != 0,
        _ => false,
    };
    Node::new(Kind::Bool(b), span)
}

fn int_node(v: &Node) -> Node {
    match &v.kind {
        Kind::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => Node::new(Kind::Int(i), v.span),
            Err(_) => v.clone(),
        },
        Kind::Float(f) if f.fract() == 0.0 => Node::new(Kind::Int(*f as i64), v.span),
        _ => v.clone(),
    }
}

/// "did you mean `x`?" for the closest name, or the list of names when none is close.
pub fn suggest<'a>(wrong: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&String> = known.collect();
    match crate::suggest::nearest(wrong, known.iter().map(|k| k.as_str())) {
        Some(k) => format!("did you mean `{k}`?"),
        None if known.is_empty() => "no services are defined".into(),
        None => format!(
            "defined services: {}",
            known
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
