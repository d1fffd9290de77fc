"""The seed project's own auth service (PyPI `mcp-oauth-dynamicclient`, unchanged), started the
way its `mcp-oauth-server` command starts it, plus a Prometheus `/metrics` with the process's
own metrics: the package serves none, and the seed's `auth` scrape job and its ServiceDown alert
need a target. Configuration comes from the environment, as the package expects (see the
demo's xtask code for the variables it sets).

Run: python auth_service.py --port 8000   (127.0.0.1 unless --host says otherwise)
"""

import argparse

import uvicorn
from mcp_oauth_dynamicclient.config import Settings
from mcp_oauth_dynamicclient.server import create_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    args = parser.parse_args()
    app = create_app(Settings())

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
