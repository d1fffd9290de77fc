"""A small real token verifier for Traefik's ForwardAuth: `GET /verify` checks the bearer
token's HS256 signature and expiry with PyJWT and answers 200, or 401 with an RFC 6750
challenge (`Bearer realm="mcp"` without a token, `error="invalid_token"` with a bad one).
`POST /issue` (asked directly by the test, never through the gateway) mints a valid token.
Used instead of the seed's auth service, whose tokens need Redis, an RSA key and the whole
OAuth dance with a played GitHub login; the demo-stack test covers that `/verify`.

Each verification's result (`missing`, `failure`, `success`) is appended to `--log`: the
test's own count of token results.

Run: python verifier.py --port N --log FILE
"""

import argparse
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

SECRET = secrets.token_hex(32)
LOG = {"path": ""}


def note(result: str) -> None:
    with open(LOG["path"], "a", encoding="utf-8") as log:
        log.write(result + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status: int, body: bytes = b"", challenge: str | None = None) -> None:
        self.send_response(status)
        if challenge:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/verify":
            return self.answer(404)
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            note("missing")
            return self.answer(401, b"no token", 'Bearer realm="mcp"')
        try:
            jwt.decode(auth[7:].strip(), SECRET, algorithms=["HS256"], audience="mcp")
        except jwt.PyJWTError:
            note("failure")
            return self.answer(401, b"bad token", 'Bearer realm="mcp", error="invalid_token"')
        note("success")
        return self.answer(200, b"ok")

    def do_POST(self) -> None:
        if self.path != "/issue":
            return self.answer(404)
        token = jwt.encode({"sub": "e2e", "aud": "mcp", "exp": int(time.time()) + 600}, SECRET, "HS256")
        self.answer(200, token.encode())

    def log_message(self, *_: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    LOG["path"] = args.log
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
