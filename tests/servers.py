"""Real servers on 127.0.0.1 for tests: gunicorn with the shipped config."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def app_env(directory: Path, **overrides: str) -> dict[str, str]:
    """Settings for an app under gunicorn with its store in ``directory`` (the tests'
    callback credentials, dashboard login admin/dash)."""
    from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER

    return {
        "DATABASE_URL": f"sqlite:///{directory / 'events.db'}",
        "SPOOL_PATH": str(directory / "spool.jsonl"),
        "CALLBACK_USERNAME": CALLBACK_USER,
        "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
        "SECRET_KEY": "deploy-test",
        "DASHBOARD_PASSWORD": "dash",
        **overrides,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], *, workers: int = 2, app: str = "app:create_app()", port: int | None = None
) -> Iterator[str]:
    """Run gunicorn with gunicorn.conf.py on 127.0.0.1; yields its base URL."""
    port = port or free_port()
    full_env = {
        **os.environ,
        **env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(workers),
    }
    # Logs go to a file, never to an unread pipe: a full pipe would block the workers.
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", app],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/callbacks/")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)
