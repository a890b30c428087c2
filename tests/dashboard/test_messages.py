"""Stored error messages for people, the technical detail one click away; the banner."""

from __future__ import annotations

import base64

import pytest
from markupsafe import escape

from dashboard.messages import explain
from store import get_store
from tests.callbacks.helpers import disconnect_event
from tests.dashboard.conftest import failed_call

POOL_TIMEOUT = "HTTPConnectionPool(host='10.0.0.5', port=8000): Read timed out. (read timeout=15)"
POOL_REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
    "/callbacks/answer (Caused by NewConnectionError('<urllib3.connection.HTTPConnection "
    "object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection refused'))"
)


@pytest.mark.parametrize(
    ("raw", "sentence"),
    [
        (POOL_TIMEOUT, "your callback URL did not respond within 15 s"),
        (
            POOL_REFUSED,
            "connection refused at http://127.0.0.1:9/callbacks/answer: is the app running",
        ),
        ("http://app.example/callbacks/answer answered HTTP 500", "your app answered 500"),
        (
            "http://app.example/callbacks/gather answered HTTP 401",
            "your app refused the callback (401): Bandwidth sent no credentials or wrong ones",
        ),
        (
            "HTTPSConnectionPool(host='x.example', port=443): Max retries exceeded with url: / "
            "(Caused by SSLError(SSLCertVerificationError(1, 'certificate verify failed')))",
            "failed the TLS handshake",
        ),
    ],
)
def test_raw_exceptions_become_sentences_with_the_raw_text_as_detail(raw, sentence):
    explained = explain(raw)
    assert sentence in explained.text
    assert "HTTPConnectionPool" not in explained.text
    assert explained.detail == raw


def test_handler_failures_are_summed_up_in_a_sentence():
    from dashboard.messages import handler_failure

    traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'order'\n"
    assert handler_failure(traceback) == ("your handler raised KeyError: 'order'", traceback)
    invalid = (
        "Traceback ...\nbxml.errors.BxmlError: Gather: too many digits\n"
        "The handler's document:\n<Response/>"
    )
    assert (
        handler_failure(invalid).text
        == "your handler returned invalid BXML: Gather: too many digits"
    )
    assert handler_failure("NoFlow: nobody answers +1202").text == (
        "no flow answers this call: nobody answers +1202"
    )


def test_sentences_pass_through_and_the_sandbox_split_is_kept():
    assert explain("Callee is busy") == ("Callee is busy", None)
    assert explain(None) == ("", None)
    split = explain("The answer callback failed: x did not respond within 15 s. Detail: raw")
    assert split == ("The answer callback failed: x did not respond within 15 s.", "raw")


def test_the_list_shows_the_sentence_and_keeps_the_detail_one_click_away(operator, bw):
    failed_call(bw, cause="callback-error", errorMessage=POOL_REFUSED)
    html = operator.get("/dashboard").get_data(as_text=True)
    cell = html[html.index('class="message"') :]
    cell = cell[: cell.index("</td>")]
    assert cell.startswith(
        'class="message" data-label="Error message">connection refused at http://127.0.0.1:9/'
    )
    assert "<details><summary>technical detail</summary>" in cell
    assert str(escape(POOL_REFUSED)) in cell[cell.index("<details>") :]


def test_hostile_messages_stay_escaped(operator, bw):
    failed_call(bw, cause="error", errorMessage="<script>alert(1)</script> answered HTTP 500")
    html = operator.get("/dashboard").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_the_banner_is_on_every_page_while_refusals_continue(operator, app, client):
    wrong = {"Authorization": "Basic " + base64.b64encode(b"bw:nope").decode()}
    event = disconnect_event(cause="hangup")
    assert client.post("/callbacks/disconnect", json=event, headers=wrong).status_code == 401
    for path in ("/dashboard", "/dashboard/rejected", "/dashboard/credential-failures"):
        page = operator.get(path).get_data(as_text=True)
        assert 'id="credential-alarm"' in page, path
        assert "the credentials Bandwidth sends do not match" in page
    log_page = operator.get("/dashboard/credential-failures").get_data(as_text=True)
    assert ">bw<" in log_page and "nope" not in log_page
    assert event["callId"] in log_page
    # Once the refusals are older than the alarm window, the banner goes.
    with app.app_context():
        from sqlalchemy import text

        with get_store().engine.begin() as conn:
            conn.execute(text("UPDATE credential_failures SET last_seen = last_seen - 3600"))
            conn.execute(text("UPDATE refused_calls SET last_seen = last_seen - 3600"))
    assert 'id="credential-alarm"' not in operator.get("/dashboard").get_data(as_text=True)


def test_no_banner_for_a_healthy_app(operator, bw):
    failed_call(bw, cause="busy")
    assert 'id="credential-alarm"' not in operator.get("/dashboard").get_data(as_text=True)


def test_the_abnormal_label_follows_include_hangups(operator):
    default = operator.get("/dashboard").get_data(as_text=True)
    assert "Needs attention (all but normal hangups)" in default
    everything = operator.get("/dashboard?all=1").get_data(as_text=True)
    assert "Needs attention" not in everything and ">Every call<" in everything
    assert "Abnormal (all but hangup)" not in default + everything


def test_the_json_api_has_a_line_per_category_and_the_credential_log(operator, bw, client):
    failed_call(bw, cause="busy")
    failed_call(bw, cause="hangup")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"bw:nope").decode()}
    event = disconnect_event(cause="hangup")
    assert client.post("/callbacks/disconnect", json=event, headers=wrong).status_code == 401
    lines = operator.get("/api/categories").get_json()["categories"]
    by_name = {line["category"]: line for line in lines}
    assert {name: line["count"] for name, line in by_name.items()} == {
        "busy": 1,
        "hangup": 1,
        "credential-failure": 1,
    }
    assert by_name["credential-failure"]["needsAttention"] is True
    assert by_name["hangup"]["needsAttention"] is False
    assert by_name["busy"]["description"] == "the callee was busy"
    log = operator.get("/api/credential-failures").get_json()
    (line,) = log["credentialFailures"]
    assert line["username"] == "bw" and line["kind"] == "wrong" and "nope" not in str(log)
    assert [c["callId"] for c in log["refusedCalls"]] == [event["callId"]]
    assert operator.get("/api/categories?since=yesterday").status_code == 400
