//! The gatetrace collector library.

pub mod export;
