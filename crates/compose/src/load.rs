//! The loader pipeline, top to bottom: files ▸ environment ▸ parse ▸ interpolate ▸ validate ▸
//! resolve paths ▸ `include` ▸ merge ▸ `extends` ▸ name ▸ profiles ▸ references ▸ normalize.

use crate::discovery;
use crate::dotenv;
use crate::error::{LoadError, Problem};
use crate::interpolate;
use crate::merge;
use crate::model::Project;
use crate::node::{Entry, Kind, Map, Node};
use crate::normalize;
use crate::options::LoadOptions;
use crate::paths::{self, Resolver};
use crate::schema;
use crate::source::{SourceMap, Span};
use crate::yaml;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A loaded project: the typed model, its canonical form, and the files it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    /// The merged, interpolated, normalized project as `docker compose config` prints it.
    pub canonical: serde_json::Value,
    /// The project directory (paths in the project are resolved against it).
    pub project_dir: PathBuf,
    /// The compose files, in merge order.
    pub files: Vec<PathBuf>,
    /// Every profile named by any service, active or not, sorted.
    pub all_profiles: Vec<String>,
    /// Non-fatal findings, e.g. variables that were not set.
    pub warnings: Vec<String>,
    pub sources: SourceMap,
}

/// `include` may nest; a chain deeper than this is surely a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Loads the project described by `opts`.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut cx = Cx {
        sources: SourceMap::new(),
        warnings: Vec::new(),
        file_cache: HashMap::new(),
        dotenv_read: None,
    };
    let working_dir = absolute(&opts.working_dir, opts.project_directory.as_deref());

    // Files: -f, else COMPOSE_FILE (from the environment or the working directory's .env), else
    // discovery. The project directory is the first file's, unless given.
    let (early_env, dotenv_read) = early_environment(opts, &working_dir);
    cx.dotenv_read = dotenv_read;
    let mut files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| working_dir.join(f)).collect()
    } else if let Some(cf) = early_env.get("COMPOSE_FILE").filter(|v| !v.is_empty()) {
        let sep = early_env
            .get("COMPOSE_PATH_SEPARATOR")
            .map(String::as_str)
            .unwrap_or(":");
        cf.split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| working_dir.join(f))
            .collect()
    } else {
        discovery::discover(&working_dir)?
    };
    files = files.iter().map(|f| paths::clean(f)).collect();
    let project_dir = match &opts.project_directory {
        Some(d) => paths::clean(&opts.working_dir.join(d)),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| working_dir.clone()),
    };
    if opts.dev {
        if let Some(dev) = discovery::dev_file(&project_dir) {
            if !files.contains(&dev) {
                files.push(dev);
            }
        }
    }

    let environment = cx.environment(
        &opts.environment,
        &opts.env_files,
        &working_dir,
        &project_dir,
    )?;

    // Compose sets COMPOSE_PROJECT_NAME to the project's name for interpolation, so the name is
    // chosen before the files are interpolated: -p, COMPOSE_PROJECT_NAME, the (interpolated)
    // `name:` of the last file that has one, then the directory. The final name below applies
    // the same rules to the loaded model and reports an invalid name where it was written.
    let mut interpolation_env = environment.clone();
    if let Some(name) = early_name(opts, &environment, &files, &project_dir) {
        interpolation_env.insert("COMPOSE_PROJECT_NAME".into(), name);
    }

    let model = cx.load_model(&files, &project_dir, &interpolation_env, 0)?;

    // Name: -p, then COMPOSE_PROJECT_NAME, then `name:`, then the directory.
    let name = project_name(&cx.sources, opts, &environment, &model, &project_dir)?;
    let environment = interpolation_env;

    // Profiles: --profile (or COMPOSE_PROFILES when none is given), plus `dev` with --dev.
    let mut active: Vec<String> = if !opts.profiles.is_empty() {
        opts.profiles.clone()
    } else {
        environment
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    if opts.dev && !active.iter().any(|p| p == "dev") {
        active.push("dev".into());
    }

    let normalized = normalize::normalize(normalize::Input {
        sources: &cx.sources,
        model,
        name: &name,
        project_dir: &project_dir,
        environment: &environment,
        active_profiles: &active,
    })?;

    let mut warnings = cx.warnings;
    warnings.extend(normalized.warnings);
    warnings.dedup();
    Ok(Loaded {
        project: normalized.project,
        canonical: normalized.canonical,
        project_dir,
        files,
        all_profiles: normalized.all_profiles,
        warnings,
        sources: cx.sources,
    })
}

