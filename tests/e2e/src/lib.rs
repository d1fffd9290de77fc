//! gatetrace's system tests live in `tests/`: each file drives real programs (Traefik,
//! Prometheus, promtool, amtool, just, the demo stack) against the repository's examples.
