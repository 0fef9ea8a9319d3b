//! Variable interpolation (compose-spec 12-interpolation.md), as Docker Compose v2 (compose-go's
//! `template` package) performs it.
//!
//! Syntax accepted, with `NAME` matching `[A-Za-z_][A-Za-z0-9_]*`:
//!
//! | expression          | result                                                        |
//! |---------------------|---------------------------------------------------------------|
//! | `$NAME`, `${NAME}`  | the value, or `""` when unset (the name is recorded as a warning) |
//! | `${NAME:-word}`     | `word` when NAME is unset or empty                            |
//! | `${NAME-word}`      | `word` when NAME is unset                                     |
//! | `${NAME:?word}`     | error with message `word` when NAME is unset or empty         |
//! | `${NAME?word}`      | error with message `word` when NAME is unset                  |
//! | `${NAME:+word}`     | `word` when NAME is set and non-empty, else `""`              |
//! | `${NAME+word}`      | `word` when NAME is set, else `""`                            |
//! | `$$`                | a literal `$`                                                 |
//!
//! Decisions, following Compose:
//! - A `$` followed by anything that is neither `$`, `{` nor a name start (`$ `, `$1`, `$-`, a
//!   trailing `$`) is kept literally (12-interpolation.md: "in other circumstances, it will be
//!   preserved without attempt to interpolate a value").
//! - `$NAME` takes the longest name, so `$FOO-bar` is `${FOO}-bar` and `$FOO.x` is `${FOO}.x`.
//! - A `word` may contain text, `$$` and nested expressions to any depth; only `${` opens a
//!   nested brace, a bare `{` is literal and the first `}` not closing a nested `${` ends the word.
//! - Words are evaluated eagerly, as compose-go does: `${A:-${B:?missing}}` fails even when `A`
//!   is set, and unset variables referenced in an unused word are still reported as warnings.
//! - Anything after `${` other than `NAME}` or `NAME` followed by one of the six operators is a
//!   syntax error: unterminated `${`, `${}`, `${1A}`, `${A B}`, `${A/x/y}`, `${A:=x}`, `${A:}`.
//! - Mapping keys are never interpolated (12-interpolation.md); string scalars keep `Kind::Str`
//!   (type coercion happens later in the loader), other scalars are untouched.

