#!/usr/bin/env bash
# Bare Traefik vs Traefik + gatetrace, same run, same loopback backend, wrk -t2 -c32,
# interleaved rounds (bare, plugin, bare, plugin, ...) so machine noise hits both alike.
# Per round it also records Traefik's CPU time per request (from /proc), which other load on a
# shared machine disturbs far less than req/s, and it plays the collector's part (counting,
# truncating and deleting closed segments), so records can be checked against requests.
#
# Usage: plugin/http-wasm/bench/traefik-bench.sh [rounds=5] [seconds=10] [results-file]
# Needs: GATETRACE_TRAEFIK (Traefik 3.7 binary), wrk (Debian), the plugin built by
# `cargo xtask wasm` (or GATETRACE_WASM_DIR pointing at gatetrace-traefik.wasm).
# GATETRACE_BENCH_VARIANT_WASM: more builds (space-separated .wasm paths) measured in the same
# interleaved rounds.
# GATETRACE_BENCH_CALIBRATE=0 skips the calibration guests, measured by default in the same
# rounds: the harness fixture guest (target/wasm/fixtures/http-guest.wasm) in its `noop` mode
# (returns `next`, nothing else), `minimal` mode (one header get/set, buffered status, one
# response header), `minimal` with one spool append per request, and `calls` mode (the plugin's
# host calls and a record-sized append, without its work). They show what Traefik's wasm
# middleware, its response buffering, a spool write and the host calls cost by themselves.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ROUNDS=${1:-5}
SECS=${2:-10}
OUT=${3:-$HERE/results.md}
# Extra plugin config lines (YAML, 10 spaces deep), e.g. '          bufferResponses: never'.
EXTRA_CONFIG=${GATETRACE_BENCH_CONFIG:-}
TRAEFIK=${GATETRACE_TRAEFIK:?set GATETRACE_TRAEFIK to the traefik binary}
WASM_DIR=${GATETRACE_WASM_DIR:-$ROOT/target/wasm}
WASM=$WASM_DIR/gatetrace-traefik.wasm
[ -f "$WASM" ] || { echo "missing $WASM: run cargo xtask wasm" >&2; exit 1; }
CALIBRATE=${GATETRACE_BENCH_CALIBRATE:-1}
FIXTURE=$WASM_DIR/fixtures/http-guest.wasm
[ "$CALIBRATE" = 0 ] || [ -f "$FIXTURE" ] || { echo "missing $FIXTURE: run cargo xtask wasm" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }

# GATETRACE_BENCH_TMPDIR: where the Traefik dirs and spools go (default /tmp); e.g. /dev/shm to
# measure a spool on tmpfs.
WORK=$(mktemp -d -p "${GATETRACE_BENCH_TMPDIR:-/tmp}")
PIDS=()
cleanup() {
    # Traefik starts inside $(...) subshells: their pids are in files, not in PIDS.
    for pid in "${PIDS[@]}" $(cat "$WORK"/*/pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
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

# start_traefik <name> <with-plugin 0|1> [wasm] [plugin config, YAML 10 spaces deep] → its port
start_traefik() {
    local name=$1 plugin=$2 wasm=${3:-$WASM} dir="$WORK/$1" port
    local config=${4:-"          service: bench
${EXTRA_CONFIG}
          spool:
            dir: \"$dir/spool\""}
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
$config
  services:
    backend:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$BACKEND_PORT"
EOF
    (cd "$dir" && exec "$TRAEFIK" --configFile="$dir/traefik.yml" >"$dir/traefik.log" 2>&1) &
    echo $! >"$dir/pid"
    wait_port "$port"
    wait_ok "$port"
    echo "$port"
}

BARE_PORT=$(start_traefik bare 0)
PLUGIN_PORT=$(start_traefik plugin 1)
# Optional: more builds of the plugin (space-separated .wasm paths) measured in the same
# interleaved rounds.
read -r -a VARIANT_WASMS <<<"${GATETRACE_BENCH_VARIANT_WASM:-}"
VARIANT_PORTS=()
VARIANT_NAMES=()
for i in "${!VARIANT_WASMS[@]}"; do
    VARIANT_NAMES+=("${VARIANT_WASMS[$i]}")
    VARIANT_PORTS+=("$(start_traefik "variant$i" 1 "${VARIANT_WASMS[$i]}")")
done
if [ "$CALIBRATE" != 0 ]; then
    i=${#VARIANT_PORTS[@]}
    VARIANT_NAMES+=("calibration: no-op guest")
    VARIANT_PORTS+=("$(start_traefik "variant$i" 1 "$FIXTURE" "          mode: noop")")
    VARIANT_NAMES+=("calibration: minimal guest")
    VARIANT_PORTS+=("$(start_traefik "variant$((i + 1))" 1 "$FIXTURE" "          mode: minimal")")
    VARIANT_NAMES+=("calibration: minimal guest + one spool write per request")
    VARIANT_PORTS+=("$(start_traefik "variant$((i + 2))" 1 "$FIXTURE" "          mode: minimal
          spool: \"$WORK/variant$((i + 2))/spool\"")")
    VARIANT_NAMES+=("calibration: gatetrace's host calls + a record-sized spool write, no work")
    VARIANT_PORTS+=("$(start_traefik "variant$((i + 3))" 1 "$FIXTURE" "          mode: calls
          spool: \"$WORK/variant$((i + 3))/spool\"")")
fi

# Traefik's CPU time so far (user + system, clock ticks).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$WORK/$1/pid")/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# run_wrk <port> <name> → prints req/s; appends the completed requests to $WORK/<name>.requests
# and Traefik's CPU µs per request to $WORK/<name>.cpu (less sensitive to other load than req/s).
run_wrk() {
    local out before requests
    before=$(cpu_ticks "$2")
    out=$(wrk -t2 -c32 -d"${SECS}s" "http://127.0.0.1:$1/bench")
    requests=$(echo "$out" | awk '/ requests in / {print $1}')
    echo "$requests" >>"$WORK/$2.requests"
    awk -v t="$(($(cpu_ticks "$2") - before))" -v us="$TICK_US" -v n="$requests" \
        'BEGIN {printf "%.1f\n", t * us / n}' >>"$WORK/$2.cpu"
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}

# The collector's part: count, truncate and delete segments whose window closed more than the
# grace period ago (default layout: 10 s windows, 5 s grace), so the spool never fills.
collect() {
    local spool=$1 now seg w
    now=$(date +%s)
    for seg in "$spool"/seg-*.ndjson; do
        [ -e "$seg" ] || continue
        w=${seg##*/seg-}
        w=${w%.ndjson}
        if [ $((w + 10 + 5)) -le "$now" ] || [ "${2:-}" = all ]; then
            wc -l <"$seg" >>"$spool.records"
            truncate -s 0 "$seg"
            rm -f "$seg"
        fi
    done
}
total() { awk '{s += $1} END {print s + 0}' "$1" 2>/dev/null || echo 0; }

