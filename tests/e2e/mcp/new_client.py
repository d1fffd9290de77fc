"""The new-protocol client traffic of the end-to-end test, through the gateway: PyPI
`mcp>=2,<3` `Client` (mode `auto`: it probes `server/discover` and adopts 2026-07-28), with a
valid token: tools/list, `progress_steps` with a `progress_callback`, `echo` with a secret
argument that the SDK mirrors into `Mcp-Param-Secret`. Prints one JSON line.

Run: python new_client.py --url http://127.0.0.1:PORT/mcp2 --token T --secret S
"""

import argparse
import asyncio
import json

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    seen: dict = {}
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {args.token}"}, timeout=10)
    async with http:
        async with Client(streamable_http_client(args.url, http_client=http)) as client:
            seen["protocol_version"] = client.session.protocol_version if hasattr(client.session, "protocol_version") else None
            tools = await client.list_tools()
            seen["tools"] = sorted(t.name for t in tools.tools)
            progress = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            result = await client.call_tool("progress_steps", {"steps": 2}, progress_callback=on_progress)
            seen["progress_result"] = result.content[0].text
            seen["progress_updates"] = len(progress)
            result = await client.call_tool("echo", {"text": "hi", "secret": args.secret})
            seen["echo_result"] = result.content[0].text
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
