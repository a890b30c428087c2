"""Sandbox load benchmark: the app under gunicorn, driven by ``python -m sandbox load``.

    python bench/sandbox_load.py [--calls 1000] [--concurrency 100] [--workers 2] [--json]

Starts gunicorn with gunicorn.conf.py and a temporary SQLite database (PUBLIC_BASE_URL set
to it, so the example menu's gatherUrl comes back to it), then runs answer -> gather ->
disconnect calls from an in-process standalone sandbox and prints calls/s, callback latency
percentiles, callback errors and events lost (read back from the app's store).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.load import print_figures, run_load  # noqa: E402

CALLBACK_USER = "bandwidth"
CALLBACK_PASSWORD = "bench-callback-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--drivers", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--time-scale", type=float, default=0.001)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-load-") as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        database = f"sqlite:///{Path(tmp) / 'events.db'}"
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "SPOOL_PATH": str(Path(tmp) / "spool.jsonl"),
            "CALLBACK_USERNAME": CALLBACK_USER,
            "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
            "SECRET_KEY": "sandbox-load-bench",
            "DASHBOARD_PASSWORD": "bench-dashboard",
            "PUBLIC_BASE_URL": base,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(args.workers),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_up(base + "/callbacks/")
            figures = run_load(
                app_url=base,
                calls=args.calls,
                concurrency=args.concurrency,
                drivers=args.drivers,
                callback_user=CALLBACK_USER,
                callback_password=CALLBACK_PASSWORD,
                app_database=database,
                time_scale=args.time_scale,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"app: gunicorn gthread, {args.workers} workers, SQLite (WAL), {os.cpu_count()} CPUs")
    print_figures(figures, as_json=args.json)
    failed = figures["callback_errors"] or figures["events_lost"] or figures["unfinished_calls"]
    return 1 if failed else 0


def _wait_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"the app at {url} did not start")


if __name__ == "__main__":
    sys.exit(main())
