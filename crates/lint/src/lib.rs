//! The production-safety linter: rules over a loaded Compose project.
