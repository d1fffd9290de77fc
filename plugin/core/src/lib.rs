//! The pure heart of gatetrace: everything both plugins and the collector must agree on.
//! No I/O, no clock, no randomness: callers pass time, entropy and an instance salt in.
//!
//! An adapter's life:
//! - at start: [`config::Config::from_json`] (refuse to run on `Err`, logging its text, which
//!   names the key) and [`ids::Instance::new`] with salt words that differ per instance;
//! - per request: [`exchange::Exchange::begin`] with the request line and a
//!   [`exchange::HeaderLookup`] → [`exchange::Exchange::upstream`] says which headers to set
//!   and whether to buffer; [`exchange::Exchange::response_headers`] once response headers
//!   are known; [`exchange::Exchange::finish`] → [`record::Record`] →
//!   [`record::Record::write_ndjson_line`];
//! - Traefik spooling: [`spool::SpoolWriter`] decides append / probe / drop; the collector
//!   reads with [`spool::next_frame`] and [`record::Record::from_ndjson_line`].

pub mod classify;
pub mod config;
pub mod exchange;
mod hash;
pub mod ids;
mod line;
pub mod mcp;
pub mod record;
pub mod route;
pub mod spool;
pub mod trace;
