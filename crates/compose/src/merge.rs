//! Merging several Compose files (compose-spec 13-merge.md), also used by `extends`.
//!
//! [`merge_files`] merges a later `-f` file into the result of the earlier ones, and
//! [`merge_service`] merges one service definition into another (for `extends`). Both work on the
//! raw [`Node`] tree, after interpolation and before validation, the way compose-go's `override`
//! package does, so short syntaxes are still present and are only understood as far as needed to
//! merge them.
//!
//! # Rules
//!
//! * Mappings merge key by key, recursively; keys only in `over` are appended (in `over`'s order)
//!   after `base`'s keys, which keep their position. Scalars from `over` replace. Sequences append.
//! * A null in `over` (without tag) leaves the base value in place, as in compose-go (use
//!   `!reset` to clear a value). When the two sides have different shapes (a mapping against a
//!   sequence, …) `over` wins: compose-go reports "cannot override" here, schema validation
//!   reports it for us later.
//! * `!reset` on a mapping value removes the key from the result; on a sequence item it drops the
//!   item. `!override` replaces the base value wholesale. With no base value, a `!reset` key is
//!   absent and an `!override` value is taken as given. No tag survives in the result, and
//!   `!reset` entries of `base` itself are removed too (the first file is handled by
//!   [`strip_tags`]).
//! * Under `services.*`:
//!   * `command`, `entrypoint`, `healthcheck.test`: `over` replaces (a null `over` gives null).
//!   * `ports` (key {host_ip, published, target, protocol}), `volumes` (key target), `secrets`
//!     (key target, `/run/secrets/<name>` by default), `configs` (key target, `/<name>` by
//!     default): the concatenation is made unique by key, a later entry replacing an earlier one in
//!     the earlier one's position (compose-go's `EnforceUnicity`). Short syntax is parsed only to
//!     compute the key; the original nodes are kept. Entries whose key cannot be computed are
//!     always kept.
//!   * `environment`, `labels`, `annotations`, `sysctls`, `build.args`, `build.labels`,
//!     `build.additional_contexts`, `deploy.labels`, `volumes.*.volume.labels`, `extra_hosts`,
//!     `build.extra_hosts` (and top-level `networks.*.labels`, `volumes.*.labels`,
//!     `secrets.*.labels`, `configs.*.labels`): list-or-mapping, merged by key with `over` winning.
//!     **Decision:** the result is always a mapping (compose-go produces a `KEY=VALUE` list; both
//!     are valid and normalize to the same model). `KEY=VALUE` items become `KEY: "VALUE"` (a
//!     string), `KEY` alone becomes `KEY: null`; for extra hosts `host:ip` is accepted as well as
//!     `host=ip`.
//!   * `depends_on`: both sides become a mapping `service → {condition, required, …}` (a list
//!     item gets `condition: service_started, required: true`; a mapping entry gets those
//!     defaults where missing, like compose-go's per-file canonical form), then merge by service.
//!   * `networks`: list or mapping → mapping `name → null | {…}`, merged by name.
//!   * `build`: a string is `{context: …}`; then mapping merge.
//!   * `dns`, `dns_search`, `dns_opt`, `env_file`, `label_file`, `tmpfs`, `cap_add`, `cap_drop`,
//!     `security_opt`, `devices`, `group_add`, `expose`, `profiles`, `external_links`, `links`,
//!     `volumes_from`, `build.tags`, `networks.*.aliases`, `networks.*.link_local_ips`:
//!     string-or-list → list, appended without duplicates (first occurrence kept; an `env_file`
//!     entry with the same `path` but other settings replaces the earlier one in place).
//!   * `logging`: when both sides name a different `driver`, `over` replaces the whole mapping;
//!     otherwise the mappings merge (options key by key).
//!   * `ulimits.*`: `over` replaces, except that two `{soft, hard}` mappings merge key by key
//!     (what current compose-go does).
//! * Top level: `services`, `networks`, `volumes`, `secrets`, `configs`, `x-*` merge as mappings
//!   by name, `include` appends, `name` and `version` are replaced. `networks.*.ipam.config`
//!   entries with the same `subnet` are merged, others appended.
//! * Spans: a value keeps the span of the node that provided it (`over`'s when replaced, `base`'s
//!   when kept); merged mappings and sequences keep `base`'s span. A key keeps `base`'s key span
//!   unless its value came from `over`. Values synthesized by the merge (the `depends_on`
//!   defaults) have [`Span::NONE`]; mappings built from short syntax use the span of the node they
//!   were built from.

