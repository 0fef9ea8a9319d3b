//! Dockerfiles, read far enough to check them before a build is sent and to point advice
//! and lint findings at their lines: instructions with their flags and line numbers, line
//! continuations, parser directives, comments and heredocs; stages and their base images.
//! The builder's own parser stays the authority on everything else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

use crate::error::{Location, Problem};

/// Every instruction the Dockerfile frontend knows.
const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The mount types `RUN --mount` takes.
const MOUNT_TYPES: &[&str] = &["bind", "cache", "tmpfs", "secret", "ssh"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper case: `RUN`, `COPY`.
    pub keyword: String,
    /// `--mount=type=cache,target=/root/.cache`, `--from=build`, as written.
    pub flags: Vec<String>,
    /// The rest of the instruction, continuations joined with a space, heredoc bodies
    /// appended on their own lines.
    pub args: String,
    /// 1-based line the instruction starts on.
    pub line: usize,
    /// Byte offset of the keyword, and the instruction's length, for diagnostics.
    pub offset: usize,
    pub len: usize,
}

impl Instruction {
    /// The value of `--name=value`, if the flag was given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find_map(|f| f.strip_prefix("--")?.strip_prefix(name)?.strip_prefix('='))
    }

    /// The `--mount` flags' `type` values (`bind` when no type is given, as BuildKit does).
    pub fn mount_types(&self) -> Vec<String> {
        self.flags
            .iter()
            .filter_map(|f| f.strip_prefix("--mount="))
            .map(|spec| {
                spec.split(',')
                    .find_map(|kv| kv.strip_prefix("type="))
                    .unwrap_or("bind")
                    .to_string()
            })
            .collect()
    }
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The base as written, `${ARG}`s resolved.
    pub base: String,
    /// `AS name`, lowercased as the builder compares it.
    pub name: Option<String>,
    /// Index of the FROM in `instructions`.
    pub from: usize,
    /// Whether `base` names an earlier stage rather than an image.
    pub base_is_stage: bool,
}

#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub path: PathBuf,
    pub text: Arc<str>,
    pub instructions: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// `# syntax=` if the file names a frontend image.
    pub syntax: Option<String>,
}

