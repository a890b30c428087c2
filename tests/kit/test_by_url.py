"""The kit against a running server reached by URL (gunicorn, two workers): the kit's own
sandbox, on the manual clock, rings it and is the Voice API of the calls it places."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import requests

from sandbox.kit.remote import remote_kit
from tests.dashboard.conftest import csrf_from
from tests.kit.conftest import CALLER, IVR_NUMBER, SUPPORT
from tests.servers import ROOT, app_env, gunicorn, listening_socket, port_of

VISITOR = "+12025550134"
AGENT = "+12025550142"


def test_a_running_server_dialled_and_placing_calls(tmp_path):
    sock = listening_socket()
    app_url = f"http://127.0.0.1:{port_of(sock)}"
    config = {
        **app_env(tmp_path),
        "VOICE_FLOWS": "examples.ivr",
        "BW_ACCOUNT_ID": "9900000",
        "BW_USERNAME": "kit",
        "BW_PASSWORD": "kit-password",
        "BW_APPLICATION_ID": "voice-kit",
        "BW_FROM_NUMBER": "+12025550100",
        "CLICK_TO_CALL_AGENT": AGENT,
    }
    with remote_kit(app_url, config, directory=tmp_path) as kit:
        server_env = {
            **config,
            "VOICE_BACKEND": "bandwidth",
            "BW_VOICE_API_URL": kit.api_url,
            "PUBLIC_BASE_URL": app_url,
        }
        with gunicorn(server_env, sock=sock, log_path=tmp_path / "gunicorn.log"):
            call = kit.dial(IVR_NUMBER, from_=CALLER)
            call.expect_heard("For support, press 2.")
            call.press("2")
            call.expect_heard("4 digit order number")
            assert call.tag_state() == {"step": "order", "department": "support"}
            call.press("1234")
            agent = call.expect_transfer_to(SUPPORT)
            agent.expect_heard("A caller from the demo IVR is on the line.")
            call.hang_up()
            assert call.disconnect_cause == "hangup"

            # The server places a call (click-to-call): it comes to the kit's sandbox.
            browser = requests.Session()
            token = csrf_from(browser.get(app_url + "/click-to-call", timeout=10).text)
            placed = browser.post(
                app_url + "/click-to-call",
                data={"csrf_token": token, "number": VISITOR},
                allow_redirects=False,
                timeout=10,
            )
            assert placed.status_code == 303, placed.text
            visitor = kit.expect_call(to=VISITOR)
            visitor.expect_heard("Connecting you to an agent now.")
            visitor.expect_transfer_to(AGENT)
            visitor.expect_heard("The agent has left the call. Goodbye.")
            visitor.expect_ended("hangup")
            with pytest.raises(RuntimeError, match="by URL"):
                kit.place_call(to=VISITOR)

            # The same through the fixture: pytest --voice-app-url.
            result = _user_suite(tmp_path / "suite", app_url, config)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "1 passed" in result.stdout


def _user_suite(folder, app_url, config) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            import pytest

            pytest_plugins = ["sandbox.pytest_plugin"]


            @pytest.fixture
            def voice_app_config():
                return {{
                    "CALLBACK_USERNAME": {config["CALLBACK_USERNAME"]!r},
                    "CALLBACK_PASSWORD": {config["CALLBACK_PASSWORD"]!r},
                    "SECRET_KEY": {config["SECRET_KEY"]!r},
                }}
            """
        )
    )
    (folder / "test_line.py").write_text(
        textwrap.dedent(
            """
            def test_sales(voice_call):
                assert voice_call.app is None
                call = voice_call.dial("+12025550199")
                call.expect_heard("For sales, press 1.")
                call.press("1")
                call.expect_transfer_to("+12025550142")
                assert call.tag_state() == {"step": "department"}
            """
        )
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--voice-app-url",
            app_url,
            str(folder),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