use crate::node::{Kind, Node};
use crate::source::Span;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?message}` / `${VAR?message}` with VAR missing (or empty for `:?`).
    #[error("required variable {name} is missing a value{}", colon_suffix(.message))]
    Required { name: String, message: String },
    /// Unterminated `${`, empty name, bad characters in a name, unknown operator.
    #[error("invalid interpolation format for {input:?}: {reason}")]
    Syntax { input: String, reason: String },
}

/// `": message"`, or nothing when the message is empty (compose-go prints no colon then).
fn colon_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Resolves `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
/// `${VAR:+replacement}`, `${VAR+replacement}`, nested expressions inside defaults and
/// replacements, and `$$` (a literal `$`). `lookup` returns the value of a variable or None
/// when it is unset. Unset variables without a default become "" (Compose warns; we record the
/// name in `warnings`, once per name).
pub fn interpolate_str(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let mut p = Parser {
        input,
        pos: 0,
        lookup,
        warnings,
    };
    p.sequence(false)
}

/// Interpolates every string scalar value in the tree (not mapping keys), in place. On error
/// returns the error with the span of the scalar that failed.
pub fn interpolate_node(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<(), (InterpolateError, Span)> {
    let span = node.span;
    match &mut node.kind {
        Kind::Str(s) => {
            if s.contains('$') {
                *s = interpolate_str(s, lookup, warnings).map_err(|e| (e, span))?;
            }
        }
        Kind::Seq(items) => {
            for item in items {
                interpolate_node(item, lookup, warnings)?;
            }
        }
        Kind::Map(map) => {
            for entry in map.values_mut() {
                interpolate_node(&mut entry.value, lookup, warnings)?;
            }
        }
        Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {}
    }
    Ok(())
}

/// The operator of a braced expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `-` / `:-`
    Default,
    /// `?` / `:?`
    Required,
    /// `+` / `:+`
    Alternate,
}

struct Parser<'a, 'l, 'w> {
    input: &'a str,
    pos: usize,
    lookup: &'l dyn Fn(&str) -> Option<String>,
    warnings: &'w mut Vec<String>,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Parser<'a, '_, '_> {
    fn bytes(&self) -> &[u8] {
        self.input.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn syntax(&self, reason: impl Into<String>) -> InterpolateError {
        InterpolateError::Syntax {
            input: self.input.to_string(),
            reason: reason.into(),
        }
    }

    /// Text with expressions up to the end of input or, inside braces, up to the closing `}`
    /// (consumed).
    fn sequence(&mut self, in_braces: bool) -> Result<String, InterpolateError> {
        let mut out = String::new();
        loop {
            // Copy the run of plain text. `$` and `}` are ASCII, so slicing at them is safe.
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'$' || (in_braces && b == b'}') {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.input[start..self.pos]);
            match self.peek() {
                None if in_braces => return Err(self.syntax("missing closing brace")),
                None => return Ok(out),
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => self.dollar(&mut out)?,
            }
        }
    }

    /// At a `$`: an escape, a name, a braced expression or a literal `$`.
    fn dollar(&mut self, out: &mut String) -> Result<(), InterpolateError> {
        self.pos += 1;
        match self.peek() {
            Some(b'$') => {
                self.pos += 1;
                out.push('$');
            }
            Some(b'{') => {
                self.pos += 1;
                let value = self.braced()?;
                out.push_str(&value);
            }
            Some(b) if is_name_start(b) => {
                let name = self.name();
                out.push_str(&self.value_or_warn(name));
            }
            _ => out.push('$'),
        }
        Ok(())
    }

    fn name(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    fn value_or_warn(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                if !self.warnings.iter().any(|w| w == name) {
                    self.warnings.push(name.to_string());
                }
                String::new()
            }
        }
    }

    /// After `${`: `NAME}` or `NAME<op>word}`.
    fn braced(&mut self) -> Result<String, InterpolateError> {
        match self.peek() {
            None => return Err(self.syntax("missing closing brace")),
            Some(b'}') => return Err(self.syntax("empty variable name")),
            Some(b) if is_name_char(b) && !is_name_start(b) => {
                let bad = self.name();
                return Err(self.syntax(format!("invalid variable name {bad:?}")));
            }
            Some(b) if !is_name_start(b) => {
                let c = self.input[self.pos..].chars().next().unwrap_or('?');
                return Err(self.syntax(format!("unexpected character {c:?} after \"${{\"")));
            }
            Some(_) => {}
        }
        let name = self.name().to_string();
        let (op, colon) = match self.peek() {
            None => return Err(self.syntax("missing closing brace")),
            Some(b'}') => {
                self.pos += 1;
                return Ok(self.value_or_warn(&name));
            }
            Some(b':') => {
                self.pos += 1;
                match self.peek().and_then(op_of) {
                    Some(op) => (op, true),
                    None => {
                        let rest: String = self.input[self.pos..].chars().take(1).collect();
                        return Err(self.syntax(format!(
                            "unsupported operator \":{rest}\" after variable name {name}"
                        )));
                    }
                }
            }
            Some(b) => match op_of(b) {
                Some(op) => (op, false),
                None => {
                    let c = self.input[self.pos..].chars().next().unwrap_or('?');
                    return Err(self.syntax(format!(
                        "unexpected character {c:?} after variable name {name}"
                    )));
                }
            },
        };
        self.pos += 1;
        let word = self.sequence(true)?;
        let value = (self.lookup)(&name);
        // `:` variants treat an empty value like an unset one.
        let present = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        Ok(match op {
            Op::Default if present => value.unwrap_or_default(),
            Op::Default => word,
            Op::Alternate if present => word,
            Op::Alternate => String::new(),
            Op::Required if present => value.unwrap_or_default(),
            Op::Required => {
                return Err(InterpolateError::Required {
                    name,
                    message: word,
                })
            }
        })
    }
}

fn op_of(b: u8) -> Option<Op> {
    match b {
        b'-' => Some(Op::Default),
        b'?' => Some(Op::Required),
        b'+' => Some(Op::Alternate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceId;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// SET=value, EMPTY="", UNSET unset, plus a few helpers for nesting.
    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("SET", "value"),
            ("EMPTY", ""),
            ("B", "bee"),
            ("C", "sea"),
            ("DOLLAR", "$HOME"),
            ("lower_1", "low"),
        ])
    }

    fn run(input: &str) -> (Result<String, InterpolateError>, Vec<String>) {
        let env = env();
        let lookup = move |k: &str| env.get(k).map(|v| v.to_string());
        let mut warnings = Vec::new();
        let r = interpolate_str(input, &lookup, &mut warnings);
        (r, warnings)
    }

    fn ok(input: &str) -> String {
        run(input)
            .0
            .unwrap_or_else(|e| panic!("{input:?} failed: {e}"))
    }

    #[test]
    fn operators_in_every_state() {
        let cases: &[(&str, &str)] = &[
            // plain
            ("${SET}", "value"),
            ("${EMPTY}", ""),
            ("${UNSET}", ""),
            ("$SET", "value"),
            ("$EMPTY", ""),
            ("$UNSET", ""),
            // :-
            ("${SET:-def}", "value"),
            ("${EMPTY:-def}", "def"),
            ("${UNSET:-def}", "def"),
            // -
            ("${SET-def}", "value"),
            ("${EMPTY-def}", ""),
            ("${UNSET-def}", "def"),
            // :+
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET:+alt}", ""),
            // +
            ("${SET+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            // :? and ? when satisfied
            ("${SET:?err}", "value"),
            ("${SET?err}", "value"),
            ("${EMPTY?err}", ""),
            // empty words
            ("${UNSET:-}", ""),
            ("${UNSET-}", ""),
            ("${SET:+}", ""),
            ("${SET+}", ""),
            // words with spaces and special characters
            ("${UNSET:-a b:c-d?e+f}", "a b:c-d?e+f"),
            ("${UNSET:-{x}", "{x"),
            ("${UNSET:-}}", "}"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn required_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("${EMPTY:?must be set}", "EMPTY", "must be set"),
            ("${UNSET:?must be set}", "UNSET", "must be set"),
            ("${UNSET?must be set}", "UNSET", "must be set"),
            ("${UNSET?}", "UNSET", ""),
            ("${UNSET:?${SET} missing}", "UNSET", "value missing"),
            ("x ${UNSET?$B}", "UNSET", "bee"),
        ];
        for (input, name, message) in cases {
            let err = run(input).0.unwrap_err();
            assert_eq!(
                err,
                InterpolateError::Required {
                    name: name.to_string(),
                    message: message.to_string()
                },
                "input {input:?}"
            );
        }
        let err = run("${UNSET:?set it}").0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable UNSET is missing a value: set it"
        );
        let err = run("${UNSET?}").0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable UNSET is missing a value"
        );
    }

    #[test]
    fn nesting() {
        let cases: &[(&str, &str)] = &[
            // two levels
            ("${UNSET:-${B}}", "bee"),
            ("${UNSET:-$B}", "bee"),
            ("${UNSET:-${UNSET2:-x}}", "x"),
            ("${SET:-${UNSET2:-x}}", "value"),
            ("${SET:+[${B}]}", "[bee]"),
            ("${UNSET-pre ${B} post}", "pre bee post"),
            ("${UNSET:-${B}${C}}", "beesea"),
            // three levels
            ("${UNSET:-${UNSET2:-${UNSET3:-deep}}}", "deep"),
            ("${UNSET:-${UNSET2:-${C}}}", "sea"),
            ("${UNSET:-${EMPTY-${C}}}", ""),
            ("${UNSET:-${SET:+${B:+yes}}}", "yes"),
            ("a${UNSET:-b${UNSET2:-c${UNSET3:-d}e}f}g", "abcdefg"),
            // `$$` inside words
            ("${UNSET:-$$B}", "$B"),
            ("${UNSET:-${UNSET2:-$${B}}}", "${B}"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn dollars_and_bare_names() {
        let cases: &[(&str, &str)] = &[
            ("$$", "$"),
            ("$$SET", "$SET"),
            ("$${SET}", "${SET}"),
            ("$$$SET", "$value"),
            ("$$$$", "$$"),
            ("$SET/path", "value/path"),
            ("$SET-x", "value-x"),
            ("$SET.x", "value.x"),
            ("$SETx", ""),
            ("${SET}x", "valuex"),
            ("pre-$B-$C-post", "pre-bee-sea-post"),
            ("$lower_1", "low"),
            ("$ SET", "$ SET"),
            ("$1", "$1"),
            ("a$", "a$"),
            ("$-x", "$-x"),
            ("100%$", "100%$"),
            ("no dollars", "no dollars"),
            ("}", "}"),
            ("{SET}", "{SET}"),
            ("${DOLLAR}", "$HOME"),
            ("héllo ${B} wörld", "héllo bee wörld"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, &str)] = &[
            ("${", "missing closing brace"),
            ("${SET", "missing closing brace"),
            ("${SET:-x", "missing closing brace"),
            ("${SET:-${B}", "missing closing brace"),
            ("${}", "empty variable name"),
            ("${1A}", "invalid variable name \"1A\""),
            ("${A B}", "unexpected character ' ' after variable name A"),
            ("${ A}", "unexpected character ' ' after \"${\""),
            ("${A/x/y}", "unexpected character '/' after variable name A"),
            ("${A#x}", "unexpected character '#' after variable name A"),
            (
                "${A:=x}",
                "unsupported operator \":=\" after variable name A",
            ),
            ("${A:}", "unsupported operator \":}\" after variable name A"),
            ("${A:", "unsupported operator \":\" after variable name A"),
            ("${UNSET:-${1}}", "invalid variable name \"1\""),
            ("${SET:-${}}", "empty variable name"),
        ];
        for (input, reason) in cases {
            let err = run(input).0.unwrap_err();
            assert_eq!(
                err,
                InterpolateError::Syntax {
                    input: input.to_string(),
                    reason: reason.to_string()
                },
                "input {input:?}"
            );
        }
        let err = run("x ${}").0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid interpolation format for \"x ${}\": empty variable name"
        );
    }

    #[test]
    fn eager_words_like_compose() {
        // compose-go substitutes the word before looking at the variable.
        let err = run("${SET:-${UNSET:?inner}}").0.unwrap_err();
        assert!(matches!(err, InterpolateError::Required { ref name, .. } if name == "UNSET"));
        let (r, w) = run("${SET:-${UNSET}}");
        assert_eq!(r.unwrap(), "value");
        assert_eq!(w, vec!["UNSET".to_string()]);
    }

    #[test]
    fn warnings_once_per_name_and_only_without_default() {
        let (r, w) = run("$UNSET ${UNSET} ${OTHER} ${NODEF:-x} ${NOALT:+x} ${NOREQ-y} $SET");
        assert_eq!(r.unwrap(), "   x  y value");
        assert_eq!(w, vec!["UNSET".to_string(), "OTHER".to_string()]);
        let (_, w) = run("$SET $EMPTY");
        assert!(w.is_empty());
    }

    #[test]
    fn node_tree() {
        let text = "\
services:
  web:
    image: \"nginx:${TAG:-latest}\"
    ports:
      - \"${PORT}:80\"
      - 443
    environment:
      $KEY: \"$$literal\"
      OTHER: ${UNSET_VAR}
    enabled: true
    replicas: ${REPLICAS}
";
        let mut node = crate::yaml::parse(text, SourceId(0)).unwrap().remove(0);
        let vars = HashMap::from([("PORT", "8080"), ("REPLICAS", "3")]);
        let lookup = move |k: &str| vars.get(k).map(|v| v.to_string());
        let mut warnings = Vec::new();
        interpolate_node(&mut node, &lookup, &mut warnings).unwrap();
        let web = node.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("nginx:latest"));
        let ports = web.get("ports").unwrap().as_seq().unwrap();
        assert_eq!(ports[0].as_str(), Some("8080:80"));
        assert_eq!(ports[1].kind, Kind::Int(443));
        let env = web.get("environment").unwrap();
        // keys are not interpolated
        assert_eq!(env.get("$KEY").unwrap().as_str(), Some("$literal"));
        assert_eq!(env.get("OTHER").unwrap().as_str(), Some(""));
        assert_eq!(web.get("enabled").unwrap().kind, Kind::Bool(true));
        // stays a string; coercion is the loader's job
        assert_eq!(web.get("replicas").unwrap().kind, Kind::Str("3".into()));
        assert_eq!(warnings, vec!["UNSET_VAR".to_string()]);
    }

    #[test]
    fn node_tree_error_points_at_the_scalar() {
        let text = "\
services:
  web:
    image: nginx
    environment:
      - A=${A}
      - B=${B:?B is required}
";
        let mut node = crate::yaml::parse(text, SourceId(0)).unwrap().remove(0);
        let lookup = |_: &str| None;
        let mut warnings = Vec::new();
        let (err, span) = interpolate_node(&mut node, &lookup, &mut warnings).unwrap_err();
        assert_eq!(
            err,
            InterpolateError::Required {
                name: "B".into(),
                message: "B is required".into()
            }
        );
        assert_eq!((span.line, span.col), (6, 9));

        let mut node = crate::yaml::parse("a:\n  b: [ok, \"${x y}\"]\n", SourceId(0))
            .unwrap()
            .remove(0);
        let (err, span) = interpolate_node(&mut node, &lookup, &mut warnings).unwrap_err();
        assert!(matches!(err, InterpolateError::Syntax { .. }));
        assert_eq!((span.line, span.col), (2, 11));
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let mut w = Vec::new();
            let _ = interpolate_str(&s, &|k: &str| k.starts_with(|c: char| c.is_ascii_uppercase()).then(|| k.to_string()), &mut w);
        }

        #[test]
        fn never_panics_on_dollar_heavy_input(s in "[${}:?+\\-a-zA-Z0-9_ é]{0,40}") {
            let mut w = Vec::new();
            let _ = interpolate_str(&s, &|k: &str| k.starts_with(|c: char| c.is_ascii_uppercase()).then(|| k.to_string()), &mut w);
        }

        #[test]
        fn strings_without_dollar_are_unchanged(s in "[^$]*") {
            let mut w = Vec::new();
            prop_assert_eq!(interpolate_str(&s, &|_: &str| Some("x".into()), &mut w).unwrap(), s);
            prop_assert!(w.is_empty());
        }
    }
}