impl Dockerfile {
    /// Reads and parses the Dockerfile at `path`. `args` are the build's args, used to
    /// resolve `FROM ${ARG}`.
    pub fn read(path: &Path, args: &BTreeMap<String, String>) -> Result<Dockerfile, Box<Problem>> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Box::new(
                Problem::plain(format!("cannot read {}: {err}", path.display()))
                    .with_help("check `build.context` and `build.dockerfile` in the compose file"),
            )
        })?;
        Dockerfile::parse(path, &text, args)
    }

    /// Parses `text`, read from `path`.
    pub fn parse(
        path: &Path,
        text: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<Dockerfile, Box<Problem>> {
        let shared: Arc<str> = Arc::from(text);
        let problem = |offset: usize, len: usize, line: usize, message: String, help: &str| {
            let column = offset - text[..offset].rfind('\n').map_or(0, |at| at + 1) + 1;
            Box::new(Problem {
                message,
                location: Some(Location {
                    file: path.to_path_buf(),
                    line: line as u32,
                    column: column as u32,
                }),
                src: Some(NamedSource::new(path.display().to_string(), shared.clone())),
                span: Some(SourceSpan::new(offset.into(), len.max(1))),
                label: "here".into(),
                help: Some(help.to_string()),
            })
        };

        // Parser directives are comments at the very top, before anything else.
        let mut escape = '\\';
        let mut syntax = None;
        for line in text.lines() {
            let Some(directive) = line.trim().strip_prefix('#') else {
                break;
            };
            let Some((key, value)) = directive.split_once('=') else {
                break;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "escape" => escape = value.trim().chars().next().unwrap_or('\\'),
                "syntax" => syntax = Some(value.trim().to_string()),
                "check" => {}
                _ => break,
            }
        }

        // Split into instructions: comments and blank lines dropped, continuations joined,
        // heredoc bodies kept with their instruction.
        let lines: Vec<(usize, &str)> = line_offsets(text);
        let mut instructions = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let (offset, raw) = lines[i];
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                i += 1;
                continue;
            }
            let start_line = i + 1;
            let start = offset + (raw.len() - trimmed.len());
            let mut joined = String::new();
            let mut end = offset + raw.len();
            let mut current = trimmed;
            loop {
                let body = current.trim_end();
                match body.strip_suffix(escape) {
                    Some(head) => {
                        joined.push_str(head.trim_end());
                        joined.push(' ');
                        i += 1;
                        // Comment and empty lines inside a continuation are skipped.
                        while i < lines.len() && {
                            let t = lines[i].1.trim();
                            t.starts_with('#') || t.is_empty()
                        } {
                            i += 1;
                        }
                        let Some(&(next_offset, next)) = lines.get(i) else {
                            break;
                        };
                        end = next_offset + next.len();
                        current = next.trim_start();
                    }
                    None => {
                        joined.push_str(body);
                        i += 1;
                        break;
                    }
                }
            }
            for word in heredoc_words(&joined) {
                while i < lines.len() {
                    let (line_offset, line) = lines[i];
                    i += 1;
                    end = line_offset + line.len();
                    let done = line.trim_start_matches('\t') == word;
                    joined.push('\n');
                    joined.push_str(line);
                    if done {
                        break;
                    }
                }
            }
            let (keyword, rest) = match joined.split_once(char::is_whitespace) {
                Some((k, r)) => (k.to_string(), r.trim().to_string()),
                None => (joined.trim().to_string(), String::new()),
            };
            let upper = keyword.to_ascii_uppercase();
            let keyword_len = keyword.len();
            if !INSTRUCTIONS.contains(&upper.as_str()) {
                let close = INSTRUCTIONS
                    .iter()
                    .min_by_key(|known| distance(known, &upper))
                    .filter(|known| distance(known, &upper) <= 2);
                let help = match close {
                    Some(known) => format!("did you mean {known}?"),
                    None => format!("the instructions are {}", INSTRUCTIONS.join(", ")),
                };
                return Err(problem(
                    start,
                    keyword_len,
                    start_line,
                    format!("unknown instruction `{keyword}`"),
                    &help,
                ));
            }
            let (flags, args) = split_flags(&rest);
            instructions.push(Instruction {
                keyword: upper,
                flags,
                args,
                line: start_line,
                offset: start,
                len: end - start,
            });
        }

        // Check what the builder would refuse, so that the error names the line before
        // anything is sent.
        let mut global_args: BTreeMap<String, String> = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for (index, ins) in instructions.iter().enumerate() {
            let fail = |message: String, help: &str| {
                Err(problem(ins.offset, ins.len, ins.line, message, help))
            };
            match ins.keyword.as_str() {
                "ARG" if stages.is_empty() => {
                    for decl in ins.args.split_whitespace() {
                        let (name, default) = match decl.split_once('=') {
                            Some((n, d)) => (n, Some(unquote(d))),
                            None => (decl, None),
                        };
                        let value = args.get(name).cloned().or(default);
                        if let Some(value) = value {
                            global_args.insert(name.to_string(), value);
                        }
                    }
                }
                "FROM" => {
                    let words: Vec<&str> = ins.args.split_whitespace().collect();
                    let (base, name) = match words.as_slice() {
                        [base] => (*base, None),
                        [base, as_, name] if as_.eq_ignore_ascii_case("as") => (*base, Some(*name)),
                        [] => return fail("FROM names no image".into(), "write `FROM image:tag`"),
                        _ => {
                            return fail(
                                format!(
                                    "FROM takes an image and an optional `AS name`, not `{}`",
                                    ins.args
                                ),
                                "write `FROM image:tag AS name`",
                            )
                        }
                    };
                    let base = substitute(base, &global_args);
                    let base_is_stage = stages
                        .iter()
                        .any(|s| s.name.as_deref() == Some(base.to_ascii_lowercase().as_str()));
                    stages.push(Stage {
                        base,
                        name: name.map(str::to_ascii_lowercase),
                        from: index,
                        base_is_stage,
                    });
                }
                _ if stages.is_empty() => {
                    return fail(
                        format!("{} comes before the first FROM", ins.keyword),
                        "only ARG may come before FROM; start the file with `FROM image:tag`",
                    )
                }
                "RUN" => {
                    for kind in ins.mount_types() {
                        if !MOUNT_TYPES.contains(&kind.as_str()) {
                            return fail(
                                format!("RUN --mount has an unknown type `{kind}`"),
                                "the mount types are bind, cache, tmpfs, secret and ssh",
                            );
                        }
                    }
                }
                "COPY" | "ADD"
                    if ins.args.split_whitespace().count() < 2 && !ins.args.contains("<<") =>
                {
                    return fail(
                        format!("{} needs a source and a destination", ins.keyword),
                        "write `COPY source destination`",
                    )
                }
                _ => {}
            }
        }
        if stages.is_empty() {
            return Err(Box::new(Problem {
                location: Some(Location {
                    file: path.to_path_buf(),
                    line: 1,
                    column: 1,
                }),
                ..Problem::plain("the Dockerfile has no FROM")
                    .with_help("start it with `FROM image:tag`")
            }));
        }
        Ok(Dockerfile {
            path: path.to_path_buf(),
            text: shared,
            instructions,
            stages,
            syntax,
        })
    }

    /// The images the build needs from the engine: every stage base that is not an
    /// earlier stage and not `scratch`, each once.
    pub fn base_images(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for stage in &self.stages {
            if !stage.base_is_stage
                && stage.base != "scratch"
                && !out.contains(&stage.base.as_str())
            {
                out.push(&stage.base);
            }
        }
        out
    }

    /// The instructions of stage `index`, FROM included.
    pub fn stage_instructions(&self, index: usize) -> &[Instruction] {
        let start = self.stages[index].from;
        let end = self
            .stages
            .get(index + 1)
            .map_or(self.instructions.len(), |s| s.from);
        &self.instructions[start..end]
    }

    /// The stage a build with `target` ends in: the named one, else the last.
    pub fn final_stage(&self, target: Option<&str>) -> usize {
        target
            .and_then(|t| {
                let t = t.to_ascii_lowercase();
                self.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(t.as_str()))
            })
            .unwrap_or(self.stages.len() - 1)
    }
}

