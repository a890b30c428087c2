"""Conference: several calls in one named conference, its events in order, conference BXML
(recording), the Conferences API (members' mute/hold, ending it, redirecting it)."""

from __future__ import annotations

import io
import time
import wave

import pytest

from callbacks.events import EVENT_FIELDS
from tests.sandbox.conftest import FROM, basic_credentials

CONF_EVENT_KEYS = ["eventType", "eventTime", "conferenceId", "name"]
MEMBER_EVENT_KEYS = [*CONF_EVENT_KEYS, "from", "to", "callId"]
CALLERS = ("+12025550111", "+12025550112", "+12025550113")


def conference_answer(name: str = "room-1", attrs: str = 'conferenceEventUrl="/conf"') -> str:
    return (
        f"<Response><SpeakSentence>Joining</SpeakSentence>"
        f"<Conference {attrs}>{name}</Conference>"
        f'<SpeakSentence>You left the conference</SpeakSentence><Pause duration="300"/>'
        "</Response>"
    )


def join(api, call_body, receiver, count: int, **body) -> list[str]:
    """``count`` calls that join the conference the receiver's /answer names, in order."""
    ids = []
    for index in range(count):
        call_id = api.create_ok(**call_body(to=CALLERS[index], **body))
        receiver.wait_for("conferenceMemberJoin", call_id)
        ids.append(call_id)
    return ids


def conference_events(receiver) -> list[tuple[str, str | None]]:
    return [
        (r.event_type, r.payload.get("callId"))
        for r in receiver.requests
        if r.event_type.startswith("conference")
    ]


def wait_until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)  # poll until the deadline


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_three_calls_meet_in_one_conference(api, call_body, receiver, sandbox, method):
    receiver.reply(
        "/answer",
        conference_answer(
            attrs=f'conferenceEventUrl="/conf" conferenceEventMethod="{method}" tag="room tag"'
        ),
    )
    receiver.reply("/conf", "<Response><SpeakSentence>Welcome</SpeakSentence></Response>")
    first, second, third = join(api, call_body, receiver, 3)

    created = receiver.wait_for("conferenceCreated")[0]
    assert created.method == method
    assert list(created.payload) == [*CONF_EVENT_KEYS, "tag"]
    conference_id = created.payload["conferenceId"]
    assert conference_id.startswith("conf-") and len(conference_id) == 50
    joins = receiver.events("conferenceMemberJoin")
    assert [r.payload["callId"] for r in joins] == [first, second, third]
    assert list(joins[1].payload) == [*MEMBER_EVENT_KEYS, "tag"]
    assert joins[1].payload["from"] == FROM and joins[1].payload["to"] == CALLERS[1]
    assert {r.payload["tag"] for r in joins} == {"room tag"}
    assert {r.payload["conferenceId"] for r in joins} == {conference_id}

    shown = api.session.get(
        f"{api.api_url}/accounts/{api.account_id}/conferences/{conference_id}", timeout=10
    ).json()
    assert shown["name"] == "room-1" and shown["completedTime"] is None
    assert shown["tag"] == "room tag" and shown["conferenceEventMethod"] == method
    assert [m["callId"] for m in shown["activeMembers"]] == [first, second, third]

    # A member leaves when its call hangs up; the last one out completes the conference.
    for call_id in (second, first, third):
        sandbox.hang_up(call_id)
        receiver.wait_for("disconnect", call_id)
    receiver.wait_for("conferenceCompleted")
    assert conference_events(receiver) == [
        ("conferenceCreated", None),
        ("conferenceMemberJoin", first),
        ("conferenceMemberJoin", second),
        ("conferenceMemberJoin", third),
        ("conferenceMemberExit", second),
        ("conferenceMemberExit", first),
        ("conferenceMemberExit", third),
        ("conferenceCompleted", None),
    ]
    # The exit comes before the call's disconnect.
    order = [(r.event_type, r.payload.get("callId")) for r in receiver.requests]
    assert order.index(("conferenceMemberExit", second)) < order.index(("disconnect", second))
    ended = api.session.get(
        f"{api.api_url}/accounts/{api.account_id}/conferences/{conference_id}", timeout=10
    ).json()
    assert ended["completedTime"] is not None and ended["activeMembers"] == []
    log = [line["text"] for line in sandbox.call(first)["log"]]
    assert any("SpeakSentence to every member: 'Welcome'" in text for text in log)


