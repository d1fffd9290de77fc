#!/usr/bin/env bash
# Bare Traefik vs Traefik + gatetrace, same run, same loopback backend, wrk -t2 -c32,
# interleaved rounds (bare, plugin, bare, plugin, ...) so machine noise hits both alike.
#
# Usage: plugin/http-wasm/bench/traefik-bench.sh [rounds=5] [seconds=10] [results-file]
# Needs: GATETRACE_TRAEFIK (Traefik 3.7 binary), wrk (Debian), the plugin built by
# `cargo xtask wasm` (or GATETRACE_WASM_DIR pointing at gatetrace-traefik.wasm).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ROUNDS=${1:-5}
SECS=${2:-10}
OUT=${3:-$HERE/results.md}
# Extra plugin config lines (YAML, 10 spaces deep), e.g. '          bufferResponses: never'.
EXTRA_CONFIG=${GATETRACE_BENCH_CONFIG:-}
TRAEFIK=${GATETRACE_TRAEFIK:?set GATETRACE_TRAEFIK to the traefik binary}
WASM=${GATETRACE_WASM_DIR:-$ROOT/target/wasm}/gatetrace-traefik.wasm
[ -f "$WASM" ] || { echo "missing $WASM: run cargo xtask wasm" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 400); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2; exit 1
}
wait_ok() {
    for _ in $(seq 1 400); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/")" = 200 ] && return 0
        sleep 0.05
    done
    echo "route on $1 never answered 200" >&2; exit 1
}

# Backend: a small keep-alive server (release build of this crate's example).
cargo build --quiet --release --example bench_backend -p gatetrace-traefik
BACKEND_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_backend
BACKEND_PORT=$(free_port)
"$BACKEND_BIN" "$BACKEND_PORT" & PIDS+=($!)
wait_port "$BACKEND_PORT"

# start_traefik <name> <with-plugin 0|1> [wasm] → prints its port
start_traefik() {
    local name=$1 plugin=$2 wasm=${3:-$WASM} dir="$WORK/$1" port
    port=$(free_port)
    mkdir -p "$dir/plugins-local/src/gatetrace" "$dir/spool"
    cp "$wasm" "$dir/plugins-local/src/gatetrace/plugin.wasm"
    cp "$HERE/../.traefik.yml" "$dir/plugins-local/src/gatetrace/.traefik.yml"
    local middlewares="" plugin_static=""
    if [ "$plugin" = 1 ]; then
        middlewares="      middlewares: [gatetrace]"
        plugin_static="experimental:
  localPlugins:
    gatetrace:
      moduleName: gatetrace
      settings:
        mounts: [\"$dir/spool\"]"
    fi
    cat >"$dir/traefik.yml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$port"
providers:
  file:
    filename: "$dir/dynamic.yml"
log:
  level: ERROR
$plugin_static
EOF
    cat >"$dir/dynamic.yml" <<EOF
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      entryPoints: [web]
      service: backend
$middlewares
  middlewares:
    gatetrace:
      plugin:
        gatetrace:
          service: bench
${EXTRA_CONFIG}
          spool:
            dir: "$dir/spool"
  services:
    backend:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$BACKEND_PORT"
EOF
    (cd "$dir" && exec "$TRAEFIK" --configFile="$dir/traefik.yml" >"$dir/traefik.log" 2>&1) &
    PIDS+=($!)
    wait_port "$port"
    wait_ok "$port"
    echo "$port"
}

BARE_PORT=$(start_traefik bare 0)
PLUGIN_PORT=$(start_traefik plugin 1)
# Optional: a second build of the plugin measured in the same interleaved rounds.
VARIANT_WASM=${GATETRACE_BENCH_VARIANT_WASM:-}
[ -n "$VARIANT_WASM" ] && VARIANT_PORT=$(start_traefik variant 1 "$VARIANT_WASM")

run_wrk() { wrk -t2 -c32 -d"${SECS}s" "http://127.0.0.1:$1/bench" | awk '/Requests\/sec/ {print $2}'; }

# Warm-up (JIT-compiled guest, instance pool, connection pools), not counted.
wrk -t2 -c32 -d2s "http://127.0.0.1:$BARE_PORT/bench" >/dev/null
wrk -t2 -c32 -d2s "http://127.0.0.1:$PLUGIN_PORT/bench" >/dev/null

BARE=()
PLUGIN=()
VARIANT=()
for round in $(seq 1 "$ROUNDS"); do
    BARE+=("$(run_wrk "$BARE_PORT")")
    rm -f "$WORK/plugin/spool"/seg-*.ndjson # the collector's job: keep the spool from filling
    PLUGIN+=("$(run_wrk "$PLUGIN_PORT")")
    echo "round $round: bare ${BARE[-1]} req/s, plugin ${PLUGIN[-1]} req/s" >&2
    if [ -n "$VARIANT_WASM" ]; then
        rm -f "$WORK/variant/spool"/seg-*.ndjson
        VARIANT+=("$(run_wrk "$VARIANT_PORT")")
        echo "round $round: variant ${VARIANT[-1]} req/s" >&2
    fi
done
RECORDS=$(cat "$WORK/plugin/spool"/seg-*.ndjson 2>/dev/null | wc -l)

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
BARE_MED=$(median "${BARE[@]}")
PLUGIN_MED=$(median "${PLUGIN[@]}")
RATIO=$(awk -v p="$PLUGIN_MED" -v b="$BARE_MED" 'BEGIN {printf "%.3f", p/b}')

{
    echo "# gatetrace in Traefik: bare vs plugin"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- traefik: $("$TRAEFIK" version | awk '/Version/ {print $2}'), wasm: $(stat -c %s "$WASM") bytes"
    echo "- machine: $(nproc) cores, shared; loopback; wrk -t2 -c32 -d${SECS}s, ${ROUNDS} interleaved rounds"
    echo "- plugin config: service, spool dir (all else default: bufferResponses auto → every"
    echo "  request buffered for its status, ids + traceparent set, one spool append per request)"
    echo "- extra plugin config: ${EXTRA_CONFIG:-none}"
    echo "- records written in the last plugin round: $RECORDS"
    echo
    echo "| round | bare req/s | plugin req/s | plugin ÷ bare |"
    echo "|---|---|---|---|"
    for i in "${!BARE[@]}"; do
        echo "| $((i + 1)) | ${BARE[$i]} | ${PLUGIN[$i]} | $(awk -v p="${PLUGIN[$i]}" -v b="${BARE[$i]}" 'BEGIN {printf "%.3f", p/b}') |"
    done
    echo "| **median** | **$BARE_MED** | **$PLUGIN_MED** | **$RATIO** |"
    if [ -n "$VARIANT_WASM" ]; then
        VARIANT_MED=$(median "${VARIANT[@]}")
        echo
        echo "Variant $VARIANT_WASM: rounds ${VARIANT[*]} req/s, median $VARIANT_MED," \
            "÷ bare $(awk -v p="$VARIANT_MED" -v b="$BARE_MED" 'BEGIN {printf "%.3f", p/b}')"
    fi
} >"$OUT"
cat "$OUT"
