//! YAML text to [`Node`] trees, with spans, anchors, `<<` merge keys and the `!reset` /
//! `!override` tags.
//!
//! We drive the event parser that serde-saphyr is built on (re-exported as
//! `serde_saphyr::granit_parser`) instead of deserializing into structs: Compose defines
//! interpolation and merging on the untyped tree, and we need the position of every node,
//! including keys, to report errors after those stages. Scalars are resolved with the YAML 1.2
//! core schema, which is what Compose's go-yaml v3 does for untyped values.

use crate::node::{Entry, Kind, Map, Node, Tag};
use crate::source::{SourceId, Span};
use serde_saphyr::granit_parser::{self as gp, Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// Why a file is not valid YAML (or not a YAML shape Compose accepts).
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub span: Span,
}

/// Deepest nesting accepted. Real Compose files nest less than 15 levels; the limit keeps a hostile
/// file from exhausting the stack.
const MAX_DEPTH: usize = 128;
/// Upper bound on nodes produced by alias expansion, against "billion laughs" files.
const MAX_NODES: usize = 5_000_000;

/// Parses every document of `text`. An empty file gives no document.
pub fn parse(text: &str, source: SourceId) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        source,
        text,
        anchors: HashMap::new(),
        nodes: 0,
        line_starts: None,
        char_starts: None,
    };
    b.documents()
}

struct Builder<'a> {
    parser: Parser<'a, gp::StrInput<'a>>,
    source: SourceId,
    text: &'a str,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    line_starts: Option<Vec<usize>>,
    char_starts: Option<Vec<usize>>,
}

impl<'a> Builder<'a> {
    fn span(&mut self, s: &gp::Span) -> Span {
        let start = s
            .start
            .byte_offset()
            .unwrap_or_else(|| self.char_to_byte(s.start.index()));
        let end = s
            .end
            .byte_offset()
            .unwrap_or_else(|| self.char_to_byte(s.end.index()));
        Span {
            source: self.source,
            start,
            end: end.max(start),
            line: s.start.line() as u32,
            col: s.start.col() as u32 + 1,
        }
    }

