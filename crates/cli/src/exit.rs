//! Exit codes, as DESIGN.md §2 fixes them.

/// The operation failed (a deploy rolled back, lint found errors, the engine is unreachable).
pub const FAILURE: u8 = 1;
/// Bad usage or bad input: an unreadable compose file, an unknown service, a bad flag.
pub const USAGE: u8 = 2;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it); what was half done was put back.
pub const INTERRUPTED: u8 = 130;