def test_a_recorded_conference(api, call_body, receiver, sandbox):
    receiver.reply("/answer", conference_answer(attrs='conferenceEventUrl="/conf"'))
    receiver.reply(
        "/conf",
        lambda r: (
            '<Response><StartRecording recordingAvailableUrl="/rec" fileFormat="wav"'
            ' tag="ignored"/></Response>'
            if r.event_type == "conferenceCreated"
            else ""
        ),
    )
    ids = join(api, call_body, receiver, 3)
    for call_id in ids:
        sandbox.hang_up(call_id)
    available = receiver.wait_for("conferenceRecordingAvailable")[0]
    assert available.path == "/rec"
    payload = available.payload
    # Every field of the spec's schema, in its order (no tag: the conference has none).
    assert list(payload) == [
        key for key in EVENT_FIELDS["conferenceRecordingAvailable"] if key != "tag"
    ]
    assert payload["status"] == "complete" and payload["channels"] == 1
    kinds = [r.event_type for r in receiver.requests if r.event_type.startswith("conference")]
    assert kinds[-2:] == ["conferenceCompleted", "conferenceRecordingAvailable"]

    conference_id = payload["conferenceId"]
    base = f"{api.api_url}/accounts/{api.account_id}/conferences/{conference_id}"
    listed = api.session.get(f"{base}/recordings", timeout=10).json()
    assert [r["recordingId"] for r in listed] == [payload["recordingId"]]
    assert listed[0]["status"] == "complete" and listed[0]["name"] == "room-1"
    one = api.session.get(f"{base}/recordings/{payload['recordingId']}", timeout=10).json()
    assert one["mediaUrl"] == payload["mediaUrl"] == f"{base}/recordings/{one['recordingId']}/media"
    media = api.session.get(payload["mediaUrl"], timeout=10)
    assert media.headers["Content-Type"] == "audio/vnd.wave"
    seconds = float(payload["duration"].removeprefix("PT").removesuffix("S"))
    with wave.open(io.BytesIO(media.content)) as audio:
        assert audio.getnchannels() == 1
        assert abs(audio.getnframes() / audio.getframerate() - seconds) < 0.001
    assert seconds > 0
    # Not among the calls' recordings.
    assert api.session.get(f"{api.api_url}/accounts/{api.account_id}/recordings").json() == []


class ConferenceApi:
    """The Conferences API of one conference, over the test's API session."""

    def __init__(self, api, conference_id: str) -> None:
        self.api = api
        self.base = f"{api.api_url}/accounts/{api.account_id}/conferences"
        self.url = f"{self.base}/{conference_id}"

    def get(self, path: str = "", **params):
        return self.api.session.get(self.url + path, params=params, timeout=10)

    def update(self, body) -> int:
        return self.api.session.post(self.url, json=body, timeout=10)

    def member(self, call_id: str, body=None):
        if body is None:
            return self.api.session.get(f"{self.url}/members/{call_id}", timeout=10)
        return self.api.session.put(f"{self.url}/members/{call_id}", json=body, timeout=10)

    def put_bxml(self, document: str):
        return self.api.session.put(
            self.url + "/bxml",
            data=document.encode(),
            headers={"Content-Type": "application/xml"},
            timeout=10,
        )


def started(api, call_body, receiver, count: int, attrs: str = "") -> tuple[ConferenceApi, list]:
    receiver.reply("/answer", conference_answer(attrs=f'conferenceEventUrl="/conf" {attrs}'))
    ids = join(api, call_body, receiver, count)
    conference_id = receiver.wait_for("conferenceCreated")[0].payload["conferenceId"]
    return ConferenceApi(api, conference_id), ids


def log_of(sandbox, call_id: str) -> list[str]:
    return [line["text"] for line in sandbox.call(call_id)["log"]]


