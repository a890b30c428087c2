"""The shipped deploy settings: gunicorn.conf.py and the Procfile."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.callbacks.helpers import answer_event
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER
from tests.servers import ROOT, app_env, gunicorn

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    with gunicorn(app_env(tmp_path)) as base:
        yield base


def test_get_callback_with_a_4096_character_tag(server):
    # Every character needs escaping, so the request line is far over gunicorn's default 4094.
    payload = answer_event(tag="é&" * 2048)
    url = f"{server}/callbacks/answer?{urlencode(payload)}"
    assert len(url) > 8190
    reply = requests.get(url, auth=(CALLBACK_USER, CALLBACK_PASSWORD), timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/xml; charset=utf-8"
    events = requests.get(
        f"{server}/api/calls/{payload['callId']}/events", auth=("admin", "dash"), timeout=10
    ).json()["events"]
    assert events[0]["payload"]["tag"] == "é&" * 2048


def test_post_callback_under_gunicorn(server):
    payload = answer_event()
    reply = requests.post(
        f"{server}/callbacks/answer",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json"},
        auth=(CALLBACK_USER, CALLBACK_PASSWORD),
        timeout=10,
    )
    assert reply.status_code == 200


def test_procfile_uses_the_config_file_and_port():
    procfile = (ROOT / "Procfile").read_text()
    assert procfile.startswith("web: gunicorn --config gunicorn.conf.py")
    assert "$PORT" in procfile
    assert Path(ROOT / "gunicorn.conf.py").exists()