use crate::node::{Entry, Kind, Map, Node, Tag};
use crate::source::Span;

/// Merges the top-level tree `over` (a later -f file) into `base`. Both are top-level mappings
/// as parsed and interpolated (short syntax still present). Honours `!reset` and `!override`
/// tags on any node of `over`, and removes every tag from the result.
pub fn merge_files(base: Node, over: Node) -> Node {
    let base = strip_tags(base);
    let span = base.span;
    let mut path = Vec::new();
    merge_value(&mut path, base, over).unwrap_or_else(|| Node::map(Map::new(), span))
}

/// Merges one service definition `over` into `base` with the same rules as under
/// `services.*` (used by `extends`, where the extending service is `over`).
pub fn merge_service(base: Node, over: Node) -> Node {
    let base = strip_tags(base);
    let span = base.span;
    let mut path = vec!["services".to_string(), "*".to_string()];
    merge_value(&mut path, base, over).unwrap_or_else(|| Node::map(Map::new(), span))
}

/// Removes `!reset` mapping entries and sequence items and clears every tag, for a file that is
/// not merged with anything (or a value `over` adds where `base` has none). A root tagged
/// `!reset` becomes null.
pub fn strip_tags(node: Node) -> Node {
    if node.tag == Some(Tag::Reset) {
        return Node::null(node.span);
    }
    strip_inner(node)
}

fn strip_inner(mut node: Node) -> Node {
    node.tag = None;
    node.kind = match node.kind {
        Kind::Seq(items) => Kind::Seq(
            items
                .into_iter()
                .filter(|n| n.tag != Some(Tag::Reset))
                .map(strip_inner)
                .collect(),
        ),
        Kind::Map(map) => Kind::Map(
            map.into_iter()
                .filter(|(_, e)| e.value.tag != Some(Tag::Reset))
                .map(|(k, e)| {
                    (
                        k,
                        Entry {
                            key_span: e.key_span,
                            value: strip_inner(e.value),
                        },
                    )
                })
                .collect(),
        ),
        other => other,
    };
    node
}

/// How the values found at one path are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Generic,
    /// `over` replaces, even when null.
    Replace,
    /// list-or-mapping of `KEY=VALUE`; `hosts` also accepts `host:ip`.
    KeyValue {
        hosts: bool,
    },
    DependsOn,
    /// list of names or mapping of name → options.
    NameMapping,
    Build,
    Logging,
    Ulimit,
    /// sequence (or a single scalar) made unique by the key `Index` computes.
    Unique(Index),
    IpamConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Port,
    Volume,
    Mount(&'static str),
    /// the value itself (the `path` of an `env_file` mapping).
    Value,
}

