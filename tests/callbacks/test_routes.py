"""The callback routes end to end through the Flask test client and a real SQLite store."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

import bxml
from arrival import ARRIVED, ARRIVED_AT
from bxml import Hangup, PhoneNumber, Response, SpeakSentence, Tag, Transfer
from callbacks import Flow
from callbacks.events import snake_case
from callbacks.tags import decode_state
from store import get_store
from tests.callbacks.conftest import events, post_raw, rejected
from tests.callbacks.helpers import (
    ABSENT,
    Bandwidth,
    answer_event,
    basic_auth,
    call_event,
    call_id,
    conference_event,
    disconnect_event,
)

# --- answering ---------------------------------------------------------------------------


def test_answer_runs_the_handler_and_stores_the_event(app, voice, bandwidth):
    @voice.on("answer")
    def greet(event):
        return Response(SpeakSentence(f"Hello {event.to} & welcome"))

    payload = answer_event()
    reply = bandwidth.post("answer", payload)
    assert reply.status_code == 200
    assert reply.content_type == "application/xml; charset=utf-8"
    [lead, *rest] = bxml.parse(reply.data)
    # The framework's own <Tag> first: it keeps the call's flow for every later callback.
    assert lead.name == "Tag"
    assert rest == [SpeakSentence("Hello +12025550123 & welcome")]
    [stored] = events(app, payload["callId"])
    assert stored["event_type"] == "answer"
    assert stored["payload"] == payload
    assert stored["reply_status"] == 200
    assert stored["reply_body"] == reply.get_data(as_text=True)
    assert stored["latency_ms"] >= 0


def test_latency_and_receipt_count_from_the_servers_arrival_stamp(app, voice, bandwidth):
    # The shipped server stamps a request when it has read it, before it waits for a
    # thread: that wait is part of what Bandwidth waits for.
    waited = 3.0
    arrived, arrived_at = time.perf_counter() - waited, time.time() - waited
    payload = answer_event()
    reply = bandwidth.post(
        "answer", payload, environ_base={ARRIVED: arrived, ARRIVED_AT: arrived_at}
    )
    assert reply.status_code == 200
    [stored] = events(app, payload["callId"])
    assert stored["latency_ms"] >= waited * 1000
    assert stored["received_at"] == pytest.approx(arrived_at)


def test_without_an_arrival_stamp_the_app_counts_from_its_own_start(app, voice, bandwidth):
    before = time.time()
    payload = answer_event()
    assert bandwidth.post("answer", payload).status_code == 200
    [stored] = events(app, payload["callId"])
    assert before <= stored["received_at"] <= time.time()


def test_handler_sees_a_typed_event(app, voice, bandwidth):
    seen = {}

    @voice.on("answer")
    def capture(event):
        seen["event"] = event

    payload = answer_event(
        machineDetectionResult={"value": "human", "duration": "PT4S"}, brandNewField="kept"
    )
    assert bandwidth.post("answer", payload).status_code == 200
    event = seen["event"]
    assert event.event_type == "answer"
    assert event.call_id == payload["callId"]
    assert event.from_ == "+12025550100"
    assert event.answer_time.isoformat() == "2019-06-20T15:54:25.432000+00:00"
    assert event.machine_detection_result == {"value": "human", "duration": "PT4S"}
    assert event.extra == {"brandNewField": "kept"}
    assert event.tag is None


def test_get_delivery_gives_the_same_event(app, voice, bandwidth):
    seen = []
    voice.on("answer")(seen.append)
    payload = answer_event(machineDetectionResult={"value": "human"}, tag="t" * 4096)
    assert bandwidth.get("answer", payload).status_code == 200
    assert bandwidth.post("answer", {**payload, "callId": call_id()}).status_code == 200
    got, posted = seen
    assert got.machine_detection_result == posted.machine_detection_result == {"value": "human"}
    assert got.tag == posted.tag == "t" * 4096
    assert got.answer_time == posted.answer_time


def test_get_accepts_flattened_nested_objects(voice, client):
    seen = []
    voice.on("answer")(seen.append)
    query = "eventType=answer&callId=c-1&machineDetectionResult.value=human&machineDetectionResult[duration]=PT1S"
    reply = client.get(f"/callbacks/answer?{query}", headers=basic_auth())
    assert reply.status_code == 200
    assert seen[0].machine_detection_result == {"value": "human", "duration": "PT1S"}


def test_no_answer_handler_answers_the_safe_document_and_says_why(app, bandwidth, voice):
    payload = answer_event()
    reply = bandwidth.post("answer", payload)
    assert reply.status_code == 200
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]
    detail = events(app, payload["callId"])[0]["error_detail"]
    assert "flow 'test' has no 'answer' handler" in detail


def test_no_handler_for_a_later_event_answers_an_empty_response(bandwidth, voice):
    reply = bandwidth.post("gather", call_event("gather", digits="1"))
    assert reply.status_code == 200
    assert bxml.parse(reply.data) == Response()


@pytest.mark.parametrize(
    "event_type",
    [
        "disconnect",
        "transferDisconnect",
        "recordingAvailable",
        "dtmf",
        "machineDetectionComplete",
        "transcriptionAvailable",
    ],
)
def test_async_events_answer_204_whatever_the_handler_returns(app, voice, bandwidth, event_type):
    voice.on(event_type)(lambda event: Response(SpeakSentence("ignored")))
    payload = call_event(event_type)
    reply = bandwidth.post(event_type, payload)
    assert reply.status_code == 204
    assert reply.data == b""
    assert len(events(app, payload["callId"])) == 1


def test_disconnect_fields_are_stored(app, bandwidth):
    payload = disconnect_event(cause="invalid-bxml", errorMessage="bad <BXML>", tag="t1")
    assert bandwidth.post("disconnect", payload).status_code == 204
    [row] = events(app, payload["callId"])
    assert (
        row["cause"],
        row["error_message"],
        row["error_id"],
        row["sip_response_code"],
        row["tag"],
    ) == ("invalid-bxml", "bad <BXML>", payload["errorId"], 486, "t1")


# --- failures of our own handler ---------------------------------------------------------------


def test_failing_handler_answers_the_safe_document_and_records_why(app, voice, bandwidth):
    @voice.on("answer")
    def broken(event):
        raise RuntimeError("database of menus is empty")

    payload = answer_event()
    reply = bandwidth.post("answer", payload)
    assert reply.status_code == 200
    doc = bxml.parse(reply.data)
    assert [verb.name for verb in doc] == ["SpeakSentence", "Hangup"]
    [row] = events(app, payload["callId"])
    assert "RuntimeError: database of menus is empty" in row["error_detail"]


def test_reply_context_rules_are_enforced(app, voice, bandwidth):
    @voice.on("transferAnswer")
    def bad(event):  # Transfer is not allowed in a transferAnswer reply
        return Response(Transfer(PhoneNumber("+12025550199")))

    payload = call_event("transferAnswer")
    reply = bandwidth.post("transferAnswer", payload)
    assert reply.status_code == 200
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]
    [row] = events(app, payload["callId"])
    assert "Transfer" in row["error_detail"]
    assert "<PhoneNumber>+12025550199</PhoneNumber>" in row["error_detail"]


@pytest.mark.parametrize("returned", ["<Response/>", 42, bxml.Bxml()])
def test_handler_must_return_a_response_document(app, voice, bandwidth, returned):
    voice.on("answer")(lambda event: returned)
    payload = answer_event()
    reply = bandwidth.post("answer", payload)
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]
    assert "must return a bxml.Response" in events(app, payload["callId"])[0]["error_detail"]


def test_fallback_mode_answers_503(app_config):
    from app import create_app

    application = create_app({**app_config, "ANSWER_FAILURE_MODE": "fallback"})
    registry = application.extensions["flows"].register(Flow("failing"), default=True)
    registry.on("answer")(lambda event: 1 / 0)
    reply = Bandwidth(application.test_client()).post("answer", answer_event())
    assert reply.status_code == 503


def test_fallback_route_serves_the_safe_document(app, voice, bandwidth):
    voice.on("answer")(lambda event: Response(SpeakSentence("primary")))
    reply = bandwidth.post("answer-fallback", answer_event())
    assert reply.status_code == 200
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]


def test_fallback_route_works_with_the_store_down(app_config, tmp_path):
    from app import create_app

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    application = create_app(
        {
            **app_config,
            "DATABASE_URL": f"sqlite:///{blocker}/events.db",
            "SPOOL_PATH": str(blocker / "spool.jsonl"),
        }
    )
    bw = Bandwidth(application.test_client())
    reply = bw.post("answer-fallback", answer_event())
    assert reply.status_code == 200
    assert [verb.name for verb in bxml.parse(reply.data)] == ["SpeakSentence", "Hangup"]
    # the primary route refuses rather than acknowledging what it cannot keep
    assert bw.post("disconnect", disconnect_event()).status_code == 503


def test_store_down_spools_and_acknowledges(app_config, tmp_path):
    from app import create_app

    spool = tmp_path / "spool.jsonl"
    application = create_app(
        {
            **app_config,
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
            "SPOOL_PATH": str(spool),
        }
    )
    payload = disconnect_event()
    try:
        reply = Bandwidth(application.test_client()).post("disconnect", payload)
        assert reply.status_code == 204
        [line] = spool.read_text().splitlines()
        assert payload["callId"] in line
    finally:
        get_store(application).dispose()  # and its spool's retry timer


def test_copies_answered_while_the_store_is_locked_get_the_stored_reply_once_it_is_back(
    app_config, tmp_path
):
    from app import create_app

    app_config["STORE_BUSY_TIMEOUT"] = 0.2
    application = create_app(app_config)
    voice = application.extensions["flows"].register(Flow("test"), default=True)
    calls: list[int] = []

    @voice.on("answer")
    def answer(event):
        calls.append(1)
        return Response(SpeakSentence(f"reply {len(calls)}"))

    def spoken(reply):
        return bxml.parse(reply.data).children[-1].text

    bw = Bandwidth(application.test_client())
    store = get_store(application)
    store.migrate()
    payload = answer_event()
    holder = sqlite3.connect(str(tmp_path / "events.db"), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        first = bw.post("answer", payload)
        second = bw.post("answer", payload)  # spooled too: not answered from memory
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        assert (first.status_code, second.status_code) == (200, 200)
        assert (spoken(first), spoken(second)) == ("reply 1", "reply 2")
        store.replay_spool()  # the first spooled copy is the one stored
        [stored] = events(application, payload["callId"])
        assert "reply 1" in stored["reply_body"]
        # Every copy from now on gets the stored reply, in this worker too.
        assert spoken(bw.post("answer", payload)) == "reply 1"
        assert spoken(bw.post("answer", payload)) == "reply 1"
        assert len(calls) == 3  # the last from memory
    finally:
        store.dispose()


# --- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth(password="wrong"),
        basic_auth(user="intruder"),
        basic_auth(password="pä"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer token"},
        {"Authorization": "Basic " + "w6Q="},  # "ä" with no colon
    ],
)
@pytest.mark.parametrize("route", ["answer", "disconnect", "gather"])
def test_bad_credentials_get_the_challenge_and_store_nothing(app, bandwidth, headers, route):
    payload = call_event("answer" if route == "answer" else route)
    reply = bandwidth.post(route, payload, auth=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith('Basic realm="')
    assert events(app, payload["callId"]) == []
    assert rejected(app) == []


def test_challenge_then_credentials(app, bandwidth):
    payload = answer_event()
    assert bandwidth.post("answer", payload, auth={}).status_code == 401
    assert bandwidth.post("answer", payload).status_code == 200
    assert len(events(app, payload["callId"])) == 1


def test_rotation_and_fallback_credentials(app_config):
    from app import create_app

    application = create_app(
        {
            **app_config,
            "CALLBACK_CREDENTIALS": "next:rotated,third:pw3",
            "FALLBACK_USERNAME": "fb",
            "FALLBACK_PASSWORD": "fb-secret",
        }
    )
    bw = Bandwidth(application.test_client())
    for auth in (basic_auth(), basic_auth("next", "rotated"), basic_auth("third", "pw3")):
        assert bw.post("disconnect", disconnect_event(), auth=auth).status_code == 204
    assert (
        bw.post("answer-fallback", answer_event(), auth=basic_auth("fb", "fb-secret")).status_code
        == 200
    )
    assert bw.post("answer", answer_event(), auth=basic_auth("fb", "fb-secret")).status_code == 401


def test_without_configured_credentials_routes_work_and_warn(app_config, caplog):
    from app import create_app

    config = {**app_config, "CALLBACK_USERNAME": None, "CALLBACK_PASSWORD": None}
    application = create_app(config)
    assert "NO CALLBACK CREDENTIALS CONFIGURED" not in caplog.text  # flask commands stay quiet
    bandwidth = Bandwidth(application.test_client())
    for _ in range(2):
        reply = bandwidth.post("disconnect", disconnect_event(), auth={})
        assert reply.status_code == 204
    # Said once per process, on the first callback (the server's banner says it at start).
    assert caplog.text.count("NO CALLBACK CREDENTIALS CONFIGURED") == 1


def test_passwords_in_our_bxml_are_not_stored_but_duplicates_get_them(app, voice, bandwidth):
    @voice.on("answer")
    def gather(event):
        return Response(
            bxml.Gather(
                SpeakSentence("Press"), gather_url="/callbacks/gather", **voice.credentials()
            )
        )

    payload = answer_event()
    first = bandwidth.post("answer", payload)
    assert b'password="callback-secret"' in first.data
    [row] = events(app, payload["callId"])
    assert "callback-secret" not in row["reply_body"]
    assert "[redacted:" in row["reply_body"]
    second = bandwidth.post("answer", payload)
    assert second.data == first.data


# --- routes and event types ----------------------------------------------------------------


def test_unknown_route_is_404(bandwidth):
    reply = bandwidth.post("nonsense", answer_event())
    assert reply.status_code == 404
    assert b"unknown callback route" in reply.data


def test_event_type_must_belong_to_the_route(app, bandwidth):
    payload = call_event("gather")
    reply = bandwidth.post("answer", payload)
    assert reply.status_code == 422
    assert b"'gather' is not accepted at /callbacks/answer" in reply.data
    assert events(app, payload["callId"]) == []


@pytest.mark.parametrize("route", ["recordComplete", "recordingComplete"])
def test_recording_complete_is_an_alias(app, voice, bandwidth, route):
    seen = []
    voice.on("recordComplete")(seen.append)
    payload = call_event("recordingComplete", recordingId="r-1")
    assert bandwidth.post(route, payload).status_code == 200
    assert seen[0].event_type == "recordComplete"
    assert seen[0].recording_id == "r-1"


def test_conference_events_are_grouped_by_conference(app, bandwidth):
    created = conference_event("conferenceCreated")
    joined = conference_event("conferenceMemberJoin", callId=call_id(), **{"from": "+12025550100"})
    completed = conference_event("conferenceCompleted")
    assert bandwidth.post("conference", created).status_code == 200
    assert bandwidth.post("conferenceMemberJoin", joined).status_code == 200
    assert bandwidth.post("conference", completed).status_code == 204
    with app.app_context():
        rows = get_store().events_for_conference(created["conferenceId"])
    assert [r["event_type"] for r in rows] == [
        "conferenceCreated",
        "conferenceMemberJoin",
        "conferenceCompleted",
    ]


@pytest.mark.parametrize(
    ("payload", "missing"),
    [
        (conference_event("conferenceCreated", conferenceId=ABSENT), "conferenceId"),
        (conference_event("conferenceCreated", name=ABSENT), "name"),
        (conference_event("conferenceMemberJoin"), "callId"),
    ],
)
def test_conference_required_fields(bandwidth, payload, missing):
    reply = bandwidth.post("conference", payload)
    assert reply.status_code == 422
    assert missing.encode() in reply.data


# --- tag state ---------------------------------------------------------------------------------


def test_tag_state_flows_from_creation_through_callbacks(app, voice, bandwidth):
    from callbacks import encode_state

    seen = []

    @voice.on("answer")
    def answer(event):
        seen.append(event.state)
        return Response(voice.tag({**event.state, "step": "menu"}))

    @voice.on("gather")
    def gather(event):
        seen.append(event.state)
        return Response(Tag(""), Hangup())

    @voice.on("disconnect")
    def disconnect(event):
        seen.append(event.state)

    cid = call_id()
    created_tag = encode_state({"flow": "click-to-call"}, app.config["SECRET_KEY"])
    reply = bandwidth.post("answer", answer_event(callId=cid, tag=created_tag))
    [tag_verb] = bxml.parse(reply.data)
    # Bandwidth carries the new tag on every later callback; an empty <Tag> clears it.
    bandwidth.post("gather", call_event("gather", callId=cid, tag=tag_verb.text, digits="1"))
    bandwidth.post("disconnect", disconnect_event(callId=cid, tag=ABSENT))
    assert seen == [{"flow": "click-to-call"}, {"flow": "click-to-call", "step": "menu"}, {}]


@pytest.mark.parametrize(
    "shared",
    [
        Response(SpeakSentence("Welcome"), Hangup()),
        # With tags the framework rewrites: they go into a copy of each call's own.
        Response(SpeakSentence("Welcome"), Transfer(PhoneNumber("+15555550123"))),
    ],
    ids=["without-tags", "with-tags"],
)
def test_one_document_for_every_call_gets_each_calls_own_tag_and_stays_as_it_was(
    app, voice, bandwidth, shared
):
    voice.on("answer")(lambda event: shared)
    before = shared.to_bxml()
    first, second = call_id(), call_id()
    replies = [
        bxml.parse(bandwidth.post("answer", answer_event(callId=cid)).data)
        for cid in (first, second)
    ]
    for cid, reply in zip((first, second), replies, strict=True):
        [lead, *rest] = reply
        assert lead.name == "Tag"
        # Bound to its own call: it names the flow on that call's callbacks, not another's.
        assert decode_state(lead.text, app.config["SECRET_KEY"], call_id=cid) == {"_flow": "test"}
        assert decode_state(lead.text, app.config["SECRET_KEY"], call_id=call_id()) == {}
        assert [verb.name for verb in rest] == [verb.name for verb in shared]
    assert shared.to_bxml() == before


def test_forged_tag_state_is_ignored(app, voice, bandwidth):
    from callbacks import encode_state

    seen = []
    voice.on("answer")(lambda event: seen.append(event.state))
    forged = encode_state({"flow": "admin"}, "not-our-secret")
    bandwidth.post("answer", answer_event(tag=forged))
    assert seen == [{}]


def test_tag_state_bound_to_a_call_is_refused_on_another_call(app, voice, bandwidth):
    from callbacks import encode_state

    seen = []
    voice.on("answer")(lambda event: seen.append(("answer", event.state)))
    voice.on("transferAnswer")(lambda event: seen.append(("transferAnswer", event.state)))
    a_leg, b_leg, stranger = call_id(), call_id(), call_id()
    tag = encode_state({"flow": "transfer"}, app.config["SECRET_KEY"], call_id=a_leg)
    bandwidth.post("answer", answer_event(callId=a_leg, tag=tag))
    # The B-leg of a <Transfer> has its own callId and names the A-leg as parentCallId.
    bandwidth.post(
        "transferAnswer", call_event("transferAnswer", callId=b_leg, parentCallId=a_leg, tag=tag)
    )
    bandwidth.post("answer", answer_event(callId=stranger, tag=tag))
    assert seen == [
        ("answer", {"flow": "transfer"}),
        ("transferAnswer", {"flow": "transfer"}),
        ("answer", {}),
    ]


def test_events_api_requires_dashboard_login(app, client, bandwidth):
    payload = answer_event()
    bandwidth.post("answer", payload)
    url = f"/api/calls/{payload['callId']}/events"
    assert client.get(url).status_code == 401
    reply = client.get(url, headers=basic_auth("operator", "dashboard-secret"))
    assert reply.status_code == 200
    [event] = reply.get_json()["events"]
    assert event["eventType"] == "answer"
    assert event["payload"] == payload


def test_surrogate_pairs_are_one_character_and_read_back_as_strict_json(app, client):
    # json.dumps escapes an emoji as a surrogate pair; an escaped backslash is plain text.
    payload = disconnect_event(tag="smile \U0001f600", note="\\ud800 is text here")
    body = json.dumps(payload).encode()
    assert b"\\ud83d\\ude00" in body
    assert post_raw(client, body).status_code == 204
    reply = client.get(
        f"/api/calls/{payload['callId']}/events", headers=basic_auth("operator", "dashboard-secret")
    )
    [event] = json.loads(reply.data, parse_constant=pytest.fail)["events"]
    assert event["payload"]["tag"] == "smile \U0001f600"
    assert event["payload"]["note"] == "\\ud800 is text here"


@pytest.mark.parametrize(
    ("field", "sent", "read"),
    [
        ("eventTime", "2019-06-20t15:54:25.5z", "2019-06-20T15:54:25.500000+00:00"),
        ("endTime", "2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999+00:00"),
        ("endTime", "2016-12-31t15:59:60.25-08:00", "2016-12-31T15:59:59.999999-08:00"),
    ],
)
def test_rfc3339_times_are_accepted(app, voice, client, field, sent, read):
    seen = []
    voice.on("disconnect")(seen.append)
    payload = disconnect_event(**{field: sent})
    assert post_raw(client, json.dumps(payload).encode()).status_code == 204
    assert getattr(seen[0], snake_case(field)).isoformat() == read
    assert events(app, payload["callId"])[0]["payload"][field] == sent


def test_a_204_has_no_content_type(bandwidth):
    reply = bandwidth.post("disconnect", disconnect_event())
    assert reply.status_code == 204
    assert "Content-Type" not in reply.headers