/// `(byte offset, line)` for every line, without the newline.
fn line_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        out.push((offset, line.strip_suffix('\r').unwrap_or(line)));
        offset += line.len() + 1;
    }
    if text.ends_with('\n') {
        out.pop();
    }
    out
}

/// The words that end the heredocs an instruction opens (`<<EOF`, `<<-EOF`, `<<"EOF"`).
fn heredoc_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("<<") {
        rest = &rest[at + 2..];
        let word: String = rest
            .trim_start_matches('-')
            .trim_matches(|c| c == '"' || c == '\'')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// Leading `--flag[=value]` words, and the rest.
fn split_flags(rest: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut remaining = rest.trim_start();
    while remaining.starts_with("--") {
        let end = remaining
            .find(char::is_whitespace)
            .unwrap_or(remaining.len());
        flags.push(remaining[..end].to_string());
        remaining = remaining[end..].trim_start();
    }
    (flags, remaining.to_string())
}

fn unquote(value: &str) -> String {
    value.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// `$NAME`, `${NAME}` and `${NAME:-default}` replaced from `vars` (unknown ones by their
/// default, or nothing), as the builder does in FROM.
fn substitute(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = value.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek().is_some_and(|(_, c)| *c == '{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        let mut default = None;
        while let Some(&(_, c)) = chars.peek() {
            if braced && c == '}' {
                chars.next();
                break;
            }
            if braced && c == ':' {
                chars.next();
                let mut d = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    d.push(c);
                }
                default = Some(d.trim_start_matches('-').to_string());
                break;
            }
            if !(braced || c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            chars.next();
        }
        match vars.get(&name) {
            Some(v) if !v.is_empty() => out.push_str(v),
            _ => out.push_str(default.as_deref().unwrap_or("")),
        }
    }
    out
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Dockerfile, Box<Problem>> {
        Dockerfile::parse(Path::new("Dockerfile"), text, &BTreeMap::new())
    }

    #[test]
    fn instructions_flags_lines_and_stages() {
        let d = parse(
            "# syntax=docker/dockerfile:1\nARG BASE=debian:12\nFROM ${BASE} AS deps\n\n# deps\nRUN --mount=type=cache,target=/root/.cache \\\n    # a comment inside\n    pip install \\\n      -r requirements.txt\nFROM deps AS app\nCOPY --from=deps /a /b\nRUN --mount=type=secret,id=npm cat /run/secrets/npm\n",
        )
        .unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        let run = &d.instructions[2];
        assert_eq!(run.keyword, "RUN");
        assert_eq!(run.line, 6);
        assert_eq!(run.mount_types(), vec!["cache"]);
        assert_eq!(run.args, "pip install -r requirements.txt");
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[0].base, "debian:12");
        assert!(d.stages[1].base_is_stage);
        assert_eq!(d.base_images(), vec!["debian:12"]);
        assert_eq!(d.instructions[4].flag("from"), Some("deps"));
        assert_eq!(d.final_stage(Some("DEPS")), 0);
        assert_eq!(d.stage_instructions(1).len(), 3);
    }

    #[test]
    fn build_args_resolve_the_base() {
        let args = BTreeMap::from([("PY".to_string(), "3.12".to_string())]);
        let d = Dockerfile::parse(
            Path::new("Dockerfile"),
            "ARG PY=3.11\nFROM python:${PY}-slim\nFROM ${OTHER:-scratch}\n",
            &args,
        )
        .unwrap();
        assert_eq!(d.base_images(), vec!["python:3.12-slim"]);
    }

    #[test]
    fn heredocs_belong_to_their_instruction() {
        let d =
            parse("FROM a\nRUN <<EOF\nset -e\nFROOM not an instruction\nEOF\nUSER app\n").unwrap();
        assert_eq!(d.instructions.len(), 3);
        assert_eq!(d.instructions[2].keyword, "USER");
        assert_eq!(d.instructions[2].line, 6);
    }

    #[test]
    fn an_unknown_instruction_names_its_line_and_a_guess() {
        let err = parse("FROM a\n\nRUNN make\n").unwrap_err();
        let location = err.location.clone().unwrap();
        assert_eq!((location.line, location.column), (3, 1));
        assert_eq!(err.message, "unknown instruction `RUNN`");
        assert_eq!(err.help.as_deref(), Some("did you mean RUN?"));
    }

    #[test]
    fn what_the_builder_refuses_is_refused_here() {
        for (text, message) in [
            ("RUN x\n", "RUN comes before the first FROM"),
            ("", "the Dockerfile has no FROM"),
            ("FROM\n", "FROM names no image"),
            (
                "FROM a\nRUN --mount=type=volume x\n",
                "RUN --mount has an unknown type `volume`",
            ),
            ("FROM a\nCOPY x\n", "COPY needs a source and a destination"),
        ] {
            assert_eq!(parse(text).unwrap_err().message, message, "{text}");
        }
    }

    #[test]
    fn the_escape_directive_changes_continuations() {
        let d = parse("# escape=`\nFROM a\nRUN a `\n  b\n").unwrap();
        assert_eq!(d.instructions[1].args, "a b");
    }
}