const RULES: &[(&str, Rule)] = &[
    ("services.*.command", Rule::Replace),
    ("services.*.entrypoint", Rule::Replace),
    ("services.*.healthcheck.test", Rule::Replace),
    ("services.*.ports", Rule::Unique(Index::Port)),
    ("services.*.volumes", Rule::Unique(Index::Volume)),
    (
        "services.*.secrets",
        Rule::Unique(Index::Mount("/run/secrets")),
    ),
    ("services.*.configs", Rule::Unique(Index::Mount(""))),
    ("services.*.environment", Rule::KeyValue { hosts: false }),
    ("services.*.labels", Rule::KeyValue { hosts: false }),
    ("services.*.annotations", Rule::KeyValue { hosts: false }),
    ("services.*.sysctls", Rule::KeyValue { hosts: false }),
    ("services.*.build.args", Rule::KeyValue { hosts: false }),
    ("services.*.build.labels", Rule::KeyValue { hosts: false }),
    (
        "services.*.build.additional_contexts",
        Rule::KeyValue { hosts: false },
    ),
    ("services.*.deploy.labels", Rule::KeyValue { hosts: false }),
    (
        "services.*.volumes.*.volume.labels",
        Rule::KeyValue { hosts: false },
    ),
    ("services.*.extra_hosts", Rule::KeyValue { hosts: true }),
    (
        "services.*.build.extra_hosts",
        Rule::KeyValue { hosts: true },
    ),
    ("networks.*.labels", Rule::KeyValue { hosts: false }),
    ("volumes.*.labels", Rule::KeyValue { hosts: false }),
    ("secrets.*.labels", Rule::KeyValue { hosts: false }),
    ("configs.*.labels", Rule::KeyValue { hosts: false }),
    ("services.*.depends_on", Rule::DependsOn),
    ("services.*.networks", Rule::NameMapping),
    ("services.*.build", Rule::Build),
    ("services.*.logging", Rule::Logging),
    ("services.*.ulimits.*", Rule::Ulimit),
    ("services.*.dns", Rule::Unique(Index::Value)),
    ("services.*.dns_search", Rule::Unique(Index::Value)),
    ("services.*.dns_opt", Rule::Unique(Index::Value)),
    ("services.*.env_file", Rule::Unique(Index::Value)),
    ("services.*.label_file", Rule::Unique(Index::Value)),
    ("services.*.tmpfs", Rule::Unique(Index::Value)),
    ("services.*.cap_add", Rule::Unique(Index::Value)),
    ("services.*.cap_drop", Rule::Unique(Index::Value)),
    ("services.*.security_opt", Rule::Unique(Index::Value)),
    ("services.*.devices", Rule::Unique(Index::Value)),
    ("services.*.group_add", Rule::Unique(Index::Value)),
    ("services.*.expose", Rule::Unique(Index::Value)),
    ("services.*.profiles", Rule::Unique(Index::Value)),
    ("services.*.external_links", Rule::Unique(Index::Value)),
    ("services.*.links", Rule::Unique(Index::Value)),
    ("services.*.volumes_from", Rule::Unique(Index::Value)),
    ("services.*.build.tags", Rule::Unique(Index::Value)),
    ("services.*.networks.*.aliases", Rule::Unique(Index::Value)),
    (
        "services.*.networks.*.link_local_ips",
        Rule::Unique(Index::Value),
    ),
    ("networks.*.ipam.config", Rule::IpamConfig),
];

fn rule_for(path: &[String]) -> Rule {
    RULES
        .iter()
        .find(|(pattern, _)| {
            pattern.split('.').count() == path.len()
                && pattern
                    .split('.')
                    .zip(path)
                    .all(|(p, seg)| p == "*" || p == seg)
        })
        .map(|(_, r)| *r)
        .unwrap_or(Rule::Generic)
}

/// Merges `over` into `base` (which carries no tags) at `path`. `None` means the key is removed.
fn merge_value(path: &mut Vec<String>, base: Node, over: Node) -> Option<Node> {
    match over.tag {
        Some(Tag::Reset) => return None,
        Some(Tag::Override) => return Some(strip_inner(over)),
        None => {}
    }
    let merged = match rule_for(path) {
        Rule::Generic => generic(path, base, over),
        Rule::Replace => strip_inner(over),
        Rule::KeyValue { hosts } => key_value(path, base, over, hosts),
        Rule::DependsOn => via_mapping(path, base, over, depends_on_mapping),
        Rule::NameMapping => via_mapping(path, base, over, name_mapping),
        Rule::Build => via_mapping(path, base, over, build_mapping),
        Rule::Logging => logging(path, base, over),
        Rule::Ulimit => ulimit(path, base, over),
        Rule::Unique(index) => unique(path, base, over, index),
        Rule::IpamConfig => ipam_config(path, base, over),
    };
    Some(merged)
}

