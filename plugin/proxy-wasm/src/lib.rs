//! gatetrace plugin for proxy-wasm hosts (Envoy, Istio, Kong).
