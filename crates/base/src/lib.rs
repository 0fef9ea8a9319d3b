//! Small helpers that several berth crates need and that are too small to be worth a
//! dependency: civil dates and atomic file writes. Only `std`, so that the proxy, which may
//! not depend on other berth crates, can use it too.

#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod atomic;
pub mod civil;