fn absolute(working_dir: &Path, project_directory: Option<&Path>) -> PathBuf {
    let base = if working_dir.is_absolute() {
        working_dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(working_dir))
            .unwrap_or_else(|_| working_dir.to_path_buf())
    };
    paths::clean(&match project_directory {
        Some(p) => base.join(p),
        None => base,
    })
}

/// The variables that decide which files to read: the process environment over the working
/// directory's `.env` (Compose reads `COMPOSE_FILE` from there too). Errors in `.env` are
/// reported later, when it is read for interpolation.
///
/// Also returns the `.env` text it read, so that the interpolation stage does not read the same
/// file again when the working directory is the project directory (the usual case).
fn early_environment(
    opts: &LoadOptions,
    working_dir: &Path,
) -> (IndexMap<String, String>, Option<(PathBuf, String)>) {
    let mut env = IndexMap::new();
    let mut read = None;
    let dotenv_path = working_dir.join(".env");
    if opts.env_files.is_empty() {
        if let Ok(text) = std::fs::read_to_string(&dotenv_path) {
            let lookup = |k: &str| opts.environment.get(k).cloned();
            if let Ok(entries) = dotenv::parse(&text, &lookup) {
                for (k, v) in entries {
                    if let Some(v) = v {
                        env.insert(k, v);
                    }
                }
            }
            read = Some((dotenv_path, text));
        }
    }
    for (k, v) in &opts.environment {
        env.insert(k.clone(), v.clone());
    }
    (env, read)
}

/// The project name as far as it can be known before interpolation (see `load`). Files that do
/// not parse are skipped here; reading them again reports the error.
fn early_name(
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
    files: &[PathBuf],
    project_dir: &Path,
) -> Option<String> {
    if let Some(p) = &opts.project_name {
        return Some(p.clone());
    }
    if let Some(p) = env.get("COMPOSE_PROJECT_NAME").filter(|p| !p.is_empty()) {
        return Some(p.clone());
    }
    let mut from_files = None;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let Ok(docs) = yaml::parse(&text, crate::source::SourceId::NONE) else {
            continue;
        };
        for doc in docs {
            if let Some(raw) = doc.get("name").and_then(Node::scalar_string) {
                let lookup = |k: &str| env.get(k).cloned();
                if let Ok(name) = interpolate::interpolate_str(&raw, &lookup, &mut Vec::new()) {
                    if !name.is_empty() {
                        from_files = Some(name);
                    }
                }
            }
        }
    }
    if from_files.is_some() {
        return from_files;
    }
    let dir = project_dir.file_name()?.to_string_lossy().into_owned();
    Some(discovery::normalize_project_name(&dir)).filter(|n| !n.is_empty())
}

fn project_name(
    sources: &SourceMap,
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
    model: &Node,
    project_dir: &Path,
) -> Result<String, LoadError> {
    let explicit = |name: &str, what: &str, span: Option<Span>| -> Result<String, LoadError> {
        if discovery::is_valid_project_name(name) {
            Ok(name.to_string())
        } else {
            let msg = format!(
                "invalid project name {name:?} from {what}: use only lowercase letters, digits, `-` and `_`, starting with a letter or digit"
            );
            Err(match span {
                Some(s) => Problem::at(sources, s, msg),
                None => Problem::plain(msg),
            }
            .into())
        }
    };
    if let Some(p) = &opts.project_name {
        return explicit(p, "-p", None);
    }
    if let Some(p) = env.get("COMPOSE_PROJECT_NAME").filter(|p| !p.is_empty()) {
        return explicit(p, "COMPOSE_PROJECT_NAME", None);
    }
    if let Some(n) = model.get("name") {
        if let Some(s) = n.scalar_string().filter(|s| !s.is_empty()) {
            return explicit(&s, "`name:`", Some(n.span));
        }
    }
    let dir = project_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = discovery::normalize_project_name(&dir);
    if name.is_empty() {
        return Err(Problem::plain(format!(
            "cannot derive a project name from the directory {}",
            project_dir.display()
        ))
        .with_help("set `name:` in the compose file or pass -p NAME")
        .into());
    }
    Ok(name)
}

struct Cx {
    sources: SourceMap,
    warnings: Vec<String>,
    /// Files read for `extends.file`, so that a file extended by many services is read once.
    file_cache: HashMap<PathBuf, Node>,
    /// The working directory's `.env`, already read to find `COMPOSE_FILE`.
    dotenv_read: Option<(PathBuf, String)>,
}

