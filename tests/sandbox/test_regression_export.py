"""A real call through the in-app sandbox, over HTTP, exported as a regression test and run
with pytest in a project of its own: it passes, and fails with a diff once the prompt
changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

import sandbox as sandbox_package
from config import DEFAULTS
from store import get_store
from tests.sandbox.conftest import FROM, TO
from tests.servers import ROOT

MENU = "Thanks for calling. For sales, press 1. For support, press 2."
NEW_MENU = "Thanks for calling. For sales, press one. For support, press 2."

CONFTEST = """
from pathlib import Path

import pytest

from app import create_app


@pytest.fixture
def app(tmp_path):
    (Path(__file__).parent / "{marker}").write_text("used")
    return create_app({{
        "TESTING": True,
        "SECRET_KEY": "the-project-test-key",
        "PUBLIC_BASE_URL": "https://voice.project.example",
        "CALLBACK_USERNAME": "project-user",
        "CALLBACK_PASSWORD": "project-password",
        "DASHBOARD_PASSWORD": "project-dash",
        "VOICE_FLOWS": "{module}",
        "DATABASE_URL": f"sqlite:///{{tmp_path / 'events.db'}}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
    }})
"""


@pytest.fixture
def project(tmp_path, monkeypatch, app_config):
    """A user's project: their own copy of the demo IVR as a flow module (VOICE_FLOWS)."""
    directory = tmp_path / "project"
    directory.mkdir()
    module = f"regress_ivr_{uuid.uuid4().hex[:8]}"
    source = (ROOT / "examples" / "ivr.py").read_text(encoding="utf-8")
    assert MENU in source and 'Flow("demo-ivr"' in source
    (directory / f"{module}.py").write_text(source.replace('Flow("demo-ivr"', 'Flow("my-ivr"'))
    monkeypatch.syspath_prepend(str(directory))
    app_config["VOICE_FLOWS"] = module
    yield directory, module
    sys.modules.pop(module, None)


def run_pytest(directory: Path, test_file: Path) -> subprocess.CompletedProcess[str]:
    """pytest on the exported file, as the user runs it: from the project's directory."""
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)  # the flow just changed
    env = {key: value for key, value in os.environ.items() if key not in DEFAULTS}
    env["PYTHONPATH"] = os.pathsep.join([str(directory), str(ROOT)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--basetemp={directory / 'pytest-tmp'}",  # not the outer run's temp folders
            test_file.name,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_sandbox_call_becomes_a_regression_test(project, live_app, app_callback_auth):
    directory, module = project
    app = live_app.app
    account, user, password = sandbox_package.credentials(app.config)
    control = f"{live_app.base_url}{sandbox_package.CONTROL_PREFIX}/callees/{TO}"
    scripted = requests.put(
        control, json={"gatherDigits": ["2", "1234"]}, auth=(user, password), timeout=10
    )
    assert scripted.status_code == 204, scripted.text
    created = requests.post(
        f"{live_app.base_url}{sandbox_package.API_PREFIX}/accounts/{account}/calls",
        json={
            "to": TO,
            "from": FROM,
            "applicationId": "app-1",
            "answerUrl": live_app.base_url + "/callbacks/answer",
            "disconnectUrl": live_app.base_url + "/callbacks/disconnect",
            **app_callback_auth,
        },
        auth=(user, password),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    call_id = created.json()["callId"]
    state = app.extensions["sandbox"].wait_for(call_id, "disconnected")
    assert state["disconnectCause"] == "hangup", state["log"]
    store = get_store(app)
    callbacks = store.events_for_call(call_id) + store.events_for_parent_call(call_id)
    assert {row["event_type"] for row in callbacks} >= {"answer", "gather", "transferAnswer"}

    test_file = directory / "test_support_call.py"
    exported = app.test_cli_runner().invoke(
        args=["voice", "export-test", call_id, "-o", str(test_file)]
    )
    assert exported.exit_code == 0, exported.output
    assert "2 leg(s)" in exported.output

    # As exported: every callback of both legs answers as it did.
    passed = run_pytest(directory, test_file)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"{len(callbacks)} passed" in passed.stdout

    # The project's own `app` fixture (another key, public URL and credentials) is used.
    marker = f"app-fixture-{uuid.uuid4().hex[:6]}"
    (directory / "conftest.py").write_text(CONFTEST.format(marker=marker, module=module))
    with_fixture = run_pytest(directory, test_file)
    assert with_fixture.returncode == 0, with_fixture.stdout + with_fixture.stderr
    assert (directory / marker).exists()

    # The prompt changes: the greeting's test fails with a diff naming the callback.
    flow_file = directory / f"{module}.py"
    flow_file.write_text(flow_file.read_text(encoding="utf-8").replace(MENU, NEW_MENU))
    failed = run_pytest(directory, test_file)
    output = failed.stdout
    assert failed.returncode == 1, output + failed.stderr
    assert f"1 failed, {len(callbacks) - 1} passed" in output
    assert "test_reply_is_unchanged[01-answer]" in output
    assert (
        f"callback 1 of {len(callbacks)} (answer at /callbacks/answer, call 1): the reply changed"
        in output
    )
    assert "--- recorded reply\n+++ reply now\n" in output
    assert f"-    <SpeakSentence>{MENU}</SpeakSentence>" in output
    assert f"+    <SpeakSentence>{NEW_MENU}</SpeakSentence>" in output
