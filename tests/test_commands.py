"""``flask`` commands as a shell runs them: stdout holds the command's output alone (its
log lines go to stderr), and a wrong setting is one line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.slow


def flask(tmp_path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m flask --app app ...`` in the repository, its store in ``tmp_path``."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "SECRET_KEY": "commands-secret",
        "DASHBOARD_PASSWORD": "commands-dash",
        **settings,
    }
    env.pop("LOG_LEVEL", None)  # the default, INFO: the store's start-up lines are logged
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_store_status_prints_only_its_report_on_stdout_and_logs_on_stderr(tmp_path):
    # TRUSTED_PROXIES without addresses: the app warns as it starts, then the store
    # logs its schema migrations.
    result = flask(tmp_path, "store", "status", TRUSTED_PROXIES="1")
    assert result.returncode == 0, result.stderr
    labels = [line.split()[0] for line in result.stdout.splitlines() if line[:1].strip()]
    assert labels == ["database", "spool", "durability", "callbacks"], result.stdout
    assert "{" not in result.stdout
    logged = [json.loads(line) for line in result.stderr.splitlines()]
    assert {(entry["level"], entry["logger"]) for entry in logged} >= {
        ("WARNING", "proxies"),
        ("INFO", "store.connections"),
    }, result.stderr


@pytest.mark.parametrize(
    "command", [("store", "status"), ("--help",), ("run", "--port", "9402")], ids=" ".join
)
@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        ("STORE_BUSY_TIMEOUT", "abc", "STORE_BUSY_TIMEOUT must be a number, got 'abc'"),
        (
            "VOICE_BACKEND",
            "bandwdith",
            "VOICE_BACKEND must be 'sandbox' or 'bandwidth', got 'bandwdith'",
        ),
        (
            "STORE_SQLITE_SYNCHRONOUS",
            "fast",
            "STORE_SQLITE_SYNCHRONOUS must be one of OFF, NORMAL, FULL, EXTRA, got 'fast'",
        ),
    ],
)
def test_a_wrong_setting_stops_a_command_with_one_line(tmp_path, command, setting, value, error):
    result = flask(tmp_path, *command, **{setting: value})
    assert result.returncode == 1
    assert result.stderr == f"Error: {error}\n"
    assert result.stdout == ""
