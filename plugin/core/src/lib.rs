//! The pure heart of gatetrace: everything both plugins and the collector must agree on.
//! No I/O, no clock, no randomness: callers pass time, entropy and an instance salt in.

pub mod record;
pub mod spool;
