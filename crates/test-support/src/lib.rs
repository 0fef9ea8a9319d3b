//! Helpers shared by berth tests.
