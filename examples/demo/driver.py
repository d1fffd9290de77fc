"""The demo's traffic: what MCP clients and their users do at an MCP OAuth gateway, through
real Traefik, against the seed's real auth service and a real FastMCP server.

Each client: discovers the authorization server, registers (RFC 7591), authorizes with PKCE,
gets a token and uses it for MCP sessions (official `mcp` client: initialize, SSE stream,
tool calls with progress, a failing tool, DELETE at the end). Mixed in: bad registrations,
token requests with a wrong code or secret, refreshes, MCP requests without or with a
revoked-looking token, callbacks with an unknown state, RFC 7592 reads.

The one step played here is GitHub's login: `/authorize` redirects the browser to GitHub,
whose callback (`/callback`) would store an authorization code in Redis under
`oauth:code:<code>` (the pending request from `oauth:state:<state>` plus the GitHub user) and
delete the state. The driver stores exactly that, then uses the real `/token`. It never sends
a valid state to `/callback` (that would make the auth service call GitHub).

Phases: `--mix-secs` of the full mix, then the line `driver: mix done` while `--open-sessions`
sessions stay open; with `--keep`, light traffic continues. SIGTERM (or SIGINT) closes the
open sessions (DELETE) and exits 0.

Run: python driver.py --gateway http://127.0.0.1:8080 --redis redis://127.0.0.1:6379/0
"""

import argparse
import asyncio
import base64
import hashlib
import json
import random
import secrets
import signal
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from urllib.parse import parse_qs, urlparse

import httpx
import redis.asyncio as redis
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

REDIRECT_URI = "http://127.0.0.1:53682/callback"
MCP_ACCEPT = "application/json, text/event-stream"
# The GitHub user the played login returns.
# Longest wait for one tool call's answer, and for one whole short session.
CALL_TIMEOUT_SECS = 5
SESSION_TIMEOUT_SECS = 20
GITHUB_USER = {"id": 4242, "login": "demo-user", "email": "demo@example.com", "name": "Demo User"}

stats: Counter = Counter()


def say(text: str) -> None:
    print(f"driver: {text}", flush=True)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Gateway:
    """One OAuth client of the gateway (registration, tokens), over plain HTTP."""

    def __init__(self, http: httpx.AsyncClient, store: redis.Redis):
        self.http = http
        self.store = store

    async def discover(self) -> None:
        r = await self.http.get("/.well-known/oauth-authorization-server")
        r.raise_for_status()
        stats["discovery"] += 1

    async def register(self, name: str) -> dict:
        r = await self.http.post(
            "/register", json={"redirect_uris": [REDIRECT_URI], "client_name": name}
        )
        if r.status_code != 201:
            raise RuntimeError(f"/register answered {r.status_code}: {r.text[:200]}")
        stats["registrations"] += 1
        return r.json()

    async def bad_registration(self) -> None:
        body = random.choice([{"client_name": "no redirect"}, {"redirect_uris": ["http://evil.example/cb"]}])
        r = await self.http.post("/register", json=body)
        assert r.status_code == 400, r.status_code
        stats["registrations refused"] += 1

    async def read_registration(self, client: dict) -> None:
        r = await self.http.get(
            f"/register/{client['client_id']}",
            headers={"Authorization": f"Bearer {client['registration_access_token']}"},
        )
        r.raise_for_status()
        stats["registration reads"] += 1

    async def play_github_login(self, location: str) -> str:
        """What GitHub's login plus the auth service's `/callback` leave behind: a code."""
        state = parse_qs(urlparse(location).query)["state"][0]
        pending = await self.store.get(f"oauth:state:{state}")
        if pending is None:
            raise RuntimeError("the auth service stored no state for /authorize")
        code = secrets.token_urlsafe(32)
        code_data = {
            **json.loads(pending),
            "user_id": str(GITHUB_USER["id"]),
            "username": GITHUB_USER["login"],
            "email": GITHUB_USER["email"],
            "name": GITHUB_USER["name"],
        }
        await self.store.set(f"oauth:code:{code}", json.dumps(code_data), ex=31536000)
        await self.store.delete(f"oauth:state:{state}")
        return code

    async def authorize(self, client: dict) -> dict:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        r = await self.http.get(
            "/authorize",
            params={
                "client_id": client["client_id"],
                "redirect_uri": REDIRECT_URI,
                "response_type": "code",
                "scope": "openid profile email",
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        if r.status_code not in (302, 307):
            raise RuntimeError(f"/authorize answered {r.status_code}: {r.text[:200]}")
        code = await self.play_github_login(r.headers["location"])
        r = await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
                "code_verifier": verifier,
            },
        )
        if r.status_code != 200:
            raise RuntimeError(f"/token answered {r.status_code}: {r.text[:200]}")
        stats["tokens issued"] += 1
        return r.json()

    async def refresh(self, client: dict, tokens: dict) -> None:
        r = await self.http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
        )
        r.raise_for_status()
        stats["tokens refreshed"] += 1

    async def failed_token_requests(self, client: dict) -> None:
        r = await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": secrets.token_urlsafe(32),
                "redirect_uri": REDIRECT_URI,
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
                "code_verifier": secrets.token_urlsafe(48),
            },
        )
        assert r.status_code == 400, r.status_code
        r = await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": "x",
                "client_id": client["client_id"],
                "client_secret": "wrong-secret",
            },
        )
        assert r.status_code == 401, r.status_code
        stats["token requests refused"] += 2

    async def unknown_callback(self) -> None:
        # An expired or forged state: the auth service answers at once, without GitHub.
        r = await self.http.get(
            "/callback", params={"code": secrets.token_urlsafe(16), "state": secrets.token_urlsafe(32)}
        )
        assert r.status_code == 302, r.status_code
        stats["callbacks refused"] += 1

    async def mcp_without_valid_token(self) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "no-token-client", "version": "1"}}}
        for headers in ({}, {"Authorization": "Bearer " + secrets.token_urlsafe(40)}):
            r = await self.http.post("/mcp", json=body, headers={"Accept": MCP_ACCEPT, **headers})
            assert r.status_code == 401, r.status_code
            stats["mcp refused (401)"] += 1


