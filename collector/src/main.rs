//! `gatetrace-collector` binary.
fn main() {}
