//! Errors of the loader: every problem carries the file, line and column it comes from.

use crate::source::{SourceMap, Span};
use miette::{NamedSource, SourceSpan};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One problem in the user's input, located when it can be.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("{}{message}", location_prefix(.location))]
pub struct Problem {
    /// Lowercase, no trailing period; says what is wrong and, where it can, what to do.
    pub message: String,
    /// `file:line:col`, kept apart from the message so tests and JSON output can read it.
    pub location: Option<Location>,
    #[source_code]
    pub src: Option<NamedSource<Arc<str>>>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

fn location_prefix(l: &Option<Location>) -> String {
    match l {
        Some(l) => format!("{l}: "),
        None => String::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

impl Problem {
    /// A problem with no place in any file (a missing file, a bad option).
    pub fn plain(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            location: None,
            src: None,
            span: None,
            label: String::new(),
            help: None,
        }
    }

    /// A problem at `span`, resolved against the files in `sources`.
    pub fn at(sources: &SourceMap, span: Span, message: impl Into<String>) -> Self {
        let message = message.into();
        let Some(file) = sources.get(span.source) else {
            return Problem::plain(message);
        };
        let len = span.end.saturating_sub(span.start).max(1);
        let start = span.start.min(file.text.len());
        let len = len.min(file.text.len().saturating_sub(start));
        Problem {
            location: Some(Location {
                file: file.path.clone(),
                line: span.line,
                column: span.col,
            }),
            src: Some(NamedSource::new(
                file.path.display().to_string(),
                file.text.clone(),
            )),
            span: Some(SourceSpan::new(start.into(), len)),
            label: "here".into(),
            message,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Why a project could not be loaded. Holds every problem found, in file order where possible.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("{}", summary(.problems))]
pub struct LoadError {
    #[related]
    pub problems: Vec<Problem>,
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "the compose project is invalid".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more problems)", rest.len()),
    }
}

impl LoadError {
    pub fn one(p: Problem) -> Self {
        LoadError { problems: vec![p] }
    }
}

impl From<Problem> for LoadError {
    fn from(p: Problem) -> Self {
        LoadError::one(p)
    }
}
