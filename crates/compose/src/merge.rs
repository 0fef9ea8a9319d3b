//! Merging several Compose files (compose-spec 13-merge.md), also used by `extends`.
//!
//! CONTRACT (implemented by the merge work item):
//!
//! ```ignore
//! /// Merges the top-level tree `over` (a later -f file) into `base`. Both are top-level mappings
//! /// as parsed and interpolated (short syntax still present). Honours `!reset` and `!override`
//! /// tags on any node of `over`, and removes every tag from the result.
//! pub fn merge_files(base: Node, over: Node) -> Node;
//!
//! /// Merges one service definition `over` into `base` with the same rules as under
//! /// `services.*` (used by `extends`, where the extending service is `over`).
//! pub fn merge_service(base: Node, over: Node) -> Node;
//! ```
