"""The old-protocol client traffic of the end-to-end test, through the gateway: PyPI
`mcp>=1.10,<2` (`streamablehttp_client`, `ClientSession`) with a valid token: initialize,
tools/list, `progress_steps` with a `progress_callback`, `ask_name` with an
`elicitation_callback`, `echo` with a secret argument, then the session ends (DELETE). Then
the same initialize without a token and with a bad token, which ForwardAuth refuses.
Prints one JSON line: what it did and saw.

Run: python old_client.py --url http://127.0.0.1:PORT/mcp --token T --secret S
"""

import argparse
import asyncio
import json

import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client


async def session(url: str, token: str | None, secret: str, seen: dict) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with streamablehttp_client(url, headers=headers) as (read, write, get_session_id):
        progress = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        async def on_elicit(context, params: types.ElicitRequestParams) -> types.ElicitResult:
            seen["elicitations"] += 1
            return types.ElicitResult(action="accept", content={"name": "gatetrace"})

        async with ClientSession(read, write, elicitation_callback=on_elicit) as mcp:
            await mcp.initialize()
            seen["session_ids"].append(get_session_id())
            tools = await mcp.list_tools()
            seen["tools"] = sorted(t.name for t in tools.tools)
            result = await mcp.call_tool("progress_steps", {"steps": 3}, progress_callback=on_progress)
            seen["progress_result"] = result.content[0].text
            seen["progress_updates"] = len(progress)
            result = await mcp.call_tool("ask_name", {})
            seen["elicit_result"] = result.content[0].text
            result = await mcp.call_tool("echo", {"text": "hi", "secret": secret})
            seen["echo_result"] = result.content[0].text


async def refused(url: str, token: str | None) -> int | None:
    try:
        async with streamablehttp_client(url, headers={"Authorization": f"Bearer {token}"} if token else {}) as (read, write, _):
            async with ClientSession(read, write) as mcp:
                await asyncio.wait_for(mcp.initialize(), 5)
    except BaseException as error:  # the SDK raises the 401 inside a task group
        text = repr(error)
        for status in (401, 403):
            if str(status) in text:
                return status
        return -1
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--bad-token", required=True)
    args = parser.parse_args()
    seen = {"elicitations": 0, "session_ids": []}
    await session(args.url, args.token, args.secret, seen)
    seen["missing_token"] = await refused(args.url, None)
    seen["bad_token"] = await refused(args.url, args.bad_token)
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
