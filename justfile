# Operator recipes for gatetrace, after the seed project's (`just --list`). Each is a thin
# wrapper: the ones that look at a running stack read its URLs from the demo's `demo.env`
# (`cargo xtask demo --keep` writes target/demo/demo.env; set GATETRACE_DEMO_ENV for another);
# monitoring-up/-down drive the compose stack in examples/compose (needs Docker).

set shell := ["bash", "-euo", "pipefail", "-c"]

demo_env := env("GATETRACE_DEMO_ENV", justfile_directory() / "target/demo/demo.env")
load_demo := "test -f '" + demo_env + "' || { echo 'no running demo: start `cargo xtask demo --keep` first (" + demo_env + " is missing)' >&2; exit 1; }; source '" + demo_env + "'"
compose := "docker compose -f '" + justfile_directory() / "examples/compose/docker-compose.yml" + "'"

# List the recipes.
default:
    @just --list

# The gateway in miniature, driven by real traffic (`just demo --keep` leaves it running).
demo *args:
    cargo xtask demo {{ args }}

# Every check: fmt, clippy, wasm builds, tool installs, every test (e2e included).
test:
    cargo xtask test

# Is every service of the running stack answering?
health-check:
    #!/usr/bin/env bash
    set -uo pipefail
    {{ load_demo }}
    failed=0
    for check in \
        "collector $COLLECTOR_URL/health" "collector-ready $COLLECTOR_URL/ready" \
        "traefik $TRAEFIK_API_URL/ping" \
        "gateway $GATEWAY_URL/.well-known/oauth-authorization-server" \
        "auth $AUTH_URL/.well-known/oauth-authorization-server" "mcp $MCP_URL/health" \
        "prometheus $PROMETHEUS_URL/-/ready" "redis-exporter $REDIS_EXPORTER_URL/metrics" \
        "node-exporter $NODE_EXPORTER_URL/metrics" "blackbox-exporter $BLACKBOX_URL/metrics"; do
        set -- $check
        if code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$2") && [ "$code" = 200 ]; then
            echo "ok    $1  $2"
        else
            echo "FAIL  $1  $2 ($code)"; failed=1
        fi
    done
    exit $failed

# The last lines of the stack's logs (`just logs traefik 50`; `access` for the access lines).
logs service="*" lines="20":
    @{{ load_demo }}; tail -n {{ lines }} "$DEMO_LOGS"/{{ service }}.*

# CPU and memory of the stack's processes.
stats:
    @{{ load_demo }}; ps -o pid,pcpu,rss,etime,args -p "${DEMO_PIDS// /,}" | cut -c1-160

# The gateway's metrics as the collector serves them (request metrics and its own health).
metrics:
    @{{ load_demo }}; curl -fsS --max-time 5 "$COLLECTOR_URL/metrics" | grep -E '^(# TYPE )?(mcp_oauth_|gatetrace_collector_)'

# Alert states from Prometheus (pending and firing).
alerts:
    @{{ load_demo }}; curl -fsS --max-time 5 "$PROMETHEUS_URL/api/v1/alerts" | python3 -c 'import json, sys; alerts = json.load(sys.stdin)["data"]["alerts"]; [print(a["state"].ljust(8), a["labels"]["alertname"].ljust(28), " ".join(k + "=" + v for k, v in a["labels"].items() if k not in ("alertname", "severity"))) for a in alerts]; alerts or print("no pending or firing alerts")'

# Start the whole monitored stack in containers (examples/compose; needs Docker).
monitoring-up:
    cargo xtask wasm
    {{ compose }} up -d --build

# Stop the compose stack (volumes are kept; add `-v` to drop them).
monitoring-down *args:
    {{ compose }} down {{ args }}
