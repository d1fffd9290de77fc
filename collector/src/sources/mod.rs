//! Where records come in: `POST /v1/records` ([`http`]) and the spool directory the Traefik
//! plugin appends to ([`spool`]); both decode lines the same way ([`decode`]) and hand
//! [`crate::batch::RecordBatch`]es to the aggregator.

pub mod decode;
pub(crate) mod http;
pub(crate) mod spool;
