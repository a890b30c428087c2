"""Shared fixtures: an app on a temporary SQLite store, its client and CLI runner.

Tests that need PostgreSQL or Chromium call ``needs()``: on a newcomer's laptop they skip
with the reason; under CI (``CI`` set, as .ci/run does) a missing service fails the run.
"""

from __future__ import annotations

import os

import pytest

from config import DEFAULTS

# The kit's fixtures (voice_call, bandwidth_sandbox), enabled as a user's suite enables them.
pytest_plugins = ["sandbox.pytest_plugin"]

CALLBACK_USER = "bandwidth"
CALLBACK_PASSWORD = "callback-secret"
DASHBOARD_USER = "operator"
DASHBOARD_PASSWORD = "dashboard-secret"


def needs(available: bool, reason: str) -> None:
    """Skip (laptop) or fail (CI) a test whose outside service is missing."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


# gunicorn.conf.py's own settings (the app's are config.DEFAULTS).
SERVER_SETTINGS = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "PIN_WORKERS", "GUNICORN_BIND")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    """Settings read from the environment must not leak from the shell into tests."""
    for key in (*DEFAULTS, *SERVER_SETTINGS):
        monkeypatch.delenv(key, raising=False)
    # Nor may a proxy from the shell intercept requests to the servers on 127.0.0.1.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app_config(tmp_path):
    """The test mapping given to create_app; tests may change it before using ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CALLBACK_USERNAME": CALLBACK_USER,
        "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
        "DASHBOARD_USERNAME": DASHBOARD_USER,
        "DASHBOARD_PASSWORD": DASHBOARD_PASSWORD,
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    }


@pytest.fixture
def app(app_config):
    from app import create_app

    application = create_app(app_config)
    yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
