//! `.env` and `env_file` parsing (the syntax Compose accepts).
//!
//! CONTRACT (implemented by the interpolation work item):
//!
//! ```ignore
//! /// Parses dotenv text. `lookup` resolves variables referenced by unquoted and double-quoted
//! /// values (`${VAR}`), consulting earlier keys of the same file first, then `lookup`.
//! /// Returns the entries in file order. A line `KEY` with no `=` yields (KEY, None): Compose
//! /// takes the value from the environment for env_file, and leaves it unset when absent.
//! pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>)
//!     -> Result<Vec<(String, Option<String>)>, DotenvError>;
//!
//! #[derive(Debug, Clone, PartialEq, thiserror::Error)]
//! #[error("{message}")]
//! pub struct DotenvError { pub message: String, pub line: u32, pub col: u32 }
//! ```