def test_members_are_muted_held_and_coached_through_the_api(api, call_body, receiver, sandbox):
    conf, (coach, member) = started(
        api, call_body, receiver, 2, 'mute="true" callIdsToCoach="c-1,c-2"'
    )
    shown = conf.member(coach).json()
    assert shown == {
        "callId": coach,
        "conferenceId": conf.url.rsplit("/", 1)[1],
        "memberUrl": f"{conf.url}/members/{coach}",
        "mute": True,
        "hold": False,
        "callIdsToCoach": ["c-1", "c-2"],
    }
    assert conf.member(member, {"hold": True}).status_code == 204
    assert conf.member(member).json()["hold"] is True
    assert conf.member(member).json()["mute"] is True  # omitted: unchanged (the verb's)
    assert conf.member(coach, {"mute": False, "callIdsToCoach": [member]}).status_code == 204
    assert conf.member(coach).json()["callIdsToCoach"] == [member]
    assert conf.member(coach).json()["mute"] is False
    wait_until(lambda: any("this member's hold True" in t for t in log_of(sandbox, member)))
    members = conf.get().json()["activeMembers"]
    assert [(m["callId"], m["mute"], m["hold"]) for m in members] == [
        (coach, False, False),
        (member, True, True),
    ]
    for call_id in (coach, member):
        sandbox.hang_up(call_id)
    receiver.wait_for("conferenceCompleted")
    # A member that has left keeps its last state, and cannot be changed any more.
    assert conf.member(member).json()["hold"] is True
    assert conf.member(member, {"hold": False}).status_code == 404


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"mute": "yes"}, "mute"),
        ({"hold": 1}, "hold"),
        ({"callIdsToCoach": "c-1"}, "callIdsToCoach"),
        ({"volume": 3}, "volume"),
        ([], "JSON object"),
    ],
)
def test_bad_member_updates_get_400_naming_the_field(
    api, call_body, receiver, sandbox, body, named
):
    conf, (call_id,) = started(api, call_body, receiver, 1)
    reply = conf.member(call_id, body)
    assert reply.status_code == 400
    assert named in reply.json()["description"]
    sandbox.hang_up(call_id)


def test_unknown_conferences_and_members_are_404_and_other_accounts_403(
    api, call_body, receiver, sandbox
):
    conf, (call_id,) = started(api, call_body, receiver, 1)
    assert conf.member("c-00000000-nobody").status_code == 404
    unknown = ConferenceApi(api, "conf-00000000-00000000-0000-0000-0000-000000000000")
    for reply in (
        unknown.get(),
        unknown.get("/recordings"),
        unknown.update({"status": "completed"}),
    ):
        assert reply.status_code == 404
        assert "not found" in reply.json()["description"]
    other = api.session.get(f"{api.api_url}/accounts/123/conferences", timeout=10)
    assert other.status_code == 403
    assert api.session.delete(conf.url, timeout=10).status_code == 405
    sandbox.hang_up(call_id)


def test_ending_a_conference_ejects_every_member(api, call_body, receiver, sandbox):
    conf, ids = started(api, call_body, receiver, 3)
    bad = conf.update({"status": "completed", "redirectUrl": receiver.url("/r")})
    assert bad.status_code == 400 and "redirectUrl" in bad.json()["description"]
    bad = conf.update({"status": "active"})
    assert bad.status_code == 400 and "redirectUrl" in bad.json()["description"]
    assert conf.update({"status": "completed"}).status_code == 204
    receiver.wait_for("conferenceCompleted")
    exits = [r.payload["callId"] for r in receiver.events("conferenceMemberExit")]
    assert sorted(exits) == sorted(ids)
    # Each call goes on after <Conference>: it is still up, saying goodbye and pausing.
    for call_id in ids:
        wait_until(
            lambda c=call_id: any("ended by the Conferences API" in t for t in log_of(sandbox, c))
        )
        assert sandbox.call(call_id)["state"] == "answered"
        assert not receiver.events("disconnect", call_id)
    assert conf.get().json()["completedTime"] is not None
    assert conf.update({"status": "completed"}).status_code == 204  # again: nothing to do
    assert conf.update({"redirectUrl": receiver.url("/r")}).status_code == 404
    for call_id in ids:
        sandbox.hang_up(call_id)
        receiver.wait_for("disconnect", call_id)
    assert len(receiver.events("conferenceCompleted")) == 1


