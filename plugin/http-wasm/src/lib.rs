//! gatetrace plugin for Traefik (http-wasm ABI).
