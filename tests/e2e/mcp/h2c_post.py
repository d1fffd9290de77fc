"""HTTP/2 over cleartext (h2c, prior knowledge) for the end-to-end test: POSTs each body file
given to the gateway URL with `httpx[http2]` (`http1=False`), the MCP headers plus
`X-Probe: <file name>`, reads each answer to its end, and prints one JSON line per request
(file name, HTTP version, status, the gateway's `X-Request-Id`).

Run: python h2c_post.py --url URL --header 'Name: value' ... BODY_FILE...
"""

import argparse
import json
import os

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("bodies", nargs="+")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        for path in args.bodies:
            with open(path, "rb") as f:
                body = f.read()
            probe = os.path.basename(path)
            response = client.post(args.url, content=body, headers={**headers, "X-Probe": probe})
            line = {
                "probe": probe,
                "http_version": response.http_version,
                "status": response.status_code,
                "request_id": response.headers.get("x-request-id"),
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
