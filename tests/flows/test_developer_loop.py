"""What a developer uses every day: typed events, the unit-test helper, ``flask voice``,
the start-up banner and the landing page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import bxml
import worker_cpus
from callbacks import CallbackEvent
from callbacks.events import EVENT_FIELDS, load_event
from callbacks.testing import example_payload, make_event, reply
from tests.servers import ROOT, gunicorn

SECRET = "test-secret-key"


# --- typed events -----------------------------------------------------------------------


def test_every_documented_field_is_an_attribute_none_when_absent():
    answer = load_event(example_payload("answer"))
    assert answer.digits is None  # a gather field, asked of an answer event
    assert answer.machine_detection_result == {"value": "human", "duration": "PT1.5S"}
    assert answer.from_ == "+12025550199"
    with pytest.raises(AttributeError, match="no field 'digts'"):
        answer.digts  # noqa: B018


def test_unknown_fields_stay_reachable():
    event = load_event(example_payload("answer", callerDisplayName="Ada", privacy=True))
    assert event.extra == {"callerDisplayName": "Ada", "privacy": True}
    assert event.caller_display_name == "Ada" and event.privacy is True


@pytest.mark.parametrize("event_type", sorted(EVENT_FIELDS))
def test_every_event_type_has_a_documented_example_that_loads(event_type):
    event = make_event(event_type)
    assert isinstance(event, CallbackEvent) and event.event_type == event_type


def test_example_overrides_take_snake_or_camel_case_and_none_removes():
    payload = example_payload("gather", digits="42", call_id="c-1", from_="+12025550111", tag=None)
    assert payload["digits"] == "42" and payload["callId"] == "c-1"
    assert payload["from"] == "+12025550111" and "tag" not in payload


# --- the unit-test helper: a flow's reply without a server --------------------------------


def test_reply_routes_through_the_flows_and_returns_checked_bxml(app):
    xml = reply(app, "initiate", to="+12025550177")
    assert "For sales, press 1" in xml
    gather = reply(app, "gather", digits="2", state={"step": "department"}, flow="demo-ivr")
    assert "4 digit order number" in gather
    [tag] = [verb for verb in bxml.parse(gather) if verb.name == "Tag"]
    from callbacks.tags import decode_state
    from callbacks.testing import CALL_ID

    assert decode_state(tag.text, SECRET) == {}  # bound to the call it was set on
    assert decode_state(tag.text, SECRET, call_id=CALL_ID) == {
        "step": "order",
        "department": "support",
        "_flow": "demo-ivr",
    }
    done = reply(app, "gather", digits="1234", state={"step": "order", "department": "support"})
    assert "Order 1 2 3 4. Connecting you to support." in done and "<Transfer" in done


def test_reply_raises_what_the_handler_raises(app):
    from callbacks import Flow

    broken = app.extensions["flows"].register(Flow("broken"), default=True)
    broken.on("answer")(lambda event: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        reply(app, "answer")
    broken.on("gather")(
        lambda event: bxml.Response(bxml.Transfer(bxml.PhoneNumber("+12025550142")))
    )
    assert "<Transfer" in reply(app, "gather")
    broken.on("transferAnswer")(
        lambda event: bxml.Response(bxml.Transfer(bxml.PhoneNumber("+12025550142")))
    )
    with pytest.raises(bxml.BxmlError):
        reply(app, "transferAnswer")  # a B-leg reply may not transfer again


def test_reply_has_no_side_effects(app):
    from callbacks import Flow
    from calls.outbound import place_call
    from store import get_store

    greedy = app.extensions["flows"].register(Flow("greedy"), default=True)
    greedy.on("answer")(lambda event: place_call(to="+12025550123"))
    from callbacks.dryrun import DryRunRefused

    with pytest.raises(DryRunRefused):
        reply(app, "answer")
    with app.app_context():
        assert get_store(app).events_for_call(example_payload("answer")["callId"]) == []


# --- flask voice ---------------------------------------------------------------------------


def test_flask_voice_render_prints_the_reply(runner, tmp_path):
    payload = tmp_path / "initiate.json"
    payload.write_text(json.dumps(example_payload("initiate")))
    result = runner.invoke(args=["voice", "render", str(payload)])
    assert result.exit_code == 0, result.output
    assert "For sales, press 1" in result.output
    assert "flow: demo-ivr" in result.output


def test_flask_voice_render_fails_loudly_for_a_bad_payload(runner, tmp_path):
    payload = tmp_path / "bad.json"
    payload.write_text(json.dumps({"eventType": "answer"}))
    result = runner.invoke(args=["voice", "render", str(payload)])
    assert result.exit_code == 1
    assert "does not load as a callback" in result.output


def test_flask_voice_render_a_stored_call(app, client, runner):
    from tests.callbacks.helpers import Bandwidth, answer_event

    payload = answer_event()
    Bandwidth(client).post("answer", payload)
    result = runner.invoke(args=["voice", "render", "--call", payload["callId"]])
    assert result.exit_code == 0, result.output
    assert "--- answer at /callbacks/answer" in result.output
    assert "For sales, press 1" in result.output


def test_flask_voice_flows_lists_them(runner):
    result = runner.invoke(args=["voice", "flows"])
    assert "demo-ivr (default)" in result.output
    assert "click-to-call (built in)" in result.output
    assert "handlers: answer, gather, initiate, transferAnswer, transferComplete" in result.output


# --- what a person sees --------------------------------------------------------------------


def test_the_landing_page_links_the_pages(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for link in ('href="/dashboard"', 'href="/click-to-call"', 'href="/sandbox/sandbox-control/"'):
        assert link in html
    assert "demo-ivr" in html and "dashboard-secret" not in html


def _env(tmp_path, **extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DASHBOARD_", "CALLBACK_", "VOICE_", "PUBLIC_", "BW_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'events.db'}",
        SPOOL_PATH=str(tmp_path / "spool.jsonl"),
        SECRET_KEY="banner-secret",
        **extra,
    )
    return env


@pytest.mark.slow
def test_gunicorn_prints_the_banner_once_per_server(tmp_path):
    log = tmp_path / "server.log"
    env = _env(tmp_path, GUNICORN_LOG=str(log))
    with gunicorn(env, workers=2, log_path=log) as base:
        port = int(base.rsplit(":", 1)[1])
    text = log.read_text()
    assert text.count("generated password") == 1, text
    assert text.count(f"dashboard      http://127.0.0.1:{port}/dashboard") == 1
    assert text.count("sandbox API    ") == 1
    assert text.count(f"store          sqlite:///{tmp_path / 'events.db'}  (synchronous=FULL)") == 1
    assert text.count("Booting worker") == 2
    # Each worker says which CPUs it runs on (PIN_WORKERS), two of them different.
    pinned = re.findall(r"worker \d+ runs on CPUs \[([\d, ]+)\]", text)
    cpus = worker_cpus.allowed()
    if cpus is not None and len(cpus) >= 2:
        assert len(pinned) == 2 and len(set(pinned)) == 2, text
    else:  # nothing to choose from: nobody claims to be pinned
        assert pinned == [], text


@pytest.mark.slow
def test_a_bind_given_to_gunicorn_is_where_the_app_sends_callbacks(tmp_path):
    import signal
    import socket

    import requests

    from tests.servers import wait_until_up

    with socket.socket() as probe:  # a free port for gunicorn's own --bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(tmp_path, WEB_CONCURRENCY="1")
    for key in ("HOST", "PORT", "GUNICORN_BIND"):
        env.pop(key, None)  # the default would be 127.0.0.1:8000
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/callbacks/")
            answer = requests.post(
                base + "/callbacks/answer", json=example_payload("answer"), timeout=30
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    assert answer.status_code == 200, answer.text
    assert f'"{base}/callbacks/' in answer.text  # the next callback comes back here
    assert "127.0.0.1:8000" not in answer.text
    assert f"dashboard      {base}/dashboard" in log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        (
            "VOICE_BACKEND",
            "bandwdith",
            "VOICE_BACKEND must be 'sandbox' or 'bandwidth', got 'bandwdith'",
        ),
        # gunicorn would start a master with no worker: a server that never answers.
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be a whole number of at least 1, got '0'"),
        ("GUNICORN_THREADS", "x", "GUNICORN_THREADS must be a whole number of at least 1, got 'x'"),
        (
            "GUNICORN_THREADS",
            "-2",
            "GUNICORN_THREADS must be a whole number of at least 1, got '-2'",
        ),
        (
            "PIN_WORKERS",
            "sometimes",
            "PIN_WORKERS must be 1 or 0 (or on/off, true/false, yes/no), got 'sometimes'",
        ),
        ("PORT", "abc", "PORT must be a port number from 1 to 65535, got 'abc'"),
        # Not blamed on the PUBLIC_BASE_URL the app would build from it.
        ("PORT", "99999", "PORT must be a port number from 1 to 65535, got '99999'"),
    ],
)
def test_gunicorn_refuses_a_wrong_setting_with_one_line(tmp_path, setting, value, error):
    env = _env(tmp_path, PORT="9")  # refused before binding
    env[setting] = value
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {error}"]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_server_whose_address_is_taken_prints_no_banner(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT,
            env=_env(tmp_path, PORT=str(taken.getsockname()[1]), WEB_CONCURRENCY="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert "Connection in use" in result.stderr
    # No "app at ..." for a server that never served, and no password printed for nothing.
    assert "generated password" not in result.stdout + result.stderr
    assert "dashboard " not in result.stdout


@pytest.mark.slow
def test_flask_commands_print_no_password(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "store", "migrate"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    password = (ROOT / "instance" / "dashboard_password").read_text().strip()
    assert password not in result.stdout + result.stderr
    assert "generated password" not in result.stdout + result.stderr


def test_flask_voice_call_says_when_no_server_places_the_call(app_config):
    from app import create_app
    from tests.servers import closed_port

    app = create_app({**app_config, "PUBLIC_BASE_URL": f"http://127.0.0.1:{closed_port()}"})
    result = app.test_cli_runner().invoke(args=["voice", "call", "+12025550123"])
    assert result.exit_code == 1
    assert "is it up at http://127.0.0.1:" in result.output


def test_flask_voice_call_refuses_an_unknown_flow(runner):
    result = runner.invoke(args=["voice", "call", "+12025550123", "--flow", "nope"])
    assert result.exit_code == 1
    assert "no flow named 'nope'" in result.output
