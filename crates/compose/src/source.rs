//! Source files and positions inside them.
//!
//! Every node the loader builds carries a [`Span`] that points back into one of the files kept in
//! a [`SourceMap`], so that any error found after interpolation, merging or `extends` can still
//! name the file, line and column the user has to fix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file inside a [`SourceMap`]. `SourceId::NONE` marks values berth made itself
/// (defaults, values from the environment) that have no place in any file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceId(pub u32);

impl SourceId {
    pub const NONE: SourceId = SourceId(u32::MAX);
}

/// A range in a source file: byte offsets for diagnostics, line and column (1-based) for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub source: SourceId,
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

impl Span {
    /// A span that points nowhere, for synthesized values.
    pub const NONE: Span = Span {
        source: SourceId::NONE,
        start: 0,
        end: 0,
        line: 0,
        col: 0,
    };

    pub fn is_none(&self) -> bool {
        self.source == SourceId::NONE
    }
}

/// One file the loader read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as given or discovered (absolute once the loader resolved it).
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// All files read while loading one project. Spans index into it.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> SourceId {
        let id = SourceId(self.files.len() as u32);
        self.files.push(SourceFile {
            path: path.into(),
            text: text.into(),
        });
        id
    }

    pub fn get(&self, id: SourceId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn path(&self, id: SourceId) -> Option<&Path> {
        self.get(id).map(|f| f.path.as_path())
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// `file:line:col` for a span, or `<generated>` when it has no file.
    pub fn describe(&self, span: Span) -> String {
        match self.get(span.source) {
            Some(f) => format!("{}:{}:{}", f.path.display(), span.line, span.col),
            None => "<generated>".to_string(),
        }
    }
}