fn generic(path: &mut Vec<String>, base: Node, over: Node) -> Node {
    if over.is_null() {
        return base;
    }
    match (base.kind, over.kind) {
        (Kind::Map(b), Kind::Map(o)) => merge_maps(path, b, base.span, o),
        (Kind::Seq(mut b), Kind::Seq(o)) => {
            b.extend(
                o.into_iter()
                    .filter(|n| n.tag != Some(Tag::Reset))
                    .map(strip_inner),
            );
            Node::seq(b, base.span)
        }
        (_, kind) => strip_inner(Node {
            kind,
            span: over.span,
            tag: None,
        }),
    }
}

/// Mapping merge: `base` keeps its order and span; each key of `over` is merged into it.
fn merge_maps(path: &mut Vec<String>, mut base: Map, span: Span, over: Map) -> Node {
    for (key, entry) in over {
        let Some(existing) = base.get_mut(&key) else {
            if entry.value.tag != Some(Tag::Reset) {
                base.insert(
                    key,
                    Entry {
                        key_span: entry.key_span,
                        value: strip_inner(entry.value),
                    },
                );
            }
            continue;
        };
        let old = std::mem::replace(&mut existing.value, Node::null(Span::NONE));
        let (old_span, over_span) = (old.span, entry.value.span);
        path.push(key);
        let merged = merge_value(path, old, entry.value);
        let key = path.pop().unwrap_or_default();
        match merged {
            Some(value) => {
                if value.span == over_span && value.span != old_span {
                    existing.key_span = entry.key_span;
                }
                existing.value = value;
            }
            None => {
                base.shift_remove(&key);
            }
        }
    }
    Node::map(base, span)
}

/// Converts both sides with `convert` and merges the mappings; falls back to [`generic`] when a
/// side has a shape the conversion does not know.
fn via_mapping(
    path: &mut Vec<String>,
    base: Node,
    over: Node,
    convert: fn(&Node) -> Option<Map>,
) -> Node {
    match (convert(&base), convert(&over)) {
        (Some(b), Some(o)) => merge_maps(path, b, base.span, o),
        _ => generic(path, base, over),
    }
}

/// `services.*.networks`: `[a, b]` → `{a: null, b: null}`.
fn name_mapping(node: &Node) -> Option<Map> {
    match &node.kind {
        Kind::Null => Some(Map::new()),
        Kind::Map(m) => Some(m.clone()),
        Kind::Seq(items) => {
            let mut map = Map::new();
            for item in items.iter().filter(|n| n.tag != Some(Tag::Reset)) {
                let name = item.scalar_string()?;
                map.insert(
                    name,
                    Entry {
                        key_span: item.span,
                        value: Node::null(item.span),
                    },
                );
            }
            Some(map)
        }
        _ => None,
    }
}

/// `services.*.depends_on`: list or mapping, with `condition` and `required` defaulted.
fn depends_on_mapping(node: &Node) -> Option<Map> {
    let mut map = name_mapping(node)?;
    for entry in map.values_mut() {
        let value = &mut entry.value;
        if value.tag == Some(Tag::Reset) {
            continue;
        }
        if value.is_null() && value.tag.is_none() && matches!(node.kind, Kind::Seq(_)) {
            *value = Node::map(Map::new(), value.span);
        }
        if let Some(m) = value.as_map_mut() {
            if !m.contains_key("condition") {
                m.insert(
                    "condition".into(),
                    Entry {
                        key_span: Span::NONE,
                        value: Node::string("service_started", Span::NONE),
                    },
                );
            }
            if !m.contains_key("required") {
                m.insert(
                    "required".into(),
                    Entry {
                        key_span: Span::NONE,
                        value: Node::new(Kind::Bool(true), Span::NONE),
                    },
                );
            }
        }
    }
    Some(map)
}

