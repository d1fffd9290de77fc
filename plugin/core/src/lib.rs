//! The pure heart of gatetrace: everything both plugins and the collector must agree on.
//! No I/O, no clock, no randomness: callers pass time, entropy and an instance salt in.
//!
//! An adapter's life:
//! - at start: [`config::Config::from_json`] (refuse to run on `Err`, logging its text, which
//!   names the key) and [`ids::Instance::new`] with salt words that differ per instance;
//! - per request: [`exchange::Exchange::begin`] with the request line and a
//!   [`exchange::HeaderLookup`] → [`exchange::Exchange::upstream`] says which headers to set
//!   and whether to buffer; [`exchange::Exchange::response_headers`] once response headers
//!   are known; [`exchange::Exchange::record`] → a borrowed [`record::RecordRef`] →
//!   [`record::RecordRef::write_ndjson_line`] (or [`exchange::Exchange::finish`] → an owned
//!   [`record::Record`]);
//! - Traefik spooling: [`spool::SpoolPlan`] decides append / probe / drop and the adapter
//!   carries it out; the collector reads with [`spool::next_frame`] and
//!   [`record::Record::from_ndjson_line`].
//!
//! - proxy-wasm and JS batching: [`shipper::Shipper`] queues encoded lines and says which
//!   batch to send when; the adapter makes the calls and reports their outcome.
//!
//! Tests of every crate build their records with the `test-util` feature's
//! `Record::example(n)` and `testing::example_line(n)`.

mod bearer;
pub mod classify;
pub mod config;
pub mod exchange;
mod hash;
mod hex;
pub mod ids;
pub mod mcp;
pub mod mcp_operation;
pub mod record;
pub mod route;
pub mod shipper;
pub mod spool;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod trace;
