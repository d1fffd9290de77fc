"""The MCP server behind the demo gateway: a real FastMCP server (official `mcp` SDK,
streamable HTTP with sessions and SSE) with a few tools — one fast, one that searches, one
slow that reports progress, one that always fails — plus `/health` and a Prometheus
`/metrics` (the process's own metrics, for the `mcp` scrape job and its alerts).

Run: python mcp_server.py --port 8001   (127.0.0.1 unless --host says otherwise)
"""

import argparse
import asyncio

from mcp.server.fastmcp import Context, FastMCP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

DOCS = {
    "register": "POST /register with redirect_uris creates an OAuth client (RFC 7591).",
    "token": "POST /token exchanges an authorization code and a PKCE verifier for a token.",
    "verify": "GET /verify checks a bearer token for Traefik's ForwardAuth.",
    "sessions": "MCP sessions start with initialize and end with DELETE.",
}


def build(host: str, port: int) -> FastMCP:
    server = FastMCP("gatetrace-demo", host=host, port=port, log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    @server.tool()
    async def search_docs(query: str) -> list[str]:
        """Finds the gateway's doc snippets that mention `query`."""
        await asyncio.sleep(0.02)
        return [text for key, text in DOCS.items() if query.lower() in (key + text).lower()]

    @server.tool()
    async def slow_report(steps: int, ctx: Context) -> str:
        """Builds a report in `steps` steps (0.25 s each), reporting progress after each."""
        steps = max(1, min(steps, 8))
        for step in range(1, steps + 1):
            await asyncio.sleep(0.25)
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
        return f"report ready after {steps} steps"

    @server.tool()
    def flaky_lookup(key: str) -> str:
        """Looks `key` up in a backend that is down: always fails (a tool error)."""
        raise RuntimeError(f"backend unavailable for {key!r}")

    @server.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @server.custom_route("/metrics", methods=["GET"])
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    args = parser.parse_args()
    build(args.host, args.port).run(transport="streamable-http")


if __name__ == "__main__":
    main()
