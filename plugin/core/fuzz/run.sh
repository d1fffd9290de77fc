#!/usr/bin/env bash
# Runs each fuzz target of gatetrace-core for RUNS executions (default 10 million), one after
# another, and prints "target: executions, seconds" per target. Needs `cargo install cargo-fuzz`
# and a nightly toolchain. Corpora and crash artifacts stay in fuzz/corpus and fuzz/artifacts
# (git-ignored). Usage: plugin/core/fuzz/run.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")"
runs="${RUNS:-10000000}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config trace_context incoming_ids paths record_decode exchange mcp_request mcp_response_sse mcp_headers)
fi
mkdir -p artifacts
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log="artifacts/$target.log"
  cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -runs="$runs" -artifact_prefix="artifacts/" >"$log" 2>&1 || {
    echo "$target: FAILED (see plugin/core/fuzz/$log)"
    exit 1
  }
  echo "$target: $(grep -E '^Done' "$log")"
done
