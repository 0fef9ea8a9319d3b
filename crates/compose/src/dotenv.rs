//! `.env` and `env_file` parsing: the syntax Docker Compose v2 (compose-go's `dotenv` package)
//! accepts, described in 05-services.md ("Env_file format").
//!
//! - One statement per line: `KEY=VALUE`, `KEY: VALUE` (compose-go accepts the YAML-like form
//!   too), or a bare `KEY`, which yields `(KEY, None)`: the caller takes the value from the
//!   environment and leaves the variable unset when absent. `KEY=` yields `Some("")`.
//! - An optional `export ` prefix is dropped. Blank lines and lines whose first non-blank
//!   character is `#` are ignored. Blanks around the key and `=` are ignored.
//! - Keys, as in compose-go, are made of letters, digits, `_`, `.`, `-`, `[` and `]` (so
//!   `1A`, `spring.profile` and `a-b` are accepted); any other character, and a space inside
//!   a key (`A B=x`), is an error. An empty key (`=x`) is an error too (compose-go silently
//!   records an empty name).
//! - Unquoted values run to the end of the line; a ` #` (space then hash) starts a comment;
//!   trailing whitespace is trimmed; no escapes; `$` expressions are interpolated.
//! - Single-quoted values are literal and may span lines; `\'` is a quote, any other backslash is
//!   kept as written (05-services.md: `VAR='Let\'s go!'` → `Let's go!`).
//! - Double-quoted values may span lines; `\"` is a quote; then the escapes `\n \r \t \a \b \f
//!   \v \\ \$` and `\0ooo` (octal) are expanded, other backslashes are kept, and the result is
//!   interpolated (`\$` produces a literal `$`).
//! - After a closing quote only blanks and a `#` comment may follow on that line. (compose-go
//!   would start a new statement there; berth reports an error instead.)
//! - Interpolation consults `lookup` first and then the keys read earlier in the same file, the
//!   order compose-go uses (the project environment wins over the file's own keys). Unset
//!   variables become `""`; interpolation errors (`${X:?msg}`, bad syntax) are `DotenvError`s.
//! - Duplicate keys: the later statement wins, and the entry keeps the position of the first
//!   occurrence. A later bare `KEY` replaces an earlier value with `None`.
//! - Errors carry the 1-based line and column (in characters) of the offending character; for
//!   an unterminated quote, of the opening quote; for interpolation errors, of the value.

use crate::interpolate::interpolate_str;
use indexmap::IndexMap;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DotenvError {
    pub message: String,
    pub line: u32,
    pub col: u32,
}

/// Parses dotenv text. `lookup` resolves variables referenced by unquoted and double-quoted
/// values (`${VAR}`); it is consulted first, then the earlier keys of the same file (see the
/// module documentation). Returns the entries in file order. A line `KEY` with no `=` yields
/// (KEY, None).
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser { text, pos: 0 };
    let mut entries: IndexMap<String, Option<String>> = IndexMap::new();
    let mut known: HashMap<String, String> = HashMap::new();

    loop {
        // Statement start: skip whitespace (newlines included) and comment lines.
        p.skip_while(char::is_whitespace);
        match p.peek() {
            None => break,
            Some('#') => {
                p.skip_line();
                continue;
            }
            Some(_) => {}
        }
        let (key, inherited) = p.key()?;
        if inherited {
            known.remove(&key);
            entries.insert(key, None);
            continue;
        }
        p.skip_while(is_blank);
        let value_pos = p.pos;
        let value = match p.peek() {
            Some(q @ ('"' | '\'')) => {
                let raw = p.quoted(q)?;
                p.after_quote()?;
                if q == '"' {
                    p.interpolate(&expand_escapes(&raw), value_pos, lookup, &known)?
                } else {
                    raw
                }
            }
            _ => {
                let start = p.pos;
                p.skip_while(|c| c != '\n');
                let line = &text[start..p.pos];
                let line = line.split_once(" #").map_or(line, |(v, _)| v);
                p.interpolate(line.trim_end(), value_pos, lookup, &known)?
            }
        };
        known.insert(key.clone(), value.clone());
        entries.insert(key, Some(value));
    }
    Ok(entries.into_iter().collect())
}

