"""ASGI middleware for the test's MCP servers: appends every request the server receives
(method, path, HTTP version, the MCP routing and `Mcp-Param-*` headers, the exact body bytes
as hex) and the status and content type it answered with, as one JSON line to a log file
when the answer starts, so the test can compare byte for byte what the client sent with what
arrived.
Shared by both servers (mcp 1.x and 2.x both serve Starlette apps)."""

import json
import os

LOGGED_HEADERS = ("mcp-method", "mcp-name", "mcp-protocol-version", "mcp-session-id", "x-probe")


class BodyLog:
    def __init__(self, app, path: str):
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        line = {
            "method": scope["method"],
            "path": scope["path"],
            "http_version": scope.get("http_version"),
            "headers": {k: v for k, v in headers.items() if k in LOGGED_HEADERS or k.startswith("mcp-param-")},
            "body_hex": body.hex(),
        }
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def note_answer(message):
            if message["type"] == "http.response.start" and "status" not in line:
                answer = {k.decode().lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
                line["status"] = message["status"]
                line["content_type"] = answer.get("content-type", "")
                with open(self.path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(line) + "\n")
                    log.flush()
                    os.fsync(log.fileno())
            await send(message)

        return await self.app(scope, replay, note_answer)
