//! The YAML tree every loader stage works on.
//!
//! Parsing, interpolation, merging, `extends` and `include` all operate on [`Node`]s rather than
//! on typed structs, because Compose defines those stages on the raw YAML tree (merge rules talk
//! about mappings and sequences, interpolation about string scalars). Each node keeps the span it
//! was read from so that the typed model built at the end can still point at the source.

use crate::source::Span;
use indexmap::IndexMap;

/// A YAML tag berth gives meaning to. Other tags are accepted and dropped, as Compose does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    /// `!reset`: the merged value is removed (13-merge.md).
    Reset,
    /// `!override`: the merged value replaces the previous one wholesale (13-merge.md).
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string scalar. `quoted` records whether it was written with quotes (or a block scalar),
    /// which matters for nothing but diagnostics and round-trips.
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A mapping with its insertion order kept, as Compose prints keys in file order where it does not
/// sort them. Keys are strings: Compose files have no other kind of key.
pub type Map = IndexMap<String, Entry>;

/// One `key: value` pair of a mapping, with the key's own span (errors about unknown keys point
/// at the key, errors about values at the value).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key_span: Span,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
    pub tag: Option<Tag>,
}

impl Node {
    pub fn new(kind: Kind, span: Span) -> Self {
        Node {
            kind,
            span,
            tag: None,
        }
    }

    pub fn null(span: Span) -> Self {
        Node::new(Kind::Null, span)
    }

    pub fn string(s: impl Into<String>, span: Span) -> Self {
        Node::new(Kind::Str(s.into()), span)
    }

    pub fn map(map: Map, span: Span) -> Self {
        Node::new(Kind::Map(map), span)
    }

    pub fn seq(items: Vec<Node>, span: Span) -> Self {
        Node::new(Kind::Seq(items), span)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.get(key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?.get_mut(key).map(|e| &mut e.value)
    }

    /// A scalar rendered as the string Compose would see (`8080` and `"8080"` are both `8080`).
    /// `None` for null, sequences and mappings.
    pub fn scalar_string(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(format_float(*f)),
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
        }
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a sequence",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON, dropping spans and tags. Used for output and for comparing values.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(format_float(*f))),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(m) => Value::Object(
                m.iter()
                    .map(|(k, e)| (k.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a node tree from JSON, every span set to `span`.
    pub fn from_json(value: &serde_json::Value, span: Span) -> Node {
        use serde_json::Value;
        let kind = match value {
            Value::Null => Kind::Null,
            Value::Bool(b) => Kind::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Kind::Int(i),
                None => Kind::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Kind::Str(s.clone()),
            Value::Array(a) => Kind::Seq(a.iter().map(|v| Node::from_json(v, span)).collect()),
            Value::Object(o) => Kind::Map(
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Entry {
                                key_span: span,
                                value: Node::from_json(v, span),
                            },
                        )
                    })
                    .collect(),
            ),
        };
        Node::new(kind, span)
    }
}

/// Formats a float the way Go's YAML encoder does for the values Compose files hold
/// (`0.5`, `1.5`, `2` for an integral float is printed `2` by Compose too).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        let s = format!("{f}");
        s
    }
}
