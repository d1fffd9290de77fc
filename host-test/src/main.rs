//! `gatetrace-host` binary.
fn main() {}
