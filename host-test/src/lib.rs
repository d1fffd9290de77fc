//! The gatetrace wasmtime harness library.