def test_a_conference_redirect_and_new_bxml_run_on_the_conference(
    api, call_body, receiver, sandbox
):
    conf, (first, second) = started(api, call_body, receiver, 2, 'tag="t"')
    receiver.reply("/redirected", "<Response><SpeakSentence>Attention</SpeakSentence></Response>")
    assert conf.update({"redirectUrl": receiver.url("/redirected")}).status_code == 204
    redirect = receiver.wait_for("conferenceRedirect")[0]
    assert redirect.path == "/redirected"
    assert list(redirect.payload) == [*CONF_EVENT_KEYS, "tag"]
    wait_until(lambda: any("'Attention'" in text for text in log_of(sandbox, first)))

    refused = conf.put_bxml("<Bxml><SpeakSentence>hi</SpeakSentence><Hangup/></Bxml>")
    assert refused.status_code == 400 and "Hangup" in refused.json()["description"]
    assert conf.put_bxml("<Bxml><StartRecording/></Bxml>").status_code == 204
    wait_until(lambda: any("StartRecording r-" in text for text in log_of(sandbox, first)))
    assert conf.put_bxml("<Bxml><StopRecording/></Bxml>").status_code == 204
    wait_until(lambda: conf.get("/recordings").json())
    (recording,) = conf.get("/recordings").json()
    assert recording["status"] == "complete"
    for call_id in (first, second):
        sandbox.hang_up(call_id)
    receiver.wait_for("conferenceCompleted")
    assert not receiver.events("conferenceRecordingAvailable")  # no recordingAvailableUrl


def test_a_reply_with_a_verb_not_allowed_is_rejected_completely(api, call_body, receiver, sandbox):
    receiver.reply(
        "/conf", "<Response><SpeakSentence>Not played</SpeakSentence><Hangup/></Response>"
    )
    conf, (call_id,) = started(api, call_body, receiver, 1)
    wait_until(lambda: any("rejected completely" in text for text in log_of(sandbox, call_id)))
    assert not any("Not played" in text for text in log_of(sandbox, call_id))
    assert [m["callId"] for m in conf.get().json()["activeMembers"]] == [call_id]
    sandbox.hang_up(call_id)


def test_a_redirected_call_leaves_the_conference(api, call_body, receiver, sandbox):
    conf, (first, second) = started(api, call_body, receiver, 2)
    receiver.reply("/elsewhere", '<Response><Pause duration="300"/></Response>')
    assert api.update(second, redirectUrl=receiver.url("/elsewhere")).status_code == 200
    assert receiver.wait_for("conferenceMemberExit")[0].payload["callId"] == second
    receiver.wait_for("redirect", second)
    assert [m["callId"] for m in conf.get().json()["activeMembers"]] == [first]
    for call_id in (first, second):
        sandbox.hang_up(call_id)
    receiver.wait_for("conferenceCompleted")


def test_without_an_event_url_no_events_are_sent(api, call_body, receiver, sandbox):
    receiver.reply("/answer", conference_answer(name="quiet", attrs='mute="false"'))
    first = api.create_ok(**call_body())
    second = api.create_ok(**call_body(to=CALLERS[1]))
    listed = wait_until(
        lambda: [
            c
            for c in api.session.get(
                f"{api.api_url}/accounts/{api.account_id}/conferences", params={"name": "quiet"}
            ).json()
        ]
    )
    conf = ConferenceApi(api, listed[0]["id"])
    wait_until(lambda: len(conf.get().json()["activeMembers"]) == 2)
    assert conf.get().json()["conferenceEventUrl"] is None
    for call_id in (first, second):
        sandbox.hang_up(call_id)
        receiver.wait_for("disconnect", call_id)
    assert conf.get().json()["completedTime"] is not None
    assert not conference_events(receiver)


