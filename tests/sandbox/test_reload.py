"""`flask run --debug` reloads on a save: the in-flight sandbox calls of the old server
process go on in the new one at once, not after their lease expires, even when the old
process could not stop them cleanly (a callback was still being handled)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from sandbox.settings import derived_password
from tests.servers import app_env, wait_until_up

ROOT = Path(__file__).resolve().parent.parent.parent
FLOW = """
import time

from bxml import Pause, Redirect, Response
from callbacks import Flow

held = Flow("held", numbers=["+12025550155"])


@held.on("initiate")
def start(event):
    return Response(Redirect(redirect_url=held.url("redirect"), **held.credentials()))


@held.on("redirect")
def slow(event):
    time.sleep({seconds})  # a slow handler (or one stopped at a breakpoint) during the save
    return Response(Pause(duration=600))
"""


def _free_port() -> int:
    # flask run binds its own socket (no fd to hand over): a port free a moment ago
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _drivers(session: requests.Session, url: str) -> list[str]:
    log = session.get(url, timeout=10).json()["log"]
    return [line["text"].split()[1] for line in log if line["text"].startswith("driver ")]


def test_a_reload_resumes_the_calls_in_the_new_server_process(tmp_path):
    flow = tmp_path / "held_flow.py"
    flow.write_text(FLOW.format(seconds=20))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **app_env(tmp_path, SECRET_KEY="reload-test"),
        "PUBLIC_BASE_URL": base,
        "FLASK_RUN_PORT": str(port),
        "VOICE_FLOWS": "held_flow",
        "SANDBOX_LEASE_SECONDS": "600",  # an expired lease would take ten minutes
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "--debug"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the reloader's server process goes with the group
    )
    session = requests.Session()
    session.trust_env = False
    session.auth = ("sandbox", derived_password("reload-test"))
    try:
        wait_until_up(f"{base}/healthz")
        dialled = session.post(
            f"{base}/sandbox/sandbox-control/inbound",
            json={"to": "+12025550155", "from": "+12025550100"},
            timeout=10,
        )
        assert dialled.status_code == 201, dialled.text
        call_url = f"{base}/sandbox/sandbox-control/calls/{dialled.json()['callId']}"
        deadline = time.monotonic() + 30
        while session.get(call_url, timeout=10).json().get("activity") != "Redirect":
            assert time.monotonic() < deadline, str(session.get(call_url, timeout=10).json())
            time.sleep(0.1)
        first = _drivers(session, call_url)

        # A save while the redirect callback is being handled: the reloader restarts the
        # server, and the old process cannot wait for that callback to finish.
        flow.write_text(FLOW.format(seconds=0))
        deadline = time.monotonic() + 60
        while len(_drivers_or_none(session, call_url)) < 2:
            assert time.monotonic() < deadline, "the call was not resumed after the reload"
            time.sleep(0.2)
        resumed = _drivers(session, call_url)
        assert resumed[:1] == first and resumed[1] != first[0]
        assert resumed[1].split(":")[1] != first[0].split(":")[1]  # another process
        hung_up = session.post(f"{call_url}/hangup", json={}, timeout=10)
        assert hung_up.status_code in (200, 202, 204), hung_up.text
    finally:
        session.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


def _drivers_or_none(session: requests.Session, url: str) -> list[str]:
    """The drivers that ran the call, or [] while the server restarts."""
    try:
        return _drivers(session, url)
    except (requests.RequestException, ValueError, KeyError):
        return []
