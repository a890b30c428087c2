"""The README's curl commands for the in-app sandbox, run for real with curl against a live
app: scripting the caller's digits, then dialling in, reaches the flow's second Gather."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess

import pytest

import sandbox
from tests.servers import ROOT

README = (ROOT / "README.md").read_text()
README_ORIGIN = "http://127.0.0.1:8000"


def control_commands() -> list[list[str]]:
    """Every ``curl`` of the README that talks to the in-app sandbox's control API, in
    order, as argument lists (continuation lines joined)."""
    text = README.replace("\\\n", " ")
    found = re.findall(r"curl [^`]*?/sandbox/sandbox-control/[^\s`]+", text)
    return [shlex.split(command.replace("\n", " ")) for command in found]


def run(argv: list[str], base_url: str, password: str) -> str:
    argv = [
        arg.replace(README_ORIGIN, base_url).replace("sandbox:PASSWORD", f"sandbox:{password}")
        for arg in argv
    ]
    done = subprocess.run(
        [*argv, "--silent", "--show-error", "--fail-with-body"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_the_readme_scripts_the_dial_in_caller_then_dials_in(live_app):
    commands = control_commands()
    assert [c[-1].rsplit("/", 1)[-1] for c in commands] == ["+12025550100", "inbound"]
    _, _, password = sandbox.credentials(live_app.app.config)
    outputs = [run(argv, live_app.base_url, password) for argv in commands]
    call_id = json.loads(outputs[-1])["callId"]
    in_app = live_app.app.extensions["sandbox"]
    in_app.wait_for(call_id, "disconnected", 30)
    heard = [entry["text"] for entry in in_app.transcript(call_id)]
    # The scripted digits reached both Gathers: the department, then the order number.
    assert "Order 1 2 3 4. Connecting you to support." in heard, heard
