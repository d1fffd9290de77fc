//! `cargo xtask`: set-up and orchestration.
fn main() {}