/// `services.*.build`: a string is the context.
fn build_mapping(node: &Node) -> Option<Map> {
    match &node.kind {
        Kind::Null => Some(Map::new()),
        Kind::Map(m) => Some(m.clone()),
        Kind::Str(_) => {
            let mut map = Map::new();
            let mut context = node.clone();
            context.tag = None;
            map.insert(
                "context".into(),
                Entry {
                    key_span: node.span,
                    value: context,
                },
            );
            Some(map)
        }
        _ => None,
    }
}

/// A list-or-mapping of `KEY=VALUE` as a mapping. `!reset` items of a list are dropped; tags of
/// mapping values are kept for the caller.
fn key_value_mapping(node: &Node, hosts: bool) -> Option<Map> {
    let items: &[Node] = match &node.kind {
        Kind::Null => return Some(Map::new()),
        Kind::Map(m) => return Some(m.clone()),
        Kind::Seq(items) => items,
        _ => std::slice::from_ref(node),
    };
    let mut map = Map::new();
    for item in items.iter().filter(|n| n.tag != Some(Tag::Reset)) {
        if item.is_null() {
            continue;
        }
        let text = item.scalar_string()?;
        let split = match text.split_once('=') {
            None if hosts => text.split_once(':'),
            other => other,
        };
        let (key, value) = match split {
            Some((k, v)) => (k.to_string(), Node::string(v, item.span)),
            None => (text, Node::null(item.span)),
        };
        // A later item for the same key wins, in the first one's position.
        map.insert(
            key,
            Entry {
                key_span: item.span,
                value,
            },
        );
    }
    Some(map)
}

fn key_value(path: &mut Vec<String>, base: Node, over: Node, hosts: bool) -> Node {
    let (Some(mut merged), Some(o)) = (
        key_value_mapping(&base, hosts),
        key_value_mapping(&over, hosts),
    ) else {
        return generic(path, base, over);
    };
    for (key, entry) in o {
        if entry.value.tag == Some(Tag::Reset) {
            merged.shift_remove(&key);
            continue;
        }
        let entry = Entry {
            key_span: entry.key_span,
            value: strip_inner(entry.value),
        };
        merged.insert(key, entry);
    }
    Node::map(merged, base.span)
}

fn logging(path: &mut Vec<String>, base: Node, over: Node) -> Node {
    if let (Some(b), Some(o)) = (base.as_map(), over.as_map()) {
        let driver = |m: &Map| m.get("driver").and_then(|e| e.value.scalar_string());
        if let (Some(bd), Some(od)) = (driver(b), driver(o)) {
            if bd != od {
                return strip_inner(over);
            }
        }
    }
    generic(path, base, over)
}

fn ulimit(path: &mut Vec<String>, base: Node, over: Node) -> Node {
    if over.is_null() || (base.as_map().is_some() && over.as_map().is_some()) {
        return generic(path, base, over);
    }
    strip_inner(over)
}

/// The items of a string-or-list value; `None` for a mapping.
fn items_of(node: Node) -> Option<(Vec<Node>, Span)> {
    let span = node.span;
    match node.kind {
        Kind::Null => Some((Vec::new(), span)),
        Kind::Seq(items) => Some((items, span)),
        Kind::Map(_) => None,
        _ => Some((vec![node], span)),
    }
}

