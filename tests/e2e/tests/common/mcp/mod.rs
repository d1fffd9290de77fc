//! The rig of `mcp_traefik.rs`: the running stack, raw HTTP on loopback, and readers of what
//! the gateway side reported.

pub mod observed;
// The collector tests' own receiver file; this test uses its HTTP receiver only.
#[allow(dead_code)]
#[path = "../../../../../collector/tests/common/otlp_receiver.rs"]
pub mod otlp_receiver;
pub mod stack;
pub mod wire;
