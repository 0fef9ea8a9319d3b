//! The Compose loader: reads a project exactly as Docker Compose reads it.
//!
//! Stages, in order: discover files ▸ parse YAML ▸ interpolate ▸ `include` ▸ merge `-f` files ▸
//! `extends` ▸ validate ▸ profiles ▸ normalize into the typed [`model::Project`].
//! The loader does no I/O beyond reading files and the environment it is handed.

pub mod dotenv;
pub mod interpolate;
pub mod merge;
pub mod node;
pub mod schema;
pub mod source;
pub mod yaml;
