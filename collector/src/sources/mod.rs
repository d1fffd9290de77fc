//! Where records come in: `POST /v1/records` (`http.rs`) and the spool directory the Traefik
//! plugin appends to (`spool.rs`); both decode lines the same way ([`decode`]) and hand record
//! batches (`crate::batch`) to the aggregator.

pub mod decode;
pub(crate) mod http;
pub(crate) mod spool;