fn unique(path: &mut Vec<String>, base: Node, over: Node, index: Index) -> Node {
    if matches!(base.kind, Kind::Map(_)) || matches!(over.kind, Kind::Map(_)) {
        return generic(path, base, over);
    }
    let (mut items, span) = items_of(base).unwrap_or_default();
    let (over_items, _) = items_of(over).unwrap_or_default();
    items.extend(
        over_items
            .into_iter()
            .filter(|n| n.tag != Some(Tag::Reset))
            .map(strip_inner),
    );
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut seen: Vec<(String, usize)> = Vec::new();
    for item in items {
        let Some(key) = index_key(&item, index) else {
            out.push(item);
            continue;
        };
        match seen.iter().find(|(k, _)| *k == key) {
            Some(&(_, at)) => {
                // Identical entries keep the first occurrence (and its span), as do scalars of a
                // plain list (`80` and `"80"` in `expose`); a different entry with the same key
                // replaces the earlier one in place.
                let scalar = !matches!(item.kind, Kind::Map(_) | Kind::Seq(_));
                let keep = (index == Index::Value && scalar) || out[at].to_json() == item.to_json();
                if !keep {
                    out[at] = item;
                }
            }
            None => {
                seen.push((key, out.len()));
                out.push(item);
            }
        }
    }
    Node::seq(out, span)
}

fn index_key(item: &Node, index: Index) -> Option<String> {
    match index {
        Index::Port => port_key(item),
        Index::Volume => volume_target(item),
        Index::Mount(dir) => match &item.kind {
            Kind::Map(_) => match item.get("target").and_then(Node::scalar_string) {
                Some(t) => Some(t),
                None => Some(format!("{dir}/{}", item.get("source")?.scalar_string()?)),
            },
            _ => Some(format!("{dir}/{}", item.scalar_string()?)),
        },
        Index::Value => match &item.kind {
            Kind::Map(_) => match item.get("path").and_then(Node::scalar_string) {
                Some(p) => Some(p),
                None => Some(item.to_json().to_string()),
            },
            Kind::Seq(_) => Some(item.to_json().to_string()),
            _ => item.scalar_string(),
        },
    }
}

/// `host_ip:published:target/protocol`, with compose-go's defaults (`0.0.0.0`, `tcp`).
fn port_key(item: &Node) -> Option<String> {
    let (host, published, target, protocol) = match &item.kind {
        Kind::Map(_) => {
            let field = |k: &str| item.get(k).and_then(Node::scalar_string);
            (
                field("host_ip").unwrap_or_default(),
                field("published").unwrap_or_default(),
                field("target")?,
                field("protocol").unwrap_or_default(),
            )
        }
        Kind::Seq(_) | Kind::Null => return None,
        _ => parse_short_port(&item.scalar_string()?),
    };
    let host = if host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        host
    };
    let protocol = if protocol.is_empty() {
        "tcp".to_string()
    } else {
        protocol.to_ascii_lowercase()
    };
    Some(format!("{host}:{published}:{target}/{protocol}"))
}

/// `[[host_ip:]published:]target[/protocol]`, `host_ip` possibly an `[ipv6]`.
fn parse_short_port(spec: &str) -> (String, String, String, String) {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, String::new()),
    };
    let (rest, target) = match rest.rsplit_once(':') {
        Some((r, t)) => (Some(r), t.to_string()),
        None => (None, rest.to_string()),
    };
    let (host, published) = match rest {
        None => (String::new(), String::new()),
        Some(r) => match r.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p.to_string(),
            ),
            None => (String::new(), r.to_string()),
        },
    };
    (host, published, target, protocol)
}

