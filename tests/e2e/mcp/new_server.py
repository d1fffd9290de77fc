"""The new-protocol MCP server of the end-to-end test: PyPI `mcp>=2,<3` (`MCPServer`,
Streamable HTTP at `/mcp2`), speaking 2026-07-28 to clients that discover it. Tools:
`progress_steps` (progress at once, then every 0.3 s) and `echo`, whose `secret` argument is
mirrored into an `Mcp-Param-Secret` header by the client (`x-mcp-header`). Every request
received is logged byte for byte (body_log.py).

Run: python new_server.py --port N --body-log FILE
"""

import argparse
import asyncio
import os
import sys
from typing import Annotated

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from body_log import BodyLog  # noqa: E402

PATH = "/mcp2"


def build() -> MCPServer:
    server = MCPServer("gatetrace-e2e-new", log_level="WARNING")

    @server.tool()
    async def progress_steps(steps: int, ctx: Context) -> str:
        """Reports progress at once, then after each 0.3 s step."""
        await ctx.report_progress(0, steps, "started")
        for step in range(1, steps + 1):
            await asyncio.sleep(0.3)
            await ctx.report_progress(step, steps, f"step {step}")
        return f"done after {steps} steps"

    @server.tool()
    def echo(
        text: str,
        secret: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Secret"})] = "",
    ) -> str:
        """Returns `text`; `secret` is never echoed."""
        return f"{text} ({len(secret)} secret bytes)"

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-log", required=True)
    args = parser.parse_args()
    app = BodyLog(build().streamable_http_app(streamable_http_path=PATH), args.body_log)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