    /// The parser reports positions in characters when it has no byte offsets; map them with a
    /// table built once per file (ASCII files, the common case, need none).
    fn char_to_byte(&mut self, chars: usize) -> usize {
        let table = self
            .char_starts
            .get_or_insert_with(|| self.text.char_indices().map(|(i, _)| i).collect());
        table.get(chars).copied().unwrap_or(self.text.len())
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => {
                let sp = self.span(&span);
                Ok((ev, sp))
            }
            Some(Err(e)) => {
                let m = e.marker();
                let start = m
                    .byte_offset()
                    .unwrap_or_else(|| self.char_to_byte(m.index()));
                Err(YamlError {
                    message: e.info().to_string(),
                    span: Span {
                        source: self.source,
                        start,
                        end: start,
                        line: m.line() as u32,
                        col: m.col() as u32 + 1,
                    },
                })
            }
            None => Err(YamlError {
                message: "unexpected end of file".into(),
                span: self.eof_span(),
            }),
        }
    }

    fn eof_span(&mut self) -> Span {
        let starts = self.line_starts.get_or_insert_with(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let line = starts.len() as u32;
        let last = *starts.last().unwrap_or(&0);
        Span {
            source: self.source,
            start: self.text.len(),
            end: self.text.len(),
            line,
            col: (self.text.len() - last) as u32 + 1,
        }
    }

    fn documents(&mut self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd => {}
                #[allow(unreachable_patterns)]
                Event::Comment(..) => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(..) => {
                    self.anchors.clear();
                    let (ev, span) = self.next_node_event()?;
                    if matches!(ev, Event::DocumentEnd) {
                        docs.push(Node::null(span));
                        continue;
                    }
                    docs.push(self.node(ev, span, 0)?);
                }
                _ => {
                    return Err(YamlError {
                        message: "unexpected YAML event outside a document".into(),
                        span,
                    })
                }
            }
        }
    }

    /// Next event that is part of the data (comments and anchor metadata are skipped).
    fn next_node_event(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        loop {
            let (ev, span) = self.next()?;
            match ev {
                #[allow(unreachable_patterns)]
                Event::Comment(..) | Event::Anchor(..) => continue,
                _ => return Ok((ev, span)),
            }
        }
    }

    fn count(&mut self, span: Span) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                message: "document expands to too many nodes (recursive or exponential aliases?)"
                    .into(),
                span,
            });
        }
        Ok(())
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                span,
            });
        }
        self.count(span)?;
        match ev {
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let n = n.clone();
                    self.nodes += count_nodes(&n);
                    if self.nodes > MAX_NODES {
                        return Err(YamlError {
                            message: "document expands to too many nodes through aliases".into(),
                            span,
                        });
                    }
                    Ok(n)
                }
                None => Err(YamlError {
                    message: "alias refers to an unknown anchor".into(),
                    span,
                }),
            },
            Event::UnresolvedAlias(name) => Err(YamlError {
                message: format!("alias *{name} refers to an anchor that is not defined before it"),
                span,
            }),
            Event::Scalar(value, style, anchor, tag) => {
                let tag_name = tag
                    .as_ref()
                    .map(|t| (t.handle().to_string(), t.suffix().to_string()));
                let (kind, btag) = resolve_scalar(&value, style, tag_name.as_ref());
                let mut node = Node::new(kind, span);
                node.tag = btag;
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::SequenceStart(_, anchor, tag) => {
                let btag = tag.as_ref().and_then(|t| berth_tag(t.handle(), t.suffix()));
                let mut items = Vec::new();
                let end;
                loop {
                    let (ev, sp) = self.next_node_event()?;
                    if matches!(ev, Event::SequenceEnd) {
                        end = sp.end;
                        break;
                    }
                    items.push(self.node(ev, sp, depth + 1)?);
                }
                let mut node = Node::seq(items, Span { end, ..span });
                node.tag = btag;
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::MappingStart(_, anchor, tag) => {
                let btag = tag.as_ref().and_then(|t| berth_tag(t.handle(), t.suffix()));
                let mut explicit = Map::new();
                let mut merged: Vec<Node> = Vec::new();
                let end;
                loop {
                    let (ev, ksp) = self.next_node_event()?;
                    if matches!(ev, Event::MappingEnd) {
                        end = ksp.end;
                        break;
                    }
                    let key = self.node(ev, ksp, depth + 1)?;
                    let (vev, vsp) = self.next_node_event()?;
                    let value = self.node(vev, vsp, depth + 1)?;
                    let key_text =
                        match &key.kind {
                            Kind::Str(s) => s.clone(),
                            Kind::Null => "null".into(),
                            Kind::Seq(_) | Kind::Map(_) => return Err(YamlError {
                                message:
                                    "mapping keys must be plain strings, not sequences or mappings"
                                        .into(),
                                span: key.span,
                            }),
                            _ => key.scalar_string().unwrap_or_default(),
                        };
                    let is_merge = key_text == "<<" && matches!(key.kind, Kind::Str(_));
                    if is_merge && !is_quoted_key(self.text, &key.span) {
                        match value.kind {
                            Kind::Map(_) => merged.push(value),
                            Kind::Seq(items) => {
                                for item in items {
                                    if !matches!(item.kind, Kind::Map(_)) {
                                        return Err(YamlError {
                                            message: "a `<<` merge key takes a mapping or a sequence of mappings".into(),
                                            span: item.span,
                                        });
                                    }
                                    merged.push(item);
                                }
                            }
                            _ => {
                                return Err(YamlError {
                                    message:
                                        "a `<<` merge key takes a mapping or a sequence of mappings"
                                            .into(),
                                    span: value.span,
                                })
                            }
                        }
                        continue;
                    }
                    if explicit.contains_key(&key_text) {
                        return Err(YamlError {
                            message: format!("key `{key_text}` is defined twice in this mapping; remove one of them"),
                            span: key.span,
                        });
                    }
                    explicit.insert(
                        key_text,
                        Entry {
                            key_span: key.span,
                            value,
                        },
                    );
                }
                // Explicit keys win over merged ones; among merged mappings the first one listed
                // wins, as in YAML's merge-key specification and go-yaml.
                let map = if merged.is_empty() {
                    explicit
                } else {
                    let mut out = Map::new();
                    for m in merged {
                        if let Kind::Map(m) = m.kind {
                            for (k, e) in m {
                                if !out.contains_key(&k) && !explicit.contains_key(&k) {
                                    out.insert(k, e);
                                }
                            }
                        }
                    }
                    let mut result = explicit;
                    for (k, e) in out {
                        result.insert(k, e);
                    }
                    result
                };
                let mut node = Node::map(map, Span { end, ..span });
                node.tag = btag;
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            _ => Err(YamlError {
                message: "unexpected YAML structure".into(),
                span,
            }),
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(m) => 1 + m.values().map(|e| 1 + count_nodes(&e.value)).sum::<usize>(),
        _ => 1,
    }
}

fn is_quoted_key(text: &str, span: &Span) -> bool {
    matches!(text.as_bytes().get(span.start), Some(b'"') | Some(b'\''))
}

fn berth_tag(handle: &str, suffix: &str) -> Option<Tag> {
    match (handle, suffix) {
        ("!", "reset") => Some(Tag::Reset),
        ("!", "override") => Some(Tag::Override),
        _ => None,
    }
}

fn resolve_scalar(
    value: &str,
    style: ScalarStyle,
    tag: Option<&(String, String)>,
) -> (Kind, Option<Tag>) {
    if let Some((handle, suffix)) = tag {
        if let Some(t) = berth_tag(handle, suffix) {
            let kind = if style == ScalarStyle::Plain {
                resolve_plain(value)
            } else {
                Kind::Str(value.to_string())
            };
            return (kind, Some(t));
        }
        if handle == "tag:yaml.org,2002:" && suffix == "str" {
            return (Kind::Str(value.to_string()), None);
        }
    }
    if style == ScalarStyle::Plain {
        (resolve_plain(value), None)
    } else {
        (Kind::Str(value.to_string()), None)
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(v: &str) -> Kind {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    let b = v.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let (sign, rest) = match b.first() {
        Some(b'-') | Some(b'+') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits(rest) {
        if let Ok(i) = v.parse::<i64>() {
            return Kind::Int(i);
        }
        if let Ok(f) = v.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    if !sign {
        if let Some(h) = v.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(h, 16) {
                return Kind::Int(i);
            }
        }
        if let Some(o) = v.strip_prefix("0o") {
            if let Ok(i) = i64::from_str_radix(o, 8) {
                return Kind::Int(i);
            }
        }
    }
    if is_float(rest) {
        if let Ok(f) = v.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    Kind::Str(v.to_string())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-') | Some(b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Node {
        parse(s, SourceId(0)).unwrap().remove(0)
    }

    #[test]
    fn scalars_resolve_with_the_core_schema() {
        let n = one("a: 1\nb: '1'\nc: true\nd: yes\ne: ~\nf: 1.5\ng: 8080:80\nh: 0x1F\n");
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(1));
        assert_eq!(n.get("b").unwrap().kind, Kind::Str("1".into()));
        assert_eq!(n.get("c").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("d").unwrap().kind, Kind::Str("yes".into()));
        assert_eq!(n.get("e").unwrap().kind, Kind::Null);
        assert_eq!(n.get("f").unwrap().kind, Kind::Float(1.5));
        assert_eq!(n.get("g").unwrap().kind, Kind::Str("8080:80".into()));
        assert_eq!(n.get("h").unwrap().kind, Kind::Int(31));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = one("x: &base\n  a: 1\n  b: 2\ny:\n  <<: *base\n  b: 3\nz: *base\n");
        let y = n.get("y").unwrap();
        assert_eq!(y.get("a").unwrap().kind, Kind::Int(1));
        assert_eq!(y.get("b").unwrap().kind, Kind::Int(3));
        assert_eq!(n.get("z").unwrap().get("b").unwrap().kind, Kind::Int(2));
    }

    #[test]
    fn merge_key_sequence_first_wins() {
        let n = one("a: &a {k: 1}\nb: &b {k: 2, j: 2}\nc:\n  <<: [*a, *b]\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("k").unwrap().kind, Kind::Int(1));
        assert_eq!(c.get("j").unwrap().kind, Kind::Int(2));
    }

    #[test]
    fn tags_are_recorded() {
        let n = one("a: !reset []\nb: !override\n  - x\nc: !!str 5\n");
        assert_eq!(n.get("a").unwrap().tag, Some(Tag::Reset));
        assert_eq!(n.get("b").unwrap().tag, Some(Tag::Override));
        assert_eq!(n.get("c").unwrap().kind, Kind::Str("5".into()));
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("services:\n  web:\n    image: x\n");
        let web = n
            .get("services")
            .unwrap()
            .as_map()
            .unwrap()
            .get("web")
            .unwrap();
        assert_eq!((web.key_span.line, web.key_span.col), (2, 3));
        let image = web.value.get("image").unwrap();
        assert_eq!((image.span.line, image.span.col), (3, 12));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\na: 2\n", SourceId(0)).unwrap_err();
        assert_eq!(e.span.line, 2);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n", SourceId(0)).unwrap_err();
        assert!(e.span.line >= 1, "{e:?}");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        assert!(parse(&s, SourceId(0)).is_err());
    }
}
