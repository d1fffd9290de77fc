#!/usr/bin/env bash
# Ingest benchmark on ONE core: records parsed+validated+aggregated per second against
# serde_json alone on the same NDJSON bytes, the real spool pipeline end to end, and memory.
# Usage: collector/bench/run.sh [RECORDS]   (writes collector/bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
records="${1:-1000000}"
cargo build --release -p gatetrace-collector --example ingest_bench
bin="${CARGO_TARGET_DIR:-target}/release/examples/ingest_bench"
pin=(taskset -c 0)
command -v taskset >/dev/null || pin=()
out=collector/bench/RESULTS.md
{
  echo "# Collector ingest benchmark"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), records: $records, pinned: ${pin[*]:-no}"
  echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores visible"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo '```'
  "${pin[@]}" "$bin" parse "$records"
  "${pin[@]}" "$bin" spool "$records"
  "${pin[@]}" "$bin" spool-logged "$records"
  echo '```'
  echo
  echo 'HTTP ingest, both cores (the 4 clients run in the same process):'
  echo
  echo '```'
  "$bin" http "$((records / 2))"
  echo '```'
} | tee "$out"