/// Blanks inside a line: whitespace other than a line feed (compose-go's `isSpace`).
fn is_blank(c: char) -> bool {
    c != '\n' && c.is_whitespace()
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_while(&mut self, f: impl Fn(char) -> bool) {
        let n = self
            .rest()
            .char_indices()
            .find(|&(_, c)| !f(c))
            .map_or(self.rest().len(), |(i, _)| i);
        self.pos += n;
    }

    /// Skips to the end of the line, and past its line feed.
    fn skip_line(&mut self) {
        self.skip_while(|c| c != '\n');
        if self.peek() == Some('\n') {
            self.pos += 1;
        }
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> DotenvError {
        let before = &self.text[..pos];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        DotenvError {
            message: message.into(),
            line: before.matches('\n').count() as u32 + 1,
            col: before[line_start..].chars().count() as u32 + 1,
        }
    }

    /// Reads `[export ]KEY` up to and including `=`/`:`, or up to the end of the line for an
    /// inherited key (then the bool is true).
    fn key(&mut self) -> Result<(String, bool), DotenvError> {
        if let Some(after) = self.rest().strip_prefix("export") {
            if after.starts_with(is_blank) {
                self.pos += "export".len();
                self.skip_while(is_blank);
            }
        }
        let start = self.pos;
        let mut end = None;
        for (i, c) in self.rest().char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    end = Some((i, c));
                    break;
                }
                c if is_blank(c) || is_key_char(c) => {}
                c => {
                    let line = self.rest().lines().next().unwrap_or("");
                    return Err(self.error_at(
                        self.pos + i,
                        format!("unexpected character {c:?} in variable name {line:?}"),
                    ));
                }
            }
        }
        let (len, sep) = end.unwrap_or((self.rest().len(), '\n'));
        let key = self.text[start..start + len].trim_end();
        if key.is_empty() {
            return Err(self.error_at(start, "missing variable name"));
        }
        if let Some(i) = key.find(is_blank) {
            return Err(self.error_at(start + i, format!("key cannot contain a space: {key:?}")));
        }
        let key = key.to_string();
        self.pos = (start + len + sep.len_utf8()).min(self.text.len());
        Ok((key, sep == '\n'))
    }

    /// Reads a quoted value starting at the opening quote `q`, past the closing quote. `\q`
    /// becomes `q`; every other backslash is kept with the character after it.
    fn quoted(&mut self, q: char) -> Result<String, DotenvError> {
        let open = self.pos;
        let mut out = String::new();
        let mut chars = self.text[open + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == q {
                self.pos = open + 1 + i + 1;
                return Ok(out);
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, n)) if n == q => out.push(n),
                    Some((_, n)) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        let line = self.text[open..].lines().next().unwrap_or("");
        Err(self.error_at(open, format!("unterminated quoted value {line}")))
    }

    /// After a closing quote: blanks, then an optional `#` comment, then the end of the line.
    fn after_quote(&mut self) -> Result<(), DotenvError> {
        self.skip_while(is_blank);
        match self.peek() {
            None | Some('\n') | Some('#') => {
                self.skip_line();
                Ok(())
            }
            Some(c) => Err(self.error_at(
                self.pos,
                format!("unexpected character {c:?} after the closing quote"),
            )),
        }
    }

    fn interpolate(
        &self,
        value: &str,
        pos: usize,
        lookup: &dyn Fn(&str) -> Option<String>,
        known: &HashMap<String, String>,
    ) -> Result<String, DotenvError> {
        let resolve = |name: &str| lookup(name).or_else(|| known.get(name).cloned());
        let mut warnings = Vec::new();
        interpolate_str(value, &resolve, &mut warnings)
            .map_err(|e| self.error_at(pos, e.to_string()))
    }
}

