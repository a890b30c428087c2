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
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


# Ports this test process keeps: bound for as long as it runs, so no other server takes them.
_KEPT: list[socket.socket] = []


def listening_socket(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1, on ``port`` (0: one the kernel chose): bound once and
    handed to the server (``serve_on``, ``gunicorn(sock=...)``), so no other process can take
    the port between choosing it and serving on it."""
    sock = socket.socket()
    if port:  # a port named by hand (benchmarks) may still be in TIME_WAIT from a last run
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections: bound but not listening, and kept for
    the rest of the test run, so no server can appear on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _KEPT.append(sock)
    return port_of(sock)


def serve_on(sock: socket.socket, app: Any, **options: Any) -> Any:
    """A werkzeug server for ``app`` on ``sock`` (from listening_socket), which it takes over."""
    from werkzeug.serving import make_server

    host, port = sock.getsockname()[:2]
    server = make_server(host, port, app, fd=sock.fileno(), **options)
    sock.close()  # the server holds its own copy
    return server


def gunicorn_bind(sock: socket.socket) -> dict[str, str]:
    """The environment that makes gunicorn (gunicorn.conf.py) serve on ``sock``: pass
    ``pass_fds=(sock.fileno(),)`` to the Popen as well."""
    return {"GUNICORN_BIND": f"fd://{sock.fileno()}"}


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
    sock: socket.socket | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run gunicorn with gunicorn.conf.py on ``sock`` (default: a new listening_socket());
    yields its base URL.  Its output goes to ``log_path`` (kept) or a temporary file."""
    sock = sock or listening_socket()
    port = port_of(sock)
    full_env = {
        **os.environ,
        # HOST/PORT as a deployment sets them (the app derives its default public URL from
        # them); the socket itself is handed over.
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **env,
        **gunicorn_bind(sock),
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
        pass_fds=(sock.fileno(),),
    )
    sock.close()  # gunicorn has it now: the port closes when gunicorn exits
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