def test_list_conferences_filters_and_pages(api, call_body, receiver, sandbox):
    names = ["alpha", "beta", "alpha"]
    for name in names:
        receiver.reply("/answer", conference_answer(name=name))
        call_id = api.create_ok(**call_body())
        receiver.wait_for("conferenceMemberJoin", call_id)
        sandbox.hang_up(call_id)
        receiver.wait_for("disconnect", call_id)
    url = f"{api.api_url}/accounts/{api.account_id}/conferences"
    every = api.session.get(url, timeout=10).json()
    assert [c["name"] for c in every] == names
    assert "activeMembers" not in every[0]
    assert len({c["id"] for c in every}) == 3  # a name used again is a new conference
    alphas = api.session.get(url, params={"name": "alpha"}, timeout=10).json()
    assert [c["id"] for c in alphas] == [every[0]["id"], every[2]["id"]]
    since = api.session.get(
        url, params={"minCreatedTime": every[1]["createdTime"]}, timeout=10
    ).json()
    assert [c["id"] for c in since] == [every[1]["id"], every[2]["id"]]
    until = api.session.get(
        url, params={"maxCreatedTime": every[1]["createdTime"]}, timeout=10
    ).json()
    assert [c["id"] for c in until] == [every[0]["id"], every[1]["id"]]

    pages, next_url = [], url + "?pageSize=2"
    while next_url:
        reply = api.session.get(next_url, timeout=10)
        pages.append([c["id"] for c in reply.json()])
        link = reply.headers.get("Link")
        next_url = link[1 : link.index(">")] if link else None
    assert pages == [[every[0]["id"], every[1]["id"]], [every[2]["id"]]]

    for params, named in (
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "1001"}, "pageSize"),
        ({"minCreatedTime": "yesterday"}, "minCreatedTime"),
        ({"pageToken": "!!"}, "pageToken"),
    ):
        reply = api.session.get(url, params=params, timeout=10)
        assert reply.status_code == 400 and named in reply.json()["description"]


def test_a_conference_across_two_drivers_on_sqlite_and_postgresql(
    db_server, db_api, make_sandbox, call_body, receiver
):
    """Members run by different drivers (processes) share the conference in the database."""
    from sandbox.standalone import Server

    other = Server(make_sandbox(time_scale=0.1)).start()
    try:
        receiver.reply("/answer", conference_answer(attrs='conferenceEventUrl="/conf"'))
        ids = []
        for index, server in enumerate((db_server, other, db_server)):
            body = call_body(to=CALLERS[index])
            created = server.sandbox.create_call(db_api.account_id, body, server.api_url)
            ids.append(created["callId"])
        for call_id in ids:
            receiver.wait_for("conferenceMemberJoin", call_id)
        assert len(receiver.events("conferenceCreated")) == 1
        # In order although three runners in two drivers send them: created, then joins.
        assert [kind for kind, _ in conference_events(receiver)] == [
            "conferenceCreated",
            *["conferenceMemberJoin"] * 3,
        ]
        conference_ids = {
            r.payload["conferenceId"] for r in receiver.requests if "conferenceId" in r.payload
        }
        assert len(conference_ids) == 1
        for call_id in ids:
            db_server.sandbox.hang_up(call_id)
        receiver.wait_for("conferenceCompleted")
        assert len(receiver.events("conferenceMemberExit")) == 3
        assert conference_events(receiver)[-1] == ("conferenceCompleted", None)
    finally:
        other.stop()


def test_a_later_members_event_url_and_tag_are_ignored(api, call_body, receiver, sandbox):
    receiver.reply("/answer", conference_answer(attrs='conferenceEventUrl="/conf" tag="first"'))
    (first,) = join(api, call_body, receiver, 1)
    receiver.reply("/answer", conference_answer(attrs='conferenceEventUrl="/other" tag="second"'))
    second = api.create_ok(**call_body(to=CALLERS[1]))
    joined = receiver.wait_for("conferenceMemberJoin", second)[0]
    assert joined.path == "/conf" and joined.payload["tag"] == "first"
    wait_until(
        lambda: any(
            "conferenceEventUrl, tag ignored; the creator's apply" in text
            for text in log_of(sandbox, second)
        )
    )
    assert not any("ignored" in text for text in log_of(sandbox, first))
    for call_id in (first, second):
        sandbox.hang_up(call_id)
    receiver.wait_for("conferenceCompleted")
    assert not [r for r in receiver.requests if r.path == "/other"]