async def mcp_session(base: str, token: str, calls: int, hold: asyncio.Event | None) -> None:
    """One MCP session with the official client; stays open until `hold` is set, if given."""
    headers = {"Authorization": f"Bearer {token}"}
    async with AsyncExitStack() as stack:
        read, write, _ = await stack.enter_async_context(
            streamablehttp_client(f"{base}/mcp", headers=headers)
        )
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        stats["mcp sessions"] += 1
        tools = await session.list_tools()
        assert {t.name for t in tools.tools} >= {"add", "slow_report", "flaky_lookup"}

        async def progress(done: float, total: float | None, message: str | None) -> None:
            stats["progress notifications"] += 1

        for _ in range(calls):
            pick = random.random()
            if pick < 0.45:
                call = session.call_tool("add", {"a": random.randint(1, 99), "b": 1})
            elif pick < 0.7:
                call = session.call_tool("search_docs", {"query": random.choice(["token", "mcp", "verify"])})
            elif pick < 0.85:
                call = session.call_tool(
                    "slow_report", {"steps": random.randint(2, 4)}, progress_callback=progress
                )
            else:
                call = session.call_tool("flaky_lookup", {"key": "k"})
            try:
                result = await asyncio.wait_for(call, CALL_TIMEOUT_SECS)
            except TimeoutError:
                # Seldom, a tools/call answer never arrives through the gateway (seen with the
                # Python SDK behind Traefik, with or without gatetrace): count it, end the session.
                stats["tool answers lost"] += 1
                break
            stats["tool calls"] += 1
            if result.isError:
                stats["tool errors"] += 1
        if hold is not None:
            await hold.wait()


async def client_round(gw: Gateway, base: str, n: int) -> None:
    """One client from discovery to MCP calls, with the mistakes real clients make."""
    await gw.discover()
    client = await gw.register(f"demo-client-{n}")
    if n % 3 == 0:
        await gw.bad_registration()
    tokens = await gw.authorize(client)
    if n % 2 == 0:
        await gw.failed_token_requests(client)
    if n % 3 == 1:
        await gw.refresh(client, tokens)
        await gw.read_registration(client)
    if n % 4 == 0:
        await gw.unknown_callback()
    await gw.mcp_without_valid_token()
    try:
        await asyncio.wait_for(
            mcp_session(base, tokens["access_token"], calls=random.randint(2, 5), hold=None),
            SESSION_TIMEOUT_SECS,
        )
    except TimeoutError:
        stats["sessions timed out"] += 1


async def run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    random.seed(args.seed)
    store = redis.from_url(args.redis, decode_responses=True)
    limits = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=args.gateway, timeout=limits) as http:
        gw = Gateway(http, store)
        started = time.monotonic()
        # Sessions that stay open while the operator looks at the figures.
        hold = asyncio.Event()
        held = []
        for n in range(args.open_sessions):
            client = await gw.register(f"long-lived-{n}")
            tokens = await gw.authorize(client)
            held.append(asyncio.create_task(mcp_session(args.gateway, tokens["access_token"], 2, hold)))

        counter = iter(range(1_000_000))
        last_report = started

        async def worker(deadline: float, pause: float) -> None:
            nonlocal last_report
            while time.monotonic() < deadline and not stop.is_set():
                await client_round(gw, args.gateway, next(counter))
                now = time.monotonic()
                if now - last_report >= 5:
                    last_report = now
                    say(f"{now - started:4.0f} s: " + summary())
                if pause:
                    try:
                        await asyncio.wait_for(stop.wait(), pause)
                    except TimeoutError:
                        pass

        deadline = started + args.mix_secs
        await asyncio.gather(*(worker(deadline, 0.0) for _ in range(args.workers)))
        for task in held:
            if task.done():
                task.result()  # a session that failed fails the demo
        say(f"mix done after {time.monotonic() - started:.0f} s: " + summary())
        if args.keep:
            await worker(float("inf"), 2.0)
        await stop.wait()
        hold.set()
        await asyncio.wait_for(asyncio.gather(*held), 15)
        say(f"closed {len(held)} open sessions")
    await store.aclose()


def summary() -> str:
    keys = ["registrations", "tokens issued", "token requests refused", "mcp refused (401)",
            "mcp sessions", "tool calls", "tool errors", "progress notifications"]
    rare = ["tool answers lost", "sessions timed out"]
    return ", ".join(f"{stats[k]} {k}" for k in keys + [k for k in rare if stats[k]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True, help="Traefik's web entrypoint, http://127.0.0.1:PORT")
    parser.add_argument("--redis", required=True, help="the auth service's Redis, redis://127.0.0.1:PORT/0")
    parser.add_argument("--mix-secs", type=float, default=25.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--open-sessions", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="light traffic after the mix, until SIGTERM")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    for name in ("gateway", "redis"):
        host = urlparse(getattr(args, name)).hostname
        if host not in ("127.0.0.1", "localhost"):
            sys.exit(f"driver: --{name} must be on loopback, not {host}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
