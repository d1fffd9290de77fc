//! gatetrace's system tests live in `tests/`: each file drives real programs (Traefik,
//! Prometheus, promtool, amtool, just, the demo stack, the MCP SDKs of `mcp/`) against the
//! repository's examples and the built plugins.
