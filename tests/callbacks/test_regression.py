"""Regression tests from stored calls: the canonical comparison, what is normalised and
redacted, the portable payloads, the generated source and ``flask voice export-test``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from callbacks.canonical import NO_REPLY, Context, callback_bases, canonical, line_diff, scrub
from callbacks.regression import Callback, RecordedCall, factory_app
from callbacks.regression_export import (
    _string,
    file_name,
    portable_payload,
    recorded_call,
    source_of,
)
from callbacks.tags import decode_state, encode_state
from config import DEFAULTS
from tests.callbacks.helpers import (
    Bandwidth,
    answer_event,
    call_event,
    call_id,
    conference_event,
    disconnect_event,
)
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER, DASHBOARD_PASSWORD
from tests.servers import ROOT

CALL = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-000000000001"
LEG = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-000000000002"
OTHER = "c-11111111-22222222-3333-4444-5555-666666666666"
FROM = "+12025550100"
ANOTHER = "c-77777777-88888888-9999-aaaa-bbbb-cccccccccccc"

# Where the call was answered (A) and where the test runs (B): another secret, another URL.
RECORDED = {
    "context": Context("secret-a", ("https://cb.example.com",), CALL, None, (CALL, LEG)),
    "base": "https://cb.example.com",
    "user": "bandwidth",
    "password": "[redacted:0123456789ab]",
    "time": "2026-12-02T16:00:00.123Z",
    "other": OTHER,
}
NOW = {
    "context": Context("secret-b", ("http://127.0.0.1:8000/",), CALL, None, (CALL, LEG)),
    "base": "http://127.0.0.1:8000",
    "user": "test-user",
    "password": "[redacted:ba9876543210]",
    "time": "2027-01-15 09:30:12+01:00",
    "other": ANOTHER,
}


def tag(side, state=None, **bind):
    return encode_state(state or {"step": "menu"}, side["context"].secret, **bind)


def render(template: str, side: dict) -> str:
    values = {**side, "tag": tag(side, call_id=CALL), "unbound": tag(side)}
    return template.format(**values)


@pytest.mark.parametrize(
    "template_then, template_now",
    [
        pytest.param(
            '<?xml version="1.0" encoding="UTF-8"?><Response><SpeakSentence>Hi  there'
            "</SpeakSentence><Hangup/></Response>",
            "<Response>\n  <SpeakSentence>\n    Hi there\n  </SpeakSentence>\n  <Hangup />\n"
            "</Response>\n",
            id="whitespace-and-declaration",
        ),
        pytest.param(
            '<Response><Gather maxDigits="1" gatherUrl="{base}/callbacks/gather"/></Response>',
            '<Response><Gather gatherUrl="{base}/callbacks/gather" maxDigits="1"/></Response>',
            id="attribute-order-and-public-url",
        ),
        pytest.param(
            "<Response><Tag>{tag}</Tag></Response>", None, id="signed-tag-another-signature"
        ),
        pytest.param(
            '<Response><Transfer><PhoneNumber tag="{tag}">+12025550143</PhoneNumber>'
            "</Transfer></Response>",
            None,
            id="signed-tag-attribute",
        ),
        pytest.param(
            '<Response><Gather gatherUrl="{base}/g" username="{user}" password="{password}" '
            'fallbackUsername="{user}" fallbackPassword="{password}"/></Response>',
            None,
            id="callback-credentials",
        ),
        pytest.param(
            '<Response><Redirect redirectUrl="https://{user}:secret@hooks.example/next"/>'
            "</Response>",
            None,
            id="credentials-in-a-url",
        ),
        pytest.param(
            "<Response><SpeakSentence>Checked at {time}.</SpeakSentence></Response>",
            None,
            id="timestamp",
        ),
        pytest.param("<Response><Bridge>{other}</Bridge></Response>", None, id="a-derived-call-id"),
    ],
)
def test_what_legitimately_changes_compares_equal(template_then, template_now):
    then = canonical(render(template_then, RECORDED), RECORDED["context"])
    now = canonical(render(template_now or template_then, NOW), NOW["context"])
    assert then == now
    for secret in ("secret@", "0123456789ab", "ba9876543210", "bandwidth", "test-user"):
        assert secret not in then


@pytest.mark.parametrize(
    "then, now",
    [
        pytest.param(
            "<Response><SpeakSentence>For sales, press 1.</SpeakSentence></Response>",
            "<Response><SpeakSentence>For sales, press 2.</SpeakSentence></Response>",
            id="speech",
        ),
        pytest.param(
            '<Response><Gather maxDigits="1"/></Response>',
            '<Response><Gather maxDigits="4"/></Response>',
            id="attribute-value",
        ),
        pytest.param(
            "<Response><SpeakSentence>Bye.</SpeakSentence></Response>",
            "<Response><SpeakSentence>Bye.</SpeakSentence><Hangup/></Response>",
            id="verb-added",
        ),
        pytest.param(
            '<Response><Gather gatherUrl="{base}/g" username="{user}" password="{password}"/>'
            "</Response>",
            '<Response><Gather gatherUrl="{base}/g"/></Response>',
            id="credentials-dropped",
        ),
        pytest.param(
            "<Response><Tag>{tag}</Tag></Response>",
            "<Response><Tag>{unbound}</Tag></Response>",
            id="tag-no-longer-bound-to-the-call",
        ),
        pytest.param(
            f"<Response><Bridge>{LEG}</Bridge></Response>",
            "<Response><Bridge>{other}</Bridge></Response>",
            id="the-leg-replaced-by-another-call",
        ),
        pytest.param("<Response/>", None, id="reply-became-asynchronous"),
    ],
)
def test_real_changes_show_as_a_diff(then, now):
    before = canonical(render(then, RECORDED), RECORDED["context"])
    after = canonical(None if now is None else render(now, NOW), NOW["context"])
    assert before != after
    diff = line_diff(before, after, before="recorded reply", after="reply now")
    assert diff.startswith("--- recorded reply\n+++ reply now\n")
    assert any(line[:1] in ("-", "+") for line in diff.splitlines()[2:])


def test_tag_state_that_changed_is_shown_decoded():
    then = canonical(
        f"<Response><Tag>{tag(RECORDED, call_id=CALL)}</Tag></Response>", RECORDED["context"]
    )
    changed = tag(NOW, {"step": "order"}, call_id=CALL)
    now = canonical(f"<Response><Tag>{changed}</Tag></Response>", NOW["context"])
    diff = line_diff(then, now, before="recorded reply", after="reply now")
    assert '-  <Tag>{signed state for this call: {"step": "menu"}}</Tag>' in diff
    assert '+  <Tag>{signed state for this call: {"step": "order"}}</Tag>' in diff


def test_canonical_form_is_one_element_per_line():
    body = (
        '<Response><Gather maxDigits="1"><SpeakSentence>Press <emphasis>one</emphasis> now'
        "</SpeakSentence></Gather></Response>"
    )
    assert canonical(body, Context()).splitlines() == [
        "<Response>",
        '  <Gather maxDigits="1">',
        "    <SpeakSentence>",
        "      Press",
        "      <emphasis>one</emphasis>",
        "      now",
        "    </SpeakSentence>",
        "  </Gather>",
        "</Response>",
    ]
    assert canonical(None, Context()) == canonical("  ", Context()) == NO_REPLY
    assert canonical("<Response>", Context()).startswith("(not XML: ")
    entity = canonical('<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', Context())
    assert entity.startswith("(not XML: DOCTYPE is not allowed")  # the hardened parser


@pytest.mark.parametrize(
    "text, scrubbed",
    [
        ("https://user:secret@hooks.example/a", "https://[redacted]@hooks.example/a"),
        ("wss://token@stream.example/x?y=1", "wss://[redacted]@stream.example/x?y=1"),
        ('password="[redacted:0123456789ab]"', 'password="[redacted]"'),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
        ("write to ops@example.com", "write to ops@example.com"),
        ("https://hooks.example/a@b", "https://hooks.example/a@b"),
    ],
)
def test_scrub_table(text, scrubbed):
    assert scrub(text) == scrubbed


@pytest.mark.parametrize(
    "field, call_id, parent_call_id",
    [("callId", CALL, None), ("parentCallId", LEG, CALL), (None, CALL, None)],
    ids=["bound-to-the-call", "transfer-leg-bound-to-the-parent", "unbound"],
)
def test_signed_tags_travel_as_state_and_are_signed_again_with_the_test_key(
    field, call_id, parent_call_id, caplog
):
    state = {"step": "order", "_flow": "my-ivr"}
    bound = {"call_id": CALL} if field else {}
    payload = {
        "eventType": "gather",
        "callId": call_id,
        "tag": encode_state(state, "prod", **bound),
    }
    if parent_call_id:
        payload["parentCallId"] = parent_call_id
    portable = portable_payload(payload, "prod", [])
    assert portable["tag"] == {"signedState": state, **({"boundTo": field} if field else {})}
    assert "does not verify" not in caplog.text  # finding the leg it is bound to is quiet
    again = Callback(1, "gather", portable, ()).payload_for("test-key")["tag"]
    ids = {"call_id": call_id, "parent_call_id": parent_call_id}
    assert decode_state(again, "test-key", **ids) == state
    assert decode_state(again, "prod", **ids) == {}


@pytest.mark.parametrize(
    "tag",
    ["plain text tag", encode_state({"step": 1}, "another-app"), "st2.forged"],
    ids=["plain", "another-key", "forged"],
)
def test_tags_that_do_not_verify_are_kept_as_they_are(tag):
    payload = {"eventType": "gather", "callId": CALL, "tag": tag}
    assert portable_payload(payload, "prod", [])["tag"] == tag


def test_payload_strings_lose_configured_secrets_and_url_credentials():
    payload = {
        "eventType": "answer",
        "callUrl": "https://user:pw@voice.example/calls/1",
        "tag": "order for the-long-secret",
        "extra": {"items": ["the-long-secret", 3]},
    }
    portable = portable_payload(payload, "prod", ["the-long-secret"])
    assert portable == {
        "eventType": "answer",
        "callUrl": "https://[redacted]@voice.example/calls/1",
        "tag": "order for [redacted]",
        "extra": {"items": ["[redacted]", 3]},
    }


@pytest.mark.parametrize(
    "call_id, name",
    [
        ("c-5c368aa3-8a793a13-0edb", "test_call_c_5c368aa3_8a793a13_0edb.py"),
        ("../../etc/passwd", "test_call_etc_passwd.py"),
        ('a"b\r\nContent-Type: x', "test_call_a_b_Content_Type_x.py"),
        ("///", "test_call_unknown.py"),
    ],
)
def test_file_name_table(call_id, name):
    assert file_name(call_id) == name


@given(st.text())
def test_string_literals_read_back(text):
    assert ast.literal_eval(_string(text)) == text


def test_the_generated_source_reads_back_as_the_same_call_and_is_formatted(tmp_path):
    tricky = {
        "eventType": "transcriptionAvailable",
        "transcription": {"text": 'He said "hi", it\'s \\ fine \U0001f600', "confidence": 0.92},
        "channels": 1,
        "final": True,
        "missing": None,
        "empty": {},
        "none": [],
        "one": ["x"],
        "tag": {"signedState": {"step": "order", "_flow": "my-ivr"}, "boundTo": "callId"},
    }
    call = RecordedCall(
        call_id=CALL,
        legs=(CALL,),
        callbacks=(
            Callback(1, "transcriptionAvailable", tricky, (NO_REPLY,)),
            Callback(2, "answer", {"eventType": "answer"}, ("<Response>", "</Response>"), "E"),
            Callback(3, "redirect", {"eventType": "redirect"}, ("<Response>" + "x" * 90,)),
        ),
        flows=("my-ivr",),
        voice_flows="my_ivr",
        credentials=True,
    )
    path = tmp_path / "test_tricky.py"
    path.write_text(source_of(call, path.name), encoding="utf-8")
    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102
    assert namespace["CALL"] == call
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


# --- flask voice export-test --------------------------------------------------------


def stored_call(client) -> str:
    """A call the demo IVR answered: the menu, a wrong choice, goodbye, the disconnect."""
    bandwidth = Bandwidth(client)
    cid = call_id()
    answered = bandwidth.post("answer", answer_event(callId=cid))
    assert answered.status_code == 200
    menu_tag = etree.fromstring(answered.get_data()).findtext("Tag")
    gather = call_event("gather", callId=cid, digits="9", tag=menu_tag)
    assert bandwidth.post("gather", gather).status_code == 200
    ended = disconnect_event(callId=cid, cause="hangup")
    assert bandwidth.post("disconnect", ended).status_code == 204
    return cid


def test_export_test_writes_a_file_without_secrets(client, runner, app, tmp_path):
    cid = stored_call(client)
    path = tmp_path / "test_exported.py"
    result = runner.invoke(args=["voice", "export-test", cid, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {path}: 3 callbacks of 1 leg(s)" in result.output
    text = path.read_text(encoding="utf-8")
    compile(text, str(path), "exec")
    assert "Sorry, that is not a choice. Goodbye." in text
    assert '"signedState": {' in text and "st2c." not in text
    for secret in (CALLBACK_PASSWORD, DASHBOARD_PASSWORD, app.config["SECRET_KEY"]):
        assert secret not in text
    assert f'username="{CALLBACK_USER}"' not in text and 'username="[redacted]"' in text
    # Laid out as the formatter would: a project that runs ruff on its tests keeps it as is.
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_export_test_to_stdout_and_the_default_name(client, runner, tmp_path, monkeypatch):
    cid = stored_call(client)
    printed = runner.invoke(args=["voice", "export-test", cid, "-o", "-"])
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith('"""Regression test: call ' + cid)
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(args=["voice", "export-test", cid]).exit_code == 0
    assert (tmp_path / file_name(cid)).read_text(encoding="utf-8").startswith('"""Regression')


