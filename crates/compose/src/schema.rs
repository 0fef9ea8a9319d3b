//! Structural validation of a Compose file: unknown keys, wrong types, bad enum values.
//!
//! CONTRACT (implemented by the schema work item):
//!
//! ```ignore
//! /// Validates one parsed and interpolated top-level file tree. Returns every problem found
//! /// (not just the first), each with the span of the offending key or value.
//! pub fn validate(root: &Node) -> Vec<SchemaError>;
//!
//! #[derive(Debug, Clone, PartialEq)]
//! pub struct SchemaError {
//!     /// Dotted key path, e.g. `services.web.ports[0].target`.
//!     pub path: String,
//!     /// Lowercase, no trailing period, says what to do, e.g.
//!     /// "unknown key `pots` in service `web`; did you mean `ports`?"
//!     pub message: String,
//!     pub span: Span,
//! }
//! ```
