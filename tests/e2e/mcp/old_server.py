"""The old-protocol MCP server of the end-to-end test: PyPI `mcp>=1.10,<2` FastMCP over
Streamable HTTP with sessions, answering POSTs with SSE. Tools: `progress_steps` reports
progress at once and then every 0.3 s, `ask_name` elicits input mid-call, `echo` returns its
text (its `secret` argument carries a planted secret). Every request received is logged
byte for byte (body_log.py).

Run: python old_server.py --port N --body-log FILE
"""

import argparse
import asyncio
import os
import sys

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from pydantic import BaseModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from body_log import BodyLog  # noqa: E402


class Name(BaseModel):
    name: str


def build() -> FastMCP:
    server = FastMCP("gatetrace-e2e-old", log_level="WARNING")

    @server.tool()
    async def progress_steps(steps: int, ctx: Context) -> str:
        """Reports progress at once, then after each 0.3 s step."""
        await ctx.report_progress(0, steps, "started")
        for step in range(1, steps + 1):
            await asyncio.sleep(0.3)
            await ctx.report_progress(step, steps, f"step {step}")
        return f"done after {steps} steps"

    @server.tool()
    async def ask_name(ctx: Context) -> str:
        """Asks the user for a name mid-call (elicitation) and greets it."""
        answer = await ctx.elicit("Who is asking?", schema=Name)
        if answer.action != "accept":
            return f"declined: {answer.action}"
        return f"hello {answer.data.name}"

    @server.tool()
    def echo(text: str, secret: str = "") -> str:
        """Returns `text`; `secret` is never echoed."""
        return f"{text} ({len(secret)} secret bytes)"

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-log", required=True)
    args = parser.parse_args()
    app = BodyLog(build().streamable_http_app(), args.body_log)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