/// The mount target of a volume entry: long syntax `target`, or short `[src:]dst[:mode]` parsed
/// like compose-go's `format.ParseVolume` (a one-letter segment before `:` is a Windows drive,
/// so `d:/d` is the target `d:/d`, as in compose-go).
fn volume_target(item: &Node) -> Option<String> {
    match &item.kind {
        Kind::Map(_) => item.get("target").and_then(Node::scalar_string),
        Kind::Str(spec) => {
            let spec = spec.as_str();
            if spec.len() <= 2 {
                return Some(spec.to_string());
            }
            let mut parts: Vec<String> = Vec::new();
            let mut buf = String::new();
            for c in spec.chars() {
                let drive =
                    c == ':' && buf.chars().count() == 1 && buf.chars().all(char::is_alphabetic);
                if c == ':' && !drive {
                    parts.push(std::mem::take(&mut buf));
                } else {
                    buf.push(c);
                }
            }
            parts.push(buf);
            match parts.len() {
                1 => parts.pop(),
                _ => Some(parts.swap_remove(1)),
            }
        }
        _ => None,
    }
}

/// `networks.*.ipam.config`: entries with the same `subnet` merge, others are appended.
fn ipam_config(path: &mut Vec<String>, base: Node, over: Node) -> Node {
    let (Kind::Seq(_), Kind::Seq(_)) = (&base.kind, &over.kind) else {
        return generic(path, base, over);
    };
    let span = base.span;
    let (Kind::Seq(mut out), Kind::Seq(over_items)) = (base.kind, over.kind) else {
        unreachable!("checked above");
    };
    let subnet = |n: &Node| n.get("subnet").and_then(Node::scalar_string);
    for item in over_items {
        if item.tag == Some(Tag::Reset) {
            continue;
        }
        let found = subnet(&item).and_then(|s| {
            out.iter()
                .position(|b| b.as_map().is_some() && subnet(b).as_deref() == Some(s.as_str()))
        });
        match found {
            Some(at) if item.as_map().is_some() && item.tag.is_none() => {
                let old = std::mem::replace(&mut out[at], Node::null(Span::NONE));
                out[at] = generic(path, old, item);
            }
            Some(at) => out[at] = strip_inner(item),
            None => out.push(strip_inner(item)),
        }
    }
    Node::seq(out, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Node {
        Node::string(text, Span::NONE)
    }

    #[test]
    fn rule_lookup() {
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(rule_for(&p("services.web.command")), Rule::Replace);
        assert_eq!(rule_for(&p("services.web.ulimits.nofile")), Rule::Ulimit);
        assert_eq!(rule_for(&p("services.web.ulimits")), Rule::Generic);
        assert_eq!(
            rule_for(&p("volumes.data.labels")),
            Rule::KeyValue { hosts: false }
        );
        assert_eq!(
            rule_for(&p("services.web.volumes")),
            Rule::Unique(Index::Volume)
        );
        assert_eq!(rule_for(&p("services")), Rule::Generic);
    }

    #[test]
    fn port_keys() {
        let k = |t: &str| port_key(&s(t)).unwrap();
        assert_eq!(k("80"), "0.0.0.0::80/tcp");
        assert_eq!(k("8080:80"), "0.0.0.0:8080:80/tcp");
        assert_eq!(k("127.0.0.1:8080:80/udp"), "127.0.0.1:8080:80/udp");
        assert_eq!(k("0.0.0.0:8080:80/tcp"), "0.0.0.0:8080:80/tcp");
        assert_eq!(k("[::1]:8080:80"), "::1:8080:80/tcp");
        assert_eq!(k("3000-3005"), "0.0.0.0::3000-3005/tcp");
        assert_eq!(k("127.0.0.1::80"), "127.0.0.1::80/tcp");
        assert_eq!(
            port_key(&Node::new(Kind::Int(80), Span::NONE)).unwrap(),
            "0.0.0.0::80/tcp"
        );
    }

    #[test]
    fn volume_targets() {
        let t = |v: &str| volume_target(&s(v)).unwrap();
        assert_eq!(t("/data"), "/data");
        assert_eq!(t("data:/data"), "/data");
        assert_eq!(t("./src:/app:ro"), "/app");
        assert_eq!(t("C:\\data:/data:rw"), "/data");
        assert_eq!(t("data:C:\\data"), "C:\\data");
    }
}
