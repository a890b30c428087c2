"""The sandbox inside the app under the shipped gunicorn settings, and the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import requests

from sandbox.settings import derived_password
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER
from tests.sandbox.conftest import FROM, TO
from tests.servers import ROOT, gunicorn, listening_socket, port_of


@pytest.mark.slow
def test_the_app_calls_its_own_sandbox_under_gunicorn(tmp_path):
    """Threads in every worker: creating a call and its callbacks never wait on each other."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{port_of(sock)}"
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CALLBACK_USERNAME": CALLBACK_USER,
        "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
        "SECRET_KEY": "gunicorn-test",
        "DASHBOARD_PASSWORD": "dash",
        "PUBLIC_BASE_URL": base,
        "VOICE_BACKEND": "sandbox",
        "SANDBOX_TIME_SCALE": "0.01",
        "SANDBOX_CALLS_PER_SECOND": "0",
    }
    auth = ("sandbox", derived_password("gunicorn-test"))
    with (
        gunicorn(env, app="tests.sandbox.gunicorn_app:create_app()", sock=sock),
        requests.Session() as http,
    ):
        http.trust_env = False
        script = http.put(
            f"{base}/sandbox/sandbox-control/callees/{TO}",
            json={"gatherDigits": ["9"]},  # the demo IVR: not a choice, goodbye
            auth=auth,
            timeout=10,
        )
        assert script.status_code == 204, script.text
        call_ids = []
        for _ in range(10):
            created = http.post(
                f"{base}/sandbox/api/v2/accounts/9900000/calls",
                json={
                    "to": TO,
                    "from": FROM,
                    "applicationId": "app-1",
                    "answerUrl": f"{base}/callbacks/answer",
                    "disconnectUrl": f"{base}/callbacks/disconnect",
                    "username": CALLBACK_USER,
                    "password": CALLBACK_PASSWORD,
                },
                auth=auth,
                timeout=10,
            )
            assert created.status_code == 201, created.text
            call_ids.append(created.json()["callId"])
        for call_id in call_ids:
            for _ in range(300):
                state = http.get(
                    f"{base}/sandbox/api/v2/accounts/9900000/calls/{call_id}", auth=auth, timeout=10
                ).json()
                if state["state"] == "disconnected":
                    break
                time.sleep(0.05)
            assert state["disconnectCause"] == "hangup", state
            events = http.get(
                f"{base}/api/calls/{call_id}/events", auth=("admin", "dash"), timeout=10
            ).json()["events"]
            assert [e["eventType"] for e in events] == ["answer", "gather", "disconnect"]


def test_the_pytest_plugin_works_in_a_users_project(tmp_path):
    test_file = tmp_path / "test_users_app.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import requests

            def test_busy_callee(bandwidth_sandbox):
                reply = requests.post(
                    f"{bandwidth_sandbox.api_url}/accounts/{bandwidth_sandbox.account_id}/calls",
                    json={"to": "+12025550486", "from": "+12025550100",
                          "applicationId": "a", "answerUrl": "http://127.0.0.1:9/answer"},
                    auth=(bandwidth_sandbox.username, bandwidth_sandbox.password),
                )
                assert reply.status_code == 201
                call_id = reply.json()["callId"]
                call = bandwidth_sandbox.wait_for(call_id, "disconnected", timeout=10)
                assert call["disconnectCause"] == "busy"
                assert bandwidth_sandbox.calls()[0]["callId"] == call_id
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "sandbox.pytest_plugin",
            "-q",
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