/// Expands the escapes of a double-quoted value. `\$` becomes `$$`, which interpolation then
/// turns into a literal `$`. Unknown escapes are kept as written.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&n) = chars.peek() else {
            out.push('\\');
            break;
        };
        let replacement = match n {
            'n' => "\n",
            'r' => "\r",
            't' => "\t",
            'a' => "\u{7}",
            'b' => "\u{8}",
            'f' => "\u{c}",
            'v' => "\u{b}",
            '\\' => "\\",
            '"' => "\"",
            '$' => "$$",
            '0' => {
                // `\0ooo`: exactly three octal digits after `\0`, at most 0o377.
                let digits: String = chars.clone().skip(1).take(3).collect();
                match u32::from_str_radix(&digits, 8) {
                    Ok(v) if digits.len() == 3 && v <= 0o377 => {
                        chars.nth(3);
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        continue;
                    }
                    _ => {
                        out.push('\\');
                        continue;
                    }
                }
            }
            _ => {
                out.push('\\');
                continue;
            }
        };
        chars.next();
        out.push_str(replacement);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "SHADOWED" => Some("from-env".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse_ok(text: &str) -> Vec<(String, Option<String>)> {
        parse(text, &lookup).unwrap_or_else(|e| panic!("{text:?}: {e} at {}:{}", e.line, e.col))
    }

    fn one(text: &str) -> Option<String> {
        let entries = parse_ok(text);
        assert_eq!(entries.len(), 1, "{text:?} gave {entries:?}");
        entries.into_iter().next().unwrap().1
    }

    #[test]
    fn single_values() {
        let cases: &[(&str, Option<&str>)] = &[
            ("A=b", Some("b")),
            ("A=", Some("")),
            ("A", None),
            ("A\n", None),
            ("  A  \n", None),
            ("A = b", Some("b")),
            ("A\t=\tb\t", Some("b")),
            ("A: b", Some("b")),
            ("export A=b", Some("b")),
            ("export   A=b", Some("b")),
            ("export A", None),
            ("export=1", Some("1")),
            ("exported=1", Some("1")),
            // unquoted
            ("A=b c  ", Some("b c")),
            ("A=b # comment", Some("b")),
            ("A=b# not a comment", Some("b# not a comment")),
            (
                "A=b\t# tab is not a comment start",
                Some("b\t# tab is not a comment start"),
            ),
            ("A=#x", Some("#x")),
            ("A=some\\tvalue", Some("some\\tvalue")),
            ("A=a=b=c", Some("a=b=c")),
            ("A=it's", Some("it's")),
            ("A=x\"y\"", Some("x\"y\"")),
            ("A=$HOME/x", Some("/home/me/x")),
            ("A=${HOME}", Some("/home/me")),
            ("A=${NOPE:-def}", Some("def")),
            ("A=$$HOME", Some("$HOME")),
            ("A=$NOPE", Some("")),
            ("A=\r", Some("")),
            // single-quoted
            ("A='b'", Some("b")),
            ("A=''", Some("")),
            ("A='$HOME ${HOME}'", Some("$HOME ${HOME}")),
            ("A='some\\tvalue'", Some("some\\tvalue")),
            ("A='Let\\'s go!'", Some("Let's go!")),
            ("A='b # not a comment'", Some("b # not a comment")),
            ("A='b' # comment", Some("b")),
            ("A='b'#comment", Some("b")),
            ("A='  padded  '", Some("  padded  ")),
            // double-quoted
            ("A=\"b\"", Some("b")),
            ("A=\"\"", Some("")),
            ("A=\"b # not a comment\"", Some("b # not a comment")),
            ("A=\"b\" # comment", Some("b")),
            ("A=\"some\\tvalue\"", Some("some\tvalue")),
            ("A=\"a\\nb\\rc\"", Some("a\nb\rc")),
            ("A=\"back\\\\slash\"", Some("back\\slash")),
            ("A=\"\\\\n\"", Some("\\n")),
            (
                "A=\"{\\\"hello\\\": \\\"json\\\"}\"",
                Some("{\"hello\": \"json\"}"),
            ),
            ("A=\"\\$HOME\"", Some("$HOME")),
            ("A=\"$$HOME\"", Some("$HOME")),
            ("A=\"$HOME\"", Some("/home/me")),
            ("A=\"${NOPE:-a b}\"", Some("a b")),
            ("A=\"\\q\"", Some("\\q")),
            ("A=\"\\0101\"", Some("A")),
            ("A=\"\\a\\b\\f\\v\"", Some("\u{7}\u{8}\u{c}\u{b}")),
            ("A=\"it's\"", Some("it's")),
            // keys compose-go accepts
            ("1A=x", Some("x")),
            ("a.b-c[0]=x", Some("x")),
            ("é=x", Some("x")),
        ];
        for (text, want) in cases {
            assert_eq!(one(text).as_deref(), *want, "text {text:?}");
        }
    }

    #[test]
    fn whole_file() {
        let text = "\
# Set Rails/Rack environment
RACK_ENV=development

export VAR=\"quoted\"
   # indented comment
INHERITED
EMPTY_VALUE=
MULTI=\"line one
line two\\tend\"
SINGLE_MULTI='a
  b'
AFTER=after # trailing comment
";
        let got = parse_ok(text);
        let want: Vec<(String, Option<String>)> = [
            ("RACK_ENV", Some("development")),
            ("VAR", Some("quoted")),
            ("INHERITED", None),
            ("EMPTY_VALUE", Some("")),
            ("MULTI", Some("line one\nline two\tend")),
            ("SINGLE_MULTI", Some("a\n  b")),
            ("AFTER", Some("after")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn crlf_and_bom() {
        let got = parse_ok("\u{feff}A=1\r\nB=\"2\"\r\nC\r\n");
        assert_eq!(
            got,
            vec![
                ("A".to_string(), Some("1".to_string())),
                ("B".to_string(), Some("2".to_string())),
                ("C".to_string(), None),
            ]
        );
    }

    #[test]
    fn interpolation_from_earlier_keys_and_lookup() {
        let text = "\
BASE=/srv
DATA=${BASE}/data
LOGS=\"$BASE/logs\"
RAW='$BASE'
SHADOWED=from-file
USE=${SHADOWED}
HOMEDIR=$HOME
LATER=${NOT_YET:-none}
NOT_YET=x
REQ=${DATA:?data needed}
";
        let got: HashMap<_, _> = parse_ok(text).into_iter().collect();
        let get = |k: &str| got[k].clone().unwrap();
        assert_eq!(get("DATA"), "/srv/data");
        assert_eq!(get("LOGS"), "/srv/logs");
        assert_eq!(get("RAW"), "$BASE");
        // `lookup` wins over the file's own keys, as in compose-go
        assert_eq!(get("USE"), "from-env");
        assert_eq!(get("HOMEDIR"), "/home/me");
        // only earlier keys are visible
        assert_eq!(get("LATER"), "none");
        assert_eq!(get("REQ"), "/srv/data");
    }

    #[test]
    fn duplicates_keep_first_position_and_last_value() {
        let got = parse_ok("A=1\nB=2\nA=3\nC=$A\nB\n");
        assert_eq!(
            got,
            vec![
                ("A".to_string(), Some("3".to_string())),
                ("B".to_string(), None),
                ("C".to_string(), Some("3".to_string())),
            ]
        );
    }

    #[test]
    fn errors_with_positions() {
        let cases: &[(&str, u32, u32, &str)] = &[
            ("A B=x", 1, 2, "key cannot contain a space: \"A B\""),
            (
                "OK=1\nA!=x",
                2,
                2,
                "unexpected character '!' in variable name \"A!=x\"",
            ),
            (
                "OK=1\n\n  $A=x",
                3,
                3,
                "unexpected character '$' in variable name \"$A=x\"",
            ),
            (
                "A # comment",
                1,
                3,
                "unexpected character '#' in variable name \"A # comment\"",
            ),
            ("=x", 1, 1, "missing variable name"),
            (
                "A=1\nB=\"open\nC=2\n",
                2,
                3,
                "unterminated quoted value \"open",
            ),
            ("A='open", 1, 3, "unterminated quoted value 'open"),
            (
                "A=\"x\" y",
                1,
                7,
                "unexpected character 'y' after the closing quote",
            ),
            (
                "A=1\nB=${C:?c is required}",
                2,
                3,
                "required variable C is missing a value: c is required",
            ),
            (
                "A=1\n  B = \"${}\"",
                2,
                7,
                "invalid interpolation format for \"${}\": empty variable name",
            ),
            (
                "A=\"multi\nline\"\nB=${1}",
                3,
                3,
                "invalid interpolation format for \"${1}\": invalid variable name \"1\"",
            ),
        ];
        for (text, line, col, message) in cases {
            let err = parse(text, &lookup).unwrap_err();
            assert_eq!(
                err,
                DotenvError {
                    message: message.to_string(),
                    line: *line,
                    col: *col
                },
                "text {text:?}"
            );
        }
    }

    #[test]
    fn empty_input() {
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("\n\n# only comments\n   \n").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[A-Za-z_=:#'\"\\$ {}\t\r\n0é]{0,60}") {
            let _ = parse(&s, &lookup);
        }
    }
}