def test_a_member_whose_driver_died_is_resumed_in_the_conference(make_sandbox, receiver):
    """Another driver takes the call over in the conference: no second join; its hang-up
    is still an exit and completes the conference."""
    receiver.reply("/answer", conference_answer(attrs='conferenceEventUrl="/conf"'))
    body = {
        "to": CALLERS[0],
        "from": FROM,
        "applicationId": "app-1",
        "answerUrl": receiver.url("/answer"),
        "disconnectUrl": receiver.url("/disconnect"),
    }
    dying = make_sandbox(lease_seconds=0.5)
    call_id = dying.create_call("9900000", body, "http://sandbox/api/v2")["callId"]
    receiver.wait_for("conferenceMemberJoin", call_id)
    wait_until(lambda: dying.call(call_id)["activity"] == "Conference")
    dying.driver.abandon()  # the worker "dies" while the call is in the conference

    survivor = make_sandbox(lease_seconds=0.5)
    survivor.start_driver()
    wait_until(lambda: any("resumed in conf-" in t for t in log_of(survivor, call_id)))
    survivor.hang_up(call_id)
    receiver.wait_for("conferenceCompleted")
    assert [kind for kind, _ in conference_events(receiver)] == [
        "conferenceCreated",
        "conferenceMemberJoin",
        "conferenceMemberExit",
        "conferenceCompleted",
    ]


def test_conference_audio_is_heard_by_every_member_but_those_on_hold(
    api, call_body, receiver, sandbox
):
    conf, (first, second, held) = started(api, call_body, receiver, 3)
    assert conf.member(held, {"hold": True}).status_code == 204
    wait_until(lambda: any("this member's hold True" in t for t in log_of(sandbox, held)))
    assert (
        conf.put_bxml("<Bxml><SpeakSentence>Announcement</SpeakSentence></Bxml>").status_code == 204
    )
    # The first member runs the document; the second hears it; the held one does not.
    wait_until(lambda: any("to every member: 'Announcement'" in t for t in log_of(sandbox, first)))
    wait_until(
        lambda: any("heard SpeakSentence 'Announcement'" in t for t in log_of(sandbox, second))
    )
    assert not any("Announcement" in text for text in log_of(sandbox, held))
    for call_id in (first, second, held):
        sandbox.hang_up(call_id)
    receiver.wait_for("conferenceCompleted")


def test_a_failing_event_url_falls_back_and_the_conference_goes_on(
    api, call_body, receiver, sandbox
):
    receiver.reply("/conf", "down", status=500)
    receiver.reply(
        "/conf-fallback", "<Response><SpeakSentence>From the fallback</SpeakSentence></Response>"
    )
    attrs = (
        'conferenceEventFallbackUrl="/conf-fallback" fallbackUsername="fb" fallbackPassword="pw"'
    )
    receiver.reply("/answer", conference_answer(attrs=f'conferenceEventUrl="/conf" {attrs}'))
    call_id = api.create_ok(**call_body())
    fallback = receiver.wait_for("conferenceMemberJoin", call_id, count=2)
    assert [r.path for r in fallback] == ["/conf", "/conf-fallback"]
    assert basic_credentials(fallback[1]) == ("fb", "pw")
    wait_until(lambda: any("'From the fallback'" in t for t in log_of(sandbox, call_id)))
    # conferenceCompleted takes no reply: no fallback; its failure is noted, nothing more.
    sandbox.hang_up(call_id)
    completed = receiver.wait_for("conferenceCompleted")
    assert [r.path for r in completed] == ["/conf"]
    sandbox.wait_for(call_id, "disconnected")
    log = log_of(sandbox, call_id)
    assert any("conferenceCompleted was not delivered" in text for text in log)