@pytest.mark.parametrize(
    "args, message",
    [
        (["c-nope"], "Error: no stored callbacks for call 'c-nope' in this app's store"),
        ([], "Missing argument 'CALL_ID'"),
    ],
    ids=["unknown-call", "no-call-id"],
)
def test_export_test_bad_input(runner, tmp_path, args, message):
    path = tmp_path / "out.py"
    result = runner.invoke(args=["voice", "export-test", *args, "-o", str(path)])
    assert result.exit_code != 0
    assert message in result.output
    assert not path.exists()


def test_export_test_keeps_an_existing_file_unless_forced(client, runner, tmp_path):
    cid = stored_call(client)
    path = tmp_path / "test_mine.py"
    path.write_text("# my own test\n")
    refused = runner.invoke(args=["voice", "export-test", cid, "-o", str(path)])
    assert refused.exit_code == 1
    assert f"{path} exists; give --force to overwrite it" in refused.output
    assert path.read_text() == "# my own test\n"
    forced = runner.invoke(args=["voice", "export-test", cid, "-o", str(path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "RecordedCall(" in path.read_text()


# --- what a replayed callback says when it fails ---------------------------------------


def failure_of(call, app, callback) -> str:
    with pytest.raises(pytest.fail.Exception) as failed:
        call.check(app, callback)
    return str(failed.value)


def test_check_passes_unchanged_and_names_the_callback_that_changed(client, app, monkeypatch):
    call = recorded_call(app, stored_call(client))
    assert [callback.label for callback in call.callbacks] == [
        "01-answer",
        "02-gather",
        "03-disconnect",
    ]
    for callback in call.callbacks:
        call.check(app, callback)
    monkeypatch.setattr("examples.ivr.MENU", "For sales, press 7.")
    message = failure_of(call, app, call.callbacks[0])
    assert message.startswith(
        "callback 1 of 3 (answer at /callbacks/answer, call 1): the reply changed\n"
        "--- recorded reply\n+++ reply now\n"
    )
    assert "+    <SpeakSentence>For sales, press 7.</SpeakSentence>" in message
    call.check(app, call.callbacks[1])  # the other callbacks still answer as they did


def test_a_handler_that_fails_now_is_named_with_its_error(client, app, monkeypatch):
    call = recorded_call(app, stored_call(client))
    monkeypatch.setattr("examples.ivr.DEPARTMENTS", None)  # `digits in None` raises
    message = failure_of(call, app, call.callbacks[1])
    assert message.startswith(
        "callback 2 of 3 (gather at /callbacks/gather, call 1): the app fails to answer it "
        "now: TypeError: argument of type 'NoneType' is not"
    )
    assert "Traceback" in message


def test_a_call_from_flows_the_app_lacks_says_which(client, app):
    call = replace(recorded_call(app, stored_call(client)), flows=("my-ivr",), voice_flows="x.y")
    message = failure_of(call, app, call.callbacks[0])
    assert message == (
        "the call was answered by flow 'my-ivr', which the app under test does not have "
        "(its flows: click-to-call, demo-ivr); run the tests with the flows it ran with "
        "(VOICE_FLOWS=x.y)"
    )


def test_missing_callback_credentials_are_pointed_out(client, app, app_config):
    from app import create_app

    call = recorded_call(app, stored_call(client))
    assert call.credentials
    without = {k: v for k, v in app_config.items() if not k.startswith("CALLBACK_")}
    message = failure_of(call, create_app(without), call.callbacks[0])
    assert "the app under test has none: set CALLBACK_USERNAME and CALLBACK_PASSWORD" in message
    assert '-  <Gather firstDigitTimeout="5"' in message


@pytest.mark.parametrize(
    "factory", ["no_such_module_here:create_app", "callbacks:create_app"], ids=["module", "name"]
)
def test_without_an_app_fixture_a_missing_factory_is_named(factory, tmp_path):
    call = RecordedCall(call_id=CALL, legs=(CALL,), callbacks=(), factory=factory)
    with pytest.raises(pytest.fail.Exception) as failed:
        factory_app(call, tmp_path)
    assert str(failed.value).startswith(
        f"the tests have no `app` fixture and the app factory {factory} cannot be loaded ("
    )


@pytest.mark.parametrize(
    "recorded, environ",
    [("examples.ivr", {}), ("flows_of_another_checkout", {"VOICE_FLOWS": "examples.ivr"})],
    ids=["recorded-flows", "the-environment's-flows"],
)
def test_without_an_app_fixture_the_factory_gets_the_environment_and_a_temp_database(
    recorded, environ, tmp_path, monkeypatch
):
    monkeypatch.setenv("SAFE_SPEECH", "Sorry, from the environment.")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'production.db'}")
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    call = RecordedCall(
        call_id=CALL, legs=(CALL,), callbacks=(), voice_flows=recorded, credentials=True
    )
    app = factory_app(call, tmp_path / "run")
    try:
        assert app.testing
        assert app.config["SAFE_SPEECH"] == "Sorry, from the environment."
        assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'run' / 'events.db'}"
        assert app.config["VOICE_FLOWS"] == "examples.ivr"
        assert app.extensions["callbacks"].credentials  # stand-ins, as the call had some
    finally:
        app.extensions["store"].dispose()
        app.extensions["sandbox"].close()


def test_a_conference_call_takes_the_conference_events_but_not_other_members(client, app):
    bandwidth = Bandwidth(client)
    cid, someone_else = call_id(), call_id()
    assert bandwidth.post("answer", answer_event(callId=cid)).status_code == 200
    created = conference_event("conferenceCreated")
    assert bandwidth.post("conference", created).status_code == 200
    for member in (cid, someone_else):
        joined = conference_event("conferenceMemberJoin", callId=member, **{"from": FROM})
        assert bandwidth.post("conference", joined).status_code == 200
    call = recorded_call(app, cid)
    assert call.labels() == ["01-answer", "02-conferenceCreated", "03-conferenceMemberJoin"]
    assert call.callbacks[2].payload["callId"] == cid
    for callback in call.callbacks:
        call.check(app, callback)


@pytest.mark.parametrize(
    "body, bases",
    [
        (
            '<Gather gatherUrl="http://127.0.0.1:18202/callbacks/gather"/>',
            ["http://127.0.0.1:18202"],
        ),
        (
            '<Redirect redirectUrl="https://cb.example.com/voice/callbacks/redirect?step=2"/>',
            ["https://cb.example.com/voice"],
        ),
        ('<Redirect redirectUrl="https://cb.example.com/callbacksx/redirect"/>', []),
        ("<SpeakSentence>see https://x.example/callbacks/ soon</SpeakSentence>", []),
        (None, []),
    ],
)
def test_callback_bases_table(body, bases):
    assert callback_bases(body) == bases


def test_an_export_from_another_public_url_still_compares(client, app, app_config):
    """The CLI run without the server's PORT (or after PUBLIC_BASE_URL changed) exports with
    another public URL than the one the replies were built with."""
    from app import create_app

    cid = stored_call(client)
    elsewhere = create_app({**app_config, "PUBLIC_BASE_URL": "https://elsewhere.example"})
    call = recorded_call(elsewhere, cid)
    lines = [line for callback in call.callbacks for line in callback.reply]
    assert any("{PUBLIC_BASE_URL}/callbacks/gather" in line for line in lines)
    assert not any(app_config["PUBLIC_BASE_URL"] in line for line in lines)
    for callback in call.callbacks:
        call.check(app, callback)


def test_export_test_with_another_secret_key_warns_once(client, app_config, tmp_path, caplog):
    from app import create_app

    cid = stored_call(client)
    other = create_app({**app_config, "SECRET_KEY": "not-the-server-key"})
    path = tmp_path / "test_other.py"
    result = other.test_cli_runner().invoke(args=["voice", "export-test", cid, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: 2 signed tag(s) of the call do not verify with this app's SECRET_KEY" in (
        result.output
    )
    assert "does not verify for this call" not in caplog.text  # no log line per tag


def test_export_test_from_an_app_without_the_calls_flow_says_so(client, app_config, tmp_path):
    """Run from a shell whose VOICE_FLOWS differs from the server's, the export would name
    the wrong modules: it warns, naming the flow."""
    from app import create_app

    cid = stored_call(client)
    other = create_app({**app_config, "VOICE_FLOWS": "examples.conference"})
    path = tmp_path / "test_other.py"
    result = other.test_cli_runner().invoke(args=["voice", "export-test", cid, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: the call was answered by flow(s) 'demo-ivr'" in result.output
    same = create_app(app_config).test_cli_runner()
    quiet = same.invoke(args=["voice", "export-test", cid, "-o", str(tmp_path / "t.py")])
    assert "answered by flow" not in quiet.output


WITHOUT_PYTEST = """
import builtins, sys
real_import = builtins.__import__

def no_pytest(name, *args, **kwargs):
    if name.split(".")[0] in ("pytest", "_pytest"):
        raise ModuleNotFoundError("No module named 'pytest'", name="pytest")
    return real_import(name, *args, **kwargs)

builtins.__import__ = no_pytest
from app import create_app

app = create_app({settings!r})
with app.test_request_context():
    from callbacks.regression_export import export_file
print("pytest imported:", "pytest" in sys.modules)
"""


def test_the_app_and_the_export_run_without_pytest(tmp_path):
    """A deployment installs requirements.txt only: the dashboard's export must not need
    pytest (the generated files do, where they run)."""
    settings = {
        "TESTING": True,
        "SECRET_KEY": "k",
        "DASHBOARD_PASSWORD": "d",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
    }
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYTEST.format(settings=settings)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("pytest imported: False")
