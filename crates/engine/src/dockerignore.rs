//! `.dockerignore` matching with Docker's rules (moby/patternmatcher): patterns are
//! relative to the context root with a leading `/` stripped and paths cleaned; `*` and `?`
//! stay within one path segment, `**` spans any number of segments; a pattern that
//! matches a directory excludes everything under it; `!` re-includes; the last matching
//! pattern wins. Written out here (about a hundred lines) because Docker's semantics
//! differ from gitignore's in ways a general glob crate would get wrong.

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Question,
    /// `**/` (or `**` before more pattern): any number of whole segments, even none.
    AnyDirs,
    /// `**` at the end: anything at all.
    AnyRest,
    /// `[...]`: one character from (or, negated, not from) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl DockerIgnore {
    /// Parses the file's text: one pattern a line, `#` comments and blank lines skipped.
    pub fn parse(text: &str) -> DockerIgnore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (exclusion, body) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let cleaned = clean(body);
                (!cleaned.is_empty()).then(|| Pattern {
                    exclusion,
                    tokens: tokenize(&cleaned),
                })
            })
            .collect();
        DockerIgnore { patterns }
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left out of the
    /// context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that could flip the current answer needs to be tried.
            if pattern.exclusion != excluded {
                continue;
            }
            if matches_or_parent(&pattern.tokens, &path) {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether some `!` pattern could re-include a file below an excluded directory, so
    /// that the directory must still be walked.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|pattern| pattern.exclusion)
    }
}

/// Like Go's `filepath.Clean` for relative paths, with the leading `/` dropped.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::AnyRest
                } else {
                    Token::AnyDirs
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                tokens.push(Token::Literal(chars[i]));
            }
            '[' => {
                if let Some((class, next)) = parse_class(&chars, i + 1) {
                    tokens.push(class);
                    i = next;
                    continue;
                }
                tokens.push(Token::Literal('['));
            }
            other => tokens.push(Token::Literal(other)),
        }
        i += 1;
    }
    tokens
}

/// Parses a `[...]` class starting after the `[`; returns it and the index after `]`.
fn parse_class(chars: &[char], mut i: usize) -> Option<(Token, usize)> {
    let negated = matches!(chars.get(i), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    while i < chars.len() && chars[i] != ']' {
        let mut low = chars[i];
        if low == '\\' {
            i += 1;
            low = *chars.get(i)?;
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&c| c != ']') {
            ranges.push((low, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((low, low));
            i += 1;
        }
    }
    (i < chars.len()).then_some((Token::Class { negated, ranges }, i + 1))
}

/// Docker excludes a file when the pattern matches the file or any directory above it.
fn matches_or_parent(tokens: &[Token], path: &str) -> bool {
    if matches(tokens, &path.chars().collect::<Vec<_>>()) {
        return true;
    }
    let mut prefix = path;
    while let Some(at) = prefix.rfind('/') {
        prefix = &prefix[..at];
        if matches(tokens, &prefix.chars().collect::<Vec<_>>()) {
            return true;
        }
    }
    false
}

fn matches(tokens: &[Token], text: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match first {
        Token::Literal(c) => text.first() == Some(c) && matches(rest, &text[1..]),
        Token::Question => text.first().is_some_and(|&c| c != '/') && matches(rest, &text[1..]),
        Token::Class { negated, ranges } => {
            text.first().is_some_and(|&c| {
                c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }) && matches(rest, &text[1..])
        }
        Token::Star => {
            // Try every split within the current segment, shortest first.
            for skip in 0..=text.len() {
                if matches(rest, &text[skip..]) {
                    return true;
                }
                if text.get(skip) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Token::AnyDirs => {
            // Zero segments, or any prefix that ends just after a `/`.
            if matches(rest, text) {
                return true;
            }
            (0..text.len()).any(|at| text[at] == '/' && matches(rest, &text[at + 1..]))
        }
        Token::AnyRest => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn plain_names_exclude_files_and_whole_directories() {
        let rules = ignore("secret.txt\nnode_modules\n# a comment\n\n");
        assert!(rules.is_excluded("secret.txt"));
        assert!(rules.is_excluded("node_modules/x/y.js"));
        assert!(!rules.is_excluded("src/secret.txt"), "patterns are rooted");
        assert!(!rules.is_excluded("app.py"));
    }

    #[test]
    fn star_and_question_stay_within_a_segment() {
        let rules = ignore("*.log\ntmp?");
        assert!(rules.is_excluded("debug.log"));
        assert!(!rules.is_excluded("logs/debug.log"));
        assert!(rules.is_excluded("tmp1"));
        assert!(!rules.is_excluded("tmp12"));
        assert!(ignore("*/cache").is_excluded("a/cache/file"));
        assert!(!ignore("*/cache").is_excluded("a/b/cache"));
    }

    #[test]
    fn double_star_spans_directories() {
        let rules = ignore("**/*.pyc\nbuild/**");
        assert!(rules.is_excluded("x.pyc"));
        assert!(rules.is_excluded("a/b/c/x.pyc"));
        assert!(rules.is_excluded("build/out/bin"));
        assert!(!rules.is_excluded("src/build.rs"));
        assert!(ignore("a/**/z").is_excluded("a/z"));
        assert!(ignore("a/**/z").is_excluded("a/b/c/z"));
        assert!(!ignore("a/**/z").is_excluded("a/bz"));
    }

    #[test]
    fn exceptions_and_order() {
        let rules = ignore("*.log\n!keep.log");
        assert!(rules.is_excluded("debug.log"));
        assert!(!rules.is_excluded("keep.log"));
        // Later patterns win.
        let rules = ignore("!keep.log\n*.log");
        assert!(rules.is_excluded("keep.log"));
        assert!(ignore("docs\n!docs/README.md").has_exceptions());
        assert!(!ignore("docs\n!docs/README.md").is_excluded("docs/README.md"));
        assert!(ignore("docs\n!docs/README.md").is_excluded("docs/other.md"));
    }

    #[test]
    fn leading_slash_and_dots_are_cleaned() {
        let rules = ignore("/secret.txt\n./a/../b");
        assert!(rules.is_excluded("secret.txt"));
        assert!(rules.is_excluded("b/c"));
        assert!(!rules.is_excluded("a"));
    }

    #[test]
    fn classes_and_escapes() {
        let rules = ignore("file[0-9].txt\n[!a]x\n\\*star");
        assert!(rules.is_excluded("file7.txt"));
        assert!(!rules.is_excluded("fileA.txt"));
        assert!(rules.is_excluded("bx"));
        assert!(!rules.is_excluded("ax"));
        assert!(rules.is_excluded("*star"));
        assert!(!rules.is_excluded("xstar"));
    }
}
