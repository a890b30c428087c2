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
    env: dict[str, str],
    *,
    workers: int = 2,
    app: str = "app:create_app()",
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run gunicorn with gunicorn.conf.py on 127.0.0.1; yields its base URL.  Its output
    goes to ``log_path`` (kept) or a temporary file (removed)."""
    port = port or free_port()
    full_env = {
        **os.environ,
        **env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(workers),
    }
    # Logs go to a file, never to an unread pipe: a full pipe would block the workers.
    log = (
        open(log_path, "wb")
        if log_path is not None
        else tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
    )
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
        if log_path is None:
            os.unlink(log.name)
