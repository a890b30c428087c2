"""Command line: ``python -m sandbox [--port N]`` serves a standalone sandbox;
``python -m sandbox load --app-url URL ...`` runs the load benchmark (see sandbox/load.py).
"""

from __future__ import annotations

import argparse
import logging
import sys

from sandbox import load
from sandbox.settings import SettingsError
from sandbox.standalone import Server, standalone_settings


def _serve(args: argparse.Namespace) -> int:
    changes: dict[str, object] = {}
    if args.time_scale is not None:
        changes["time_scale"] = args.time_scale
    if args.challenge:
        changes["challenge"] = True
    if args.initiate_url:
        # Every dialled number no application owns goes to this one.
        application = {"callInitiatedCallbackUrl": args.initiate_url}
        if args.status_url:
            application["callStatusCallbackUrl"] = args.status_url
        changes["default_application"] = application
    try:
        settings, generated = standalone_settings(database_url=args.database, **changes)
    except SettingsError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    from sandbox.core import Sandbox

    server = Server(Sandbox(settings), args.host, args.port)
    print(f"Bandwidth sandbox: Voice API at {server.api_url}", flush=True)
    print(f"  callee controls and call list: {server.control_url}/", flush=True)
    print(f"  account {settings.account_id!r}, user {settings.username!r}", flush=True)
    if generated:
        print(f"  generated password {generated!r} (set BW_PASSWORD to choose one)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.sandbox.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--time-scale", type=float, help="SANDBOX_TIME_SCALE")
    parser.add_argument("--challenge", action="store_true", help="SANDBOX_CHALLENGE")
    parser.add_argument(
        "--initiate-url", help="inbound calls to any number send initiate here (a default app)"
    )
    parser.add_argument("--status-url", help="... and their disconnect here")
    commands = parser.add_subparsers(dest="command")
    load.add_arguments(commands.add_parser("load", help="the load benchmark"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "load":
        return load.main(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