impl Cx {
    /// The interpolation environment: `--env-file` files (or the project's `.env`), with the
    /// process environment taking precedence, as Compose does.
    fn environment(
        &mut self,
        process: &IndexMap<String, String>,
        env_files: &[PathBuf],
        working_dir: &Path,
        project_dir: &Path,
    ) -> Result<IndexMap<String, String>, LoadError> {
        let mut env = IndexMap::new();
        let files: Vec<(PathBuf, bool)> = if env_files.is_empty() {
            vec![(project_dir.join(".env"), false)]
        } else {
            env_files
                .iter()
                .map(|f| (paths::clean(&working_dir.join(f)), true))
                .collect()
        };
        for (path, required) in files {
            let preread = match self.dotenv_read.take() {
                Some((p, text)) if p == path => Some(text),
                other => {
                    self.dotenv_read = other;
                    None
                }
            };
            let text = match preread
                .map(Ok)
                .unwrap_or_else(|| std::fs::read_to_string(&path))
            {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    return Err(Problem::plain(format!(
                        "cannot read env file {}: {e}",
                        path.display()
                    ))
                    .with_help("check the path given to --env-file")
                    .into())
                }
            };
            let id = self.sources.add(path.clone(), text.as_str());
            let lookup = |k: &str| process.get(k).or_else(|| env.get(k)).cloned();
            let entries = dotenv::parse(&text, &lookup).map_err(|e| {
                let span = line_span(&text, id, e.line, e.col);
                LoadError::one(Problem::at(&self.sources, span, e.message.clone()))
            })?;
            for (k, v) in entries {
                if let Some(v) = v {
                    env.insert(k, v);
                }
            }
        }
        for (k, v) in process {
            env.insert(k.clone(), v.clone());
        }
        Ok(env)
    }

    /// Reads, interpolates, validates and resolves one file; its `include`s are loaded and their
    /// resources added.
    fn load_model(
        &mut self,
        files: &[PathBuf],
        project_dir: &Path,
        env: &IndexMap<String, String>,
        depth: usize,
    ) -> Result<Node, LoadError> {
        let mut merged: Option<Node> = None;
        let mut problems = Vec::new();
        for file in files {
            let tree = match self.read_file(file, project_dir, env, depth) {
                Ok(t) => t,
                Err(e) => {
                    problems.extend(e.problems);
                    continue;
                }
            };
            merged = Some(match merged {
                None => merge::strip_tags(tree),
                Some(base) => merge::merge_files(base, tree),
            });
        }
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        let mut model = merged.unwrap_or_else(|| Node::map(Map::new(), Span::NONE));
        self.extends(&mut model, env)?;
        Ok(model)
    }

    fn read_file(
        &mut self,
        file: &Path,
        base_dir: &Path,
        env: &IndexMap<String, String>,
        depth: usize,
    ) -> Result<Node, LoadError> {
        let mut tree = self.parse_file(file, env)?;
        Resolver {
            base: base_dir,
            home: env.get("HOME").map(String::as_str),
        }
        .file(&mut tree);
        self.include(&mut tree, file, env, depth)?;
        Ok(tree)
    }

    /// Parse, interpolate and validate the structure of one file.
    fn parse_file(
        &mut self,
        file: &Path,
        env: &IndexMap<String, String>,
    ) -> Result<Node, LoadError> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Problem::plain(format!("cannot read compose file {}: {e}", file.display()))
                .with_help("check the path given with -f or COMPOSE_FILE")
        })?;
        let id = self.sources.add(file.to_path_buf(), text.as_str());
        let docs = yaml::parse(&text, id).map_err(|e| {
            Problem::at(
                &self.sources,
                e.span,
                format!("invalid YAML: {}", e.message),
            )
        })?;
        let mut docs = docs.into_iter();
        let mut tree = match docs.next() {
            None => {
                return Err(Problem::plain(format!(
                    "{}: the compose file is empty",
                    file.display()
                ))
                .with_help("add a `services:` section")
                .into())
            }
            Some(first) => first,
        };
        // Several YAML documents in one file are merged in order, as Compose does.
        for next in docs {
            tree = merge::merge_files(tree, next);
        }
        if !matches!(tree.kind, Kind::Map(_)) {
            return Err(Problem::at(
                &self.sources,
                tree.span,
                format!(
                    "the top level of a compose file must be a mapping, not {}",
                    tree.type_name()
                ),
            )
            .with_help("start the file with `services:`")
            .into());
        }
        let lookup = |k: &str| env.get(k).cloned();
        let mut warnings = Vec::new();
        interpolate::interpolate_node(&mut tree, &lookup, &mut warnings)
            .map_err(|(e, span)| Problem::at(&self.sources, span, e.to_string()))?;
        for w in warnings {
            self.warnings.push(format!(
                "the {w:?} variable is not set, defaulting to a blank string ({})",
                file.display()
            ));
        }
        schema::coerce(&mut tree);
        let errors = schema::validate(&tree);
        if !errors.is_empty() {
            return Err(LoadError {
                problems: errors
                    .into_iter()
                    .map(|e| Problem::at(&self.sources, e.span, e.message))
                    .collect(),
            });
        }
        Ok(tree)
    }

    /// `include:` (14-include.md): each entry is a whole project of its own, loaded with its own
    /// directory and `.env`, whose resources are added to this file. A resource defined on both
    /// sides is an error, as in Compose.
    fn include(
        &mut self,
        tree: &mut Node,
        file: &Path,
        env: &IndexMap<String, String>,
        depth: usize,
    ) -> Result<(), LoadError> {
        let Some(map) = tree.as_map_mut() else {
            return Ok(());
        };
        let Some(entry) = map.shift_remove("include") else {
            return Ok(());
        };
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let items = match entry.value.kind {
            Kind::Seq(items) => items,
            _ => vec![entry.value],
        };
        for item in items {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(Problem::at(
                    &self.sources,
                    item.span,
                    "include nests too deeply; an included file probably includes itself",
                )
                .into());
            }
            let resolver = Resolver {
                base: &dir,
                home: env.get("HOME").map(String::as_str),
            };
            let (paths, project_directory, env_files) = match &item.kind {
                Kind::Str(s) => (vec![PathBuf::from(resolver.path(s))], None, vec![]),
                Kind::Map(_) => {
                    let paths = string_list(item.get("path"))
                        .iter()
                        .map(|p| PathBuf::from(resolver.path(p)))
                        .collect::<Vec<_>>();
                    let pd = item
                        .get("project_directory")
                        .and_then(Node::as_str)
                        .map(|p| PathBuf::from(resolver.path(p)));
                    let envs = string_list(item.get("env_file"))
                        .iter()
                        .map(|p| PathBuf::from(resolver.path(p)))
                        .collect::<Vec<_>>();
                    (paths, pd, envs)
                }
                _ => (vec![], None, vec![]),
            };
            if paths.is_empty() {
                return Err(
                    Problem::at(&self.sources, item.span, "include entry names no file")
                        .with_help("write `include: [path/to/compose.yaml]`")
                        .into(),
                );
            }
            for p in &paths {
                if !p.is_file() {
                    return Err(Problem::at(
                        &self.sources,
                        item.span,
                        format!("included file {} does not exist", p.display()),
                    )
                    .into());
                }
            }
            let sub_dir = project_directory.unwrap_or_else(|| {
                paths[0]
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.clone())
            });
            let process: IndexMap<String, String> = env.clone();
            let sub_env = self.environment(&process, &env_files, &sub_dir, &sub_dir)?;
            let sub = self.load_model(&paths, &sub_dir, &sub_env, depth + 1)?;
            self.add_included(tree, sub, item.span)?;
        }
        Ok(())
    }

    fn add_included(&mut self, tree: &mut Node, sub: Node, at: Span) -> Result<(), LoadError> {
        let Kind::Map(sub) = sub.kind else {
            return Ok(());
        };
        let Some(map) = tree.as_map_mut() else {
            return Ok(());
        };
        for (section, entry) in sub {
            if !matches!(
                section.as_str(),
                "services" | "networks" | "volumes" | "secrets" | "configs"
            ) {
                continue;
            }
            let Kind::Map(items) = entry.value.kind else {
                continue;
            };
            let target = map.entry(section.clone()).or_insert_with(|| Entry {
                key_span: at,
                value: Node::map(Map::new(), at),
            });
            if target.value.is_null() {
                target.value = Node::map(Map::new(), target.value.span);
            }
            let Some(target) = target.value.as_map_mut() else {
                continue;
            };
            for (name, item) in items {
                if let Some(existing) = target.get(&name) {
                    return Err(Problem::at(
                        &self.sources,
                        existing.key_span,
                        format!("{section}.{name} is defined here and also by an included project"),
                    )
                    .with_help("rename one of them, or remove it from one side")
                    .into());
                }
                target.insert(name, item);
            }
        }
        Ok(())
    }

    /// Resolves `extends` on every service of the merged model.
    fn extends(
        &mut self,
        model: &mut Node,
        env: &IndexMap<String, String>,
    ) -> Result<(), LoadError> {
        let names: Vec<String> = model
            .get("services")
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| e.value.get("extends").is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for name in names {
            let mut stack = Vec::new();
            let resolved = self.resolve_extends(model, None, &name, env, &mut stack)?;
            if let Some(svc) = model.get_mut("services").and_then(|s| s.get_mut(&name)) {
                *svc = resolved;
            }
        }
        Ok(())
    }

    /// The service `name` of the main model (`file` None) or of an extended file, cloned.
    fn lookup_service(
        &mut self,
        model: &Node,
        file: Option<&Path>,
        name: &str,
        env: &IndexMap<String, String>,
    ) -> Result<Option<Node>, LoadError> {
        let tree = match file {
            None => model,
            Some(f) => {
                self.load_extended_file(f, env)?;
                &self.file_cache[f]
            }
        };
        Ok(tree.get("services").and_then(|s| s.get(name)).cloned())
    }

    /// The service `name` of `file` (None: the main model) with its `extends` chain applied.
    fn resolve_extends(
        &mut self,
        model: &Node,
        file: Option<&Path>,
        name: &str,
        env: &IndexMap<String, String>,
        stack: &mut Vec<(Option<PathBuf>, String)>,
    ) -> Result<Node, LoadError> {
        let key = (file.map(Path::to_path_buf), name.to_string());
        let Some(svc) = self.lookup_service(model, file, name, env)? else {
            // Callers check existence before recursing, with a located message.
            return Err(Problem::plain(format!("service {name:?} not found")).into());
        };
        let Some(ext) = svc.get("extends").cloned() else {
            return Ok(svc);
        };
        if stack.contains(&key) {
            let chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).collect();
            return Err(Problem::at(
                &self.sources,
                ext.span,
                format!("circular extends: {} -> {name}", chain.join(" -> ")),
            )
            .with_help("remove one of the `extends` in this chain")
            .into());
        }
        stack.push(key);
        let (base_name, base_file) = match &ext.kind {
            Kind::Str(s) => (s.clone(), file.map(Path::to_path_buf)),
            Kind::Map(_) => (
                ext.get("service")
                    .and_then(Node::as_str)
                    .unwrap_or_default()
                    .to_string(),
                ext.get("file")
                    .and_then(Node::as_str)
                    .map(PathBuf::from)
                    .or_else(|| file.map(Path::to_path_buf)),
            ),
            _ => (String::new(), None),
        };
        if let Some(f) = base_file.as_deref().filter(|f| !f.is_file()) {
            return Err(Problem::at(
                &self.sources,
                ext.span,
                format!("the file {} named by `extends` does not exist", f.display()),
            )
            .with_help("fix `extends.file`; it is relative to the file that names it")
            .into());
        }
        if self
            .lookup_service(model, base_file.as_deref(), &base_name, env)?
            .is_none()
        {
            let where_ = base_file
                .as_ref()
                .map(|f| format!(" in {}", f.display()))
                .unwrap_or_default();
            return Err(Problem::at(
                &self.sources,
                ext.span,
                format!("service {name:?} extends {base_name:?}, which is not defined{where_}"),
            )
            .with_help("check the service name under `extends`")
            .into());
        }
        let base = self.resolve_extends(model, base_file.as_deref(), &base_name, env, stack)?;
        stack.pop();
        let mut over = svc;
        if let Some(m) = over.as_map_mut() {
            m.shift_remove("extends");
        }
        Ok(merge::merge_service(base, over))
    }

    /// Reads a file named by `extends.file` once; its paths resolve against its own directory.
    fn load_extended_file(
        &mut self,
        file: &Path,
        env: &IndexMap<String, String>,
    ) -> Result<(), LoadError> {
        if self.file_cache.contains_key(file) {
            return Ok(());
        }
        if !file.is_file() {
            return Err(Problem::plain(format!(
                "the file {} named by `extends` does not exist",
                file.display()
            ))
            .with_help("fix `extends.file`; it is relative to the file that names it")
            .into());
        }
        let mut tree = self.parse_file(file, env)?;
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        Resolver {
            base: &dir,
            home: env.get("HOME").map(String::as_str),
        }
        .file(&mut tree);
        let tree = merge::strip_tags(tree);
        self.file_cache.insert(file.to_path_buf(), tree);
        Ok(())
    }
}

fn string_list(n: Option<&Node>) -> Vec<String> {
    match n.map(|n| &n.kind) {
        Some(Kind::Str(s)) => vec![s.clone()],
        Some(Kind::Seq(items)) => items.iter().filter_map(Node::scalar_string).collect(),
        _ => vec![],
    }
}

/// A span for a line/column reported by a parser that only knows positions.
pub(crate) fn line_span(text: &str, source: crate::source::SourceId, line: u32, col: u32) -> Span {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            offset += (col.saturating_sub(1) as usize).min(l.len());
            break;
        }
        offset += l.len();
    }
    Span {
        source,
        start: offset,
        end: offset,
        line,
        col,
    }
}
