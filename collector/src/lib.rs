//! The gatetrace collector library.
