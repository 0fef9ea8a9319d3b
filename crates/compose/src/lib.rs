//! The Compose loader: reads a project exactly as Docker Compose reads it.
//!
//! Stages, in order (see [`load::load`]): discover files ▸ environment ▸ parse YAML ▸
//! interpolate ▸ validate structure ▸ resolve paths ▸ `include` ▸ merge `-f` files ▸ `extends` ▸
//! project name ▸ profiles ▸ references ▸ normalize into the typed [`model::Project`].
//! The loader does no I/O beyond reading files; the environment is handed to it.

// Only the CLI prints (ARCHITECTURE.md, invariants): a library reports through return values,
// events and the writers it is given, so that output stays the CLI's to shape and to pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod berth_ext;
pub mod discovery;
pub mod dockerfile;
pub mod dotenv;
pub mod duration;
pub mod error;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod mounts;
pub mod node;
pub mod normalize;
pub mod options;
pub mod output;
pub mod paths;
pub mod ports;
pub mod schema;
pub mod shell;
pub mod source;
pub mod suggest;
pub mod yaml;

pub use error::{LoadError, Problem};
pub use load::{load, Loaded};
pub use model::Project;
pub use options::LoadOptions;
