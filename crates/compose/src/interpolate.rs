//! Variable interpolation (compose-spec 12-interpolation.md).
//!
//! CONTRACT (implemented by the interpolation work item):
//!
//! ```ignore
//! /// Resolves `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! /// `${VAR:+replacement}`, `${VAR+replacement}`, nested expressions inside defaults and
//! /// replacements, and `$$` (a literal `$`). `lookup` returns the value of a variable or None
//! /// when it is unset. Unset variables without a default become "" (Compose warns; we record the
//! /// name in `warnings`).
//! pub fn interpolate_str(input: &str, lookup: &dyn Fn(&str) -> Option<String>,
//!                        warnings: &mut Vec<String>) -> Result<String, InterpolateError>;
//!
//! /// Interpolates every string scalar value in the tree (not mapping keys), in place. On error
//! /// returns the error with the span of the scalar that failed.
//! pub fn interpolate_node(node: &mut Node, lookup: &dyn Fn(&str) -> Option<String>,
//!                         warnings: &mut Vec<String>) -> Result<(), (InterpolateError, Span)>;
//!
//! #[derive(Debug, Clone, PartialEq, thiserror::Error)]
//! pub enum InterpolateError {
//!     /// `${VAR:?message}` / `${VAR?message}` with VAR missing (or empty for `:?`).
//!     #[error("required variable {name} is missing a value: {message}")]
//!     Required { name: String, message: String },
//!     /// Unterminated `${`, empty name, bad characters in a name, unknown operator.
//!     #[error("invalid interpolation format for {input:?}: {reason}")]
//!     Syntax { input: String, reason: String },
//! }
//! ```