# Warm-up (JIT-compiled guest, instance pool, connection pools), not counted.
wrk -t2 -c32 -d2s "http://127.0.0.1:$BARE_PORT/bench" >/dev/null
wrk -t2 -c32 -d2s "http://127.0.0.1:$PLUGIN_PORT/bench" >/dev/null
for port in "${VARIANT_PORTS[@]}"; do wrk -t2 -c32 -d2s "http://127.0.0.1:$port/bench" >/dev/null; done
rm -f "$WORK"/*.requests
sleep 1
# The warm-up's records, not counted (left in place: a writer may hold the current segment).
WARM_RECORDS=$(cat "$WORK/plugin/spool"/seg-*.ndjson 2>/dev/null | wc -l)

BARE=()
PLUGIN=()
for round in $(seq 1 "$ROUNDS"); do
    BARE+=("$(run_wrk "$BARE_PORT" bare)")
    collect "$WORK/plugin/spool"
    PLUGIN+=("$(run_wrk "$PLUGIN_PORT" plugin)")
    echo "round $round: bare ${BARE[-1]} req/s, plugin ${PLUGIN[-1]} req/s" >&2
    for i in "${!VARIANT_PORTS[@]}"; do
        collect "$WORK/variant$i/spool"
        echo "$(run_wrk "${VARIANT_PORTS[$i]}" "variant$i")" >>"$WORK/variant$i.rps"
        echo "round $round: variant$i $(tail -n1 "$WORK/variant$i.rps") req/s" >&2
    done
done
sleep 1 # let the last responses' records land
collect "$WORK/plugin/spool" all
RECORDS=$(($(total "$WORK/plugin/spool.records") - WARM_RECORDS))
REQUESTS=$(total "$WORK/plugin.requests")
INSTANCES=$(($(stat -c %s "$WORK/plugin/spool/claims") / 8))

# round_ratios <array name> → the median over rounds of (that array's req/s ÷ bare req/s).
round_ratios() {
    local -n runs=$1
    local ratios=() i
    for i in "${!runs[@]}"; do
        ratios+=("$(awk -v p="${runs[$i]}" -v b="${BARE[$i]}" 'BEGIN {printf "%.3f", p/b}')")
    done
    median "${ratios[@]}"
}
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
    echo "- plugin rounds: $REQUESTS requests completed (wrk), $RECORDS records in the spool," \
        "$INSTANCES plugin instances created"
    echo
    mapfile -t BARE_CPU <"$WORK/bare.cpu"
    mapfile -t PLUGIN_CPU <"$WORK/plugin.cpu"
    echo "| round | bare req/s | plugin req/s | plugin ÷ bare | Traefik CPU µs/req bare | plugin |"
    echo "|---|---|---|---|---|---|"
    for i in "${!BARE[@]}"; do
        echo "| $((i + 1)) | ${BARE[$i]} | ${PLUGIN[$i]} | $(awk -v p="${PLUGIN[$i]}" -v b="${BARE[$i]}" 'BEGIN {printf "%.3f", p/b}') | ${BARE_CPU[$i]} | ${PLUGIN_CPU[$i]} |"
    done
    echo "| **median** | **$BARE_MED** | **$PLUGIN_MED** | **$RATIO** | **$(median "${BARE_CPU[@]}")** | **$(median "${PLUGIN_CPU[@]}")** |"
    if [ "${#VARIANT_PORTS[@]}" -gt 0 ]; then
        echo
        echo "Other guests in the same rounds (medians; each round's ratio is to that round's bare run):"
        echo
        echo "| guest | req/s | ÷ bare (median of rounds) | Traefik CPU µs/req |"
        echo "|---|---|---|---|"
        echo "| gatetrace (above) | $PLUGIN_MED | $(round_ratios PLUGIN) | $(median "${PLUGIN_CPU[@]}") |"
        for i in "${!VARIANT_PORTS[@]}"; do
            mapfile -t VARIANT <"$WORK/variant$i.rps"
            mapfile -t VARIANT_CPU <"$WORK/variant$i.cpu"
            echo "| ${VARIANT_NAMES[$i]} | $(median "${VARIANT[@]}") | $(round_ratios VARIANT) |" \
                "$(median "${VARIANT_CPU[@]}") |"
        done
    fi
} >"$OUT"
cat "$OUT"
