//! The only crate that talks to the Docker Engine.
