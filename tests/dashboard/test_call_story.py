"""A call's page tells the whole story: summary, every leg both ways, the sequence diagram,
coloured BXML, decoded tag state and the replay's line diff."""

from __future__ import annotations

import re
import time

import pytest
from lxml import etree

from bxml import Hangup, Response, SpeakSentence
from callbacks import Flow
from callbacks.tags import encode_state
from dashboard.summary import summarize
from tests.callbacks.helpers import answer_event, call_event, call_id, disconnect_event
from tests.dashboard.conftest import page_token, stored_event

SVG_NS = "{http://www.w3.org/2000/svg}"


def page(client, cid: str) -> str:
    reply = client.get(f"/dashboard/calls/{cid}")
    assert reply.status_code == 200
    return reply.get_data(as_text=True)


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">(.*?)</dd>', html, re.DOTALL)
    assert match, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(1))).strip()


def svg_of(html: str) -> etree._Element:
    start, end = html.index("<svg", html.index('id="sequence"')), html.index("</svg>") + 6
    return etree.fromstring(html[start:end].encode())


def test_summary_header(operator, bw):
    cid = call_id()
    times = {"startTime": "2026-03-01T10:00:00.000Z", "answerTime": "2026-03-01T10:00:04.500Z"}
    bw.post("answer", answer_event(callId=cid, direction="inbound", **times))
    bw.post(
        "disconnect",
        disconnect_event(
            callId=cid,
            direction="inbound",
            cause="timeout",
            errorMessage="Call timed out",
            endTime="2026-03-01T10:01:10.000Z",
            **times,
        ),
    )
    html = page(operator, cid)
    assert text_of(html, "summary-from") == "+12025550100"
    assert text_of(html, "summary-to") == "+12025550123"
    assert text_of(html, "summary-direction") == "inbound"
    assert text_of(html, "summary-flow") == "demo-ivr"  # from the verified tag of our reply
    assert text_of(html, "summary-start") == "2026-03-01 10:00:00.000 UTC"
    assert text_of(html, "summary-answer") == "2026-03-01 10:00:04.500 UTC"
    assert text_of(html, "summary-end") == "2026-03-01 10:01:10.000 UTC"
    assert text_of(html, "summary-duration") == "1 min 10.0 s (1 min 05.5 s answered)"
    assert text_of(html, "summary-outcome") == "timeout Call timed out"


def test_summary_of_a_call_still_going(operator, bw):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    html = page(operator, cid)
    assert text_of(html, "summary-end") == "not ended yet"
    assert text_of(html, "summary-duration") == "—"
    assert "in progress" in text_of(html, "summary-outcome")


def test_summary_header_says_the_sentence_and_keeps_the_detail_one_click_away(operator, bw):
    cid = call_id()
    detail = (
        "HTTPConnectionPool(host='127.0.0.1', port=18699): Max retries exceeded with url: "
        "/callbacks/answer"
    )
    message = (
        "Your answer URL refused the connection (is the app running, on that port?). "
        f"Detail: {detail}"
    )
    bw.post(
        "disconnect", disconnect_event(callId=cid, cause="callback-error", errorMessage=message)
    )
    html = page(operator, cid)
    outcome = html[
        html.index('id="summary-outcome"') : html.index("</dd>", html.index('id="summary-outcome"'))
    ]
    shown = re.sub(r"<details>.*?</details>", "", outcome, flags=re.DOTALL)
    assert "refused the connection (is the app running, on that port?)." in shown
    assert "Detail:" not in shown and "HTTPConnectionPool" not in shown
    hidden = re.search(r"<details><summary>technical detail</summary><code>(.*?)</code>", outcome)
    assert hidden and "HTTPConnectionPool(host=&#39;127.0.0.1&#39;, port=18699)" in hidden.group(1)


def test_summary_shows_a_category_when_the_row_has_one():
    ending = {"event_type": "disconnect", "cause": "hangup", "category": "handler-error"}
    rows = [{"received_at": 10.0, "payload": {}, **ending}]
    found = summarize(rows, [{}], None)
    assert (found.outcome, found.cause) == ("handler-error", "hangup")
    assert summarize([{**rows[0], "category": None}], [{}], None).outcome == "hangup"


def test_a_bridge_links_both_ways(operator, app):
    caller, target = call_id(), call_id()
    now = time.time()
    stored_event(app, "answer", call_id=target, received_at=now - 5, reply_body="<Response/>")
    stored_event(
        app,
        "answer",
        call_id=caller,
        received_at=now - 2,
        reply_body=f"<Response><Bridge>{target}</Bridge></Response>",
    )
    stored_event(app, "bridgeTargetComplete", call_id=target, received_at=now)
    html = page(operator, caller)
    bridged = html[html.index('id="leg-bridged-to"') :]
    assert f'href="/dashboard/calls/{target}"' in bridged.split("</li>")[0]
    html = page(operator, target)
    bridged = html[html.index('id="leg-bridged-from"') :]
    assert f'href="/dashboard/calls/{caller}"' in bridged.split("</li>")[0]


def test_a_bridge_into_a_call_still_up_is_found(operator, app):
    caller, target = call_id(), call_id()
    now = time.time()
    stored_event(app, "answer", call_id=target, received_at=now - 600)
    reply = f"<Response><Bridge>{target}</Bridge></Response>"
    stored_event(app, "answer", call_id=caller, received_at=now - 60, reply_body=reply)
    html = page(operator, target)
    assert f'href="/dashboard/calls/{caller}"' in html[html.index('id="leg-bridged-from"') :]
    stored_event(app, "disconnect", call_id=target, received_at=now - 300, cause="hangup")
    assert 'id="leg-bridged-from"' not in page(operator, target)  # it had ended before


def test_a_bridge_outside_the_targets_lifetime_is_not_a_leg(operator, app):
    caller, target = call_id(), call_id()
    now = time.time()
    stored_event(app, "answer", call_id=target, received_at=now)
    reply = f"<Response><Bridge>{target}</Bridge></Response>"
    stored_event(app, "answer", call_id=caller, received_at=now - 3600, reply_body=reply)
    assert 'id="leg-bridged-from"' not in page(operator, target)


def test_conference_members_link_to_each_other(operator, app):
    first, second, alone = call_id(), call_id(), call_id()
    for member in (first, second):
        payload = {
            "eventType": "conferenceMemberJoin",
            "conferenceId": "conf-7",
            "name": "support-room",
            "callId": member,
        }
        stored_event(
            app, "conferenceMemberJoin", call_id=member, conference_id="conf-7", payload=payload
        )
    stored_event(app, "answer", call_id=alone)
    html = page(operator, first)
    conference = html[html.index('class="leg-conference"') :].split("</li>")[0]
    assert "support-room" in conference and "conf-7" in conference
    assert f'href="/dashboard/calls/{second}"' in conference
    assert f'href="/dashboard/calls/{first}"' not in conference  # not itself
    assert f'href="/dashboard/calls/{first}"' in page(operator, second)
    assert 'id="call-legs"' not in page(operator, alone)


def test_transfer_legs_in_the_legs_box(operator, bw):
    caller, agent = call_id(), call_id()
    bw.post("answer", answer_event(callId=caller))
    leg = {"callId": agent, "parentCallId": caller, "to": "+12025550142"}
    bw.post("transferAnswer", call_event("transferAnswer", **leg))
    bw.post("disconnect", disconnect_event(callId=caller, cause="hangup"))
    html = page(operator, caller)
    assert f'href="/dashboard/calls/{agent}"' in html[html.index('id="leg-transferred-to"') :]
    # The agent's callbacks are in the caller's diagram, in order, linking to their page.
    arrows = [a for a in svg_of(html).iter(f"{SVG_NS}a") if "seq-request" in a.get("class")]
    labels = [(a.find(f"{SVG_NS}text").text, "seq-leg" in a.get("class")) for a in arrows]
    assert labels == [
        ("answer", False),
        ("agent: transferAnswer", True),
        ("disconnect (hangup)", False),
    ]
    assert arrows[1].get("href").startswith(f"/dashboard/calls/{agent}#event-")
    html = page(operator, agent)
    assert f'href="/dashboard/calls/{caller}"' in html[html.index('id="leg-transferred-from"') :]


def test_sequence_diagram_is_well_formed_svg_with_every_callback(operator, bw):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    bw.post("gather", {**answer_event(callId=cid), "eventType": "gather", "digits": "9"})
    bw.post("disconnect", disconnect_event(callId=cid, cause="busy"))
    events = operator.get(f"/api/calls/{cid}/events").get_json()["events"]
    svg = svg_of(page(operator, cid))
    assert svg.find(f"{SVG_NS}title").text.startswith("Sequence diagram: Bandwidth and")
    requests = svg.findall(f".//{SVG_NS}a[@class='seq-arrow seq-request']")
    requests += svg.findall(f".//{SVG_NS}a[@class='seq-arrow seq-request seq-bad']")
    replies = [a for a in svg.iter(f"{SVG_NS}a") if "seq-reply" in a.get("class")]
    assert len(requests) == len(replies) == 3
    labels = [a.find(f"{SVG_NS}text").text for a in requests]
    assert sorted(labels) == ["answer", "disconnect (busy)", "gather"]
    for arrow in requests + replies:  # each links to its entry and says what it is
        assert arrow.get("href") in {f"#event-{e['id']}" for e in events}
        assert arrow.find(f"{SVG_NS}title").text
    reply_labels = [a.find(f"{SVG_NS}text").text for a in replies]
    assert re.fullmatch(r"HTTP 200 · \d+\.\d ms · Gather", reply_labels[0])
    assert reply_labels[2].startswith("HTTP 204 · ")
    bad = [a for a in svg.iter(f"{SVG_NS}a") if "seq-bad" in a.get("class")]
    assert [a.find(f"{SVG_NS}text").text for a in bad] == ["disconnect (busy)"]
    assert "answer: HTTP 200" in svg.find(f"{SVG_NS}desc").text


def test_sequence_diagram_escapes_what_bandwidth_sent(operator, app):
    cid = call_id()
    stored_event(app, "disconnect", call_id=cid, cause="<b>odd</b>&")
    html = page(operator, cid)
    svg = svg_of(html)  # still well-formed
    texts = [t.text for t in svg.iter(f"{SVG_NS}text")]
    assert "disconnect (<b>odd</b>&)" in texts


def test_bxml_is_indented_coloured_and_escaped(operator, app):
    cid = call_id()
    reply = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><SpeakSentence>'
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</SpeakSentence><Hangup/></Response>"
    )
    stored_event(app, "answer", call_id=cid, reply_body=reply)
    html = page(operator, cid)
    shown = html[html.index('<pre class="bxml hl">') : html.index("</pre>", html.index("bxml hl"))]
    assert '<span class="nt">&lt;Response&gt;</span>\n<span class="w">  </span>' in shown
    assert "<script" not in shown
    text = re.sub(r"<[^>]+>", "", shown)
    assert "&amp;lt;script&amp;gt;alert(1)" in text  # the XML's own escape, escaped for HTML
    assert text.splitlines()[1:4] == [
        "&lt;Response&gt;",
        "  &lt;SpeakSentence&gt;&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; "
        "&amp;amp; co&lt;/SpeakSentence&gt;",
        "  &lt;Hangup/&gt;",
    ]


def test_a_reply_that_is_not_xml_is_shown_as_it_was(operator, app):
    cid = call_id()
    stored_event(app, "answer", call_id=cid, reply_body="<Response><script>alert(1)</script>")
    html = page(operator, cid)
    assert "<script>alert(1)" not in html
    shown = html[html.index('<pre class="bxml hl">') :].split("</pre>")[0]
    assert re.sub(r"<[^>]+>", "", shown) == "&lt;Response&gt;&lt;script&gt;alert(1)&lt;/script&gt;"


def test_tag_state_is_decoded_not_shown_as_a_token(operator, bw, app):
    cid = call_id()
    token = encode_state({"step": "order", "_flow": "demo-ivr"}, "test-secret-key", call_id=cid)
    forged = encode_state({"step": "admin"}, "another-secret")
    bw.post("disconnect", disconnect_event(callId=cid, tag=token))
    html = page(operator, cid)
    assert token not in html  # neither in the field nor in the payload
    tag = html[html.index('<dd class="tag">') :].split("</dd>")[0]
    assert '<code class="tag-state">{"step": "order"}</code>' in tag
    assert '<code class="tag-flow">demo-ivr</code>' in tag
    payload = html[html.index('<pre class="payload">') :].split("</pre>")[0]
    assert '"signed state, verified": {\n' in payload.replace("&#34;", '"')
    other = call_id()
    bw.post("disconnect", disconnect_event(callId=other, tag=forged))
    tag = page(operator, other).split('<dd class="tag">')[1].split("</dd>")[0]
    assert "does not verify" in tag and "admin" not in tag


def test_tag_state_in_the_bxml_reply_is_decoded(operator, bw):
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))  # the demo answers with a signed <Tag>
    html = page(operator, cid)
    shown = html[html.index('<pre class="bxml hl">') :].split("</pre>")[0]
    text = re.sub(r"<[^>]+>", "", shown)
    assert "st2" not in text
    assert "&lt;Tag&gt;{signed state: {&quot;_flow&quot;: &quot;demo-ivr&quot;, &quot;step" in text


def replay(client, cid: str, event_id: int):
    token = page_token(client, f"/dashboard/calls/{cid}")
    return client.post(f"/dashboard/calls/{cid}/replay/{event_id}", data={"csrf_token": token})


def test_replay_shows_only_the_lines_that_changed(operator, bw, app):
    cid = call_id()
    registry = Flow("before")

    @registry.on("answer")
    def first(event):
        return Response(
            SpeakSentence("one"), SpeakSentence("two"), SpeakSentence("three"), Hangup()
        )

    app.extensions["flows"].register(registry, default=True)
    bw.post("answer", answer_event(callId=cid))
    event_id = operator.get(f"/api/calls/{cid}/events").get_json()["events"][0]["id"]

    changed = Flow("after")

    @changed.on("answer")
    def second(event):
        return Response(
            SpeakSentence("one"), SpeakSentence("TWO"), SpeakSentence("three"), Hangup()
        )

    app.extensions["flows"].register(changed, default=True)
    html = replay(operator, cid, event_id).get_data(as_text=True)
    diff = html[html.index('id="reply-diff"') :].split("</pre>")[0]
    marked = re.findall(r'<span class="diff-(add|remove)">(.*?)</span>', diff)
    flow = "  &lt;Tag&gt;{signed state: {&#34;_flow&#34;: &#34;{}&#34;}}&lt;/Tag&gt;"
    assert marked == [
        ("remove", "-" + flow.replace("{}", "before", 1)),
        ("add", "+" + flow.replace("{}", "after", 1)),
        ("remove", "-  &lt;SpeakSentence&gt;two&lt;/SpeakSentence&gt;"),
        ("add", "+  &lt;SpeakSentence&gt;TWO&lt;/SpeakSentence&gt;"),
    ]
    assert '<span class="diff-context">   &lt;SpeakSentence&gt;one' in diff


@pytest.mark.parametrize(
    "path", ["/dashboard/calls/c-1", "/dashboard/calls/c-1/recordings/r/media"]
)
def test_call_pages_need_a_login(client, path):
    reply = client.get(path)
    assert reply.status_code == 302 and "/dashboard/login" in reply.headers["Location"]


def test_a_long_label_is_cut_and_its_title_keeps_it_whole():
    from dashboard import sequence

    reply = "<Response>" + "<Pause duration='1'/>" * 3 + "<SpeakSentence>x</SpeakSentence>"
    row = {
        "id": 1,
        "received_at": 5.0,
        "event_type": "conferenceRecordingAvailable",
        "reply_status": 200,
        "latency_ms": 12345.678,
        "reply_body": reply + "<Hangup/></Response>",
    }
    (drawn,) = sequence.build([row], None).rows
    reply_arrow = drawn.arrows[1]
    assert len(reply_arrow.label) == sequence.LABEL_CHARS and reply_arrow.label.endswith("…")
    assert reply_arrow.title.endswith("HTTP 200 · 12345.7 ms · Pause, Pause, Pause +2")


def test_signed_tags_in_attributes_read_without_entities():
    from dashboard.bxml_view import pretty

    shown = pretty(
        '<Response><PhoneNumber tag="st2.x">+1</PhoneNumber></Response>',
        lambda value: value.replace("st2.x", '{signed state: {"step": "a"}}'),
    )
    assert "<PhoneNumber tag=\"{signed state: {'step': 'a'}}\">+1</PhoneNumber>" in shown


def test_caller_heard_slot_renders_entries_escaped(app):
    from flask import render_template

    heard = [
        {"at": 1767225600.0, "leg": "A", "kind": "speech", "text": "Press <1> & go"},
        {"at": "+2.0 s", "leg": None, "kind": "tone", "text": "beep"},
    ]
    with app.test_request_context():
        html = render_template("dashboard/_caller_heard.html", caller_heard=heard)
    items = re.findall(r"<li class=\"heard-(\w+)\">(.*?)</li>", html, re.DOTALL)
    assert [kind for kind, _ in items] == ["speech", "tone"]
    first = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", items[0][1])).strip()
    assert first == "2026-01-01 00:00:00.000 UTC · A speech Press &lt;1&gt; &amp; go"
    assert "+2.0 s" in items[1][1]


def test_a_crashed_handlers_call_reads_handler_error_though_bandwidth_said_hangup(
    operator, bw, app
):
    flow = app.extensions["flows"].register(Flow("crashing"), default=True)
    flow.on("answer")(lambda event: 1 / 0)
    cid = call_id()
    bw.post("answer", answer_event(callId=cid))
    bw.post("disconnect", disconnect_event(callId=cid, cause="hangup"))
    html = page(operator, cid)
    outcome = html[html.index('id="summary-outcome"') :]
    outcome = outcome[: outcome.index("</dd>")]
    assert "handler-error" in outcome and "cause hangup" in outcome
    # The flow is the stored one when no tag names it (the safe document sets none), as in
    # the list's flow column.
    assert text_of(html, "summary-flow") == "crashing"


def test_an_agent_legs_crash_marks_the_callers_call_in_the_list_and_its_page(operator, bw, app):
    """The agent's leg ends with transferDisconnect (no disconnect row of its own), so its
    handler's failure must show on the caller's call, the one the list has."""
    flow = app.extensions["flows"].register(Flow("agent-crash"), default=True)
    flow.on("answer")(lambda event: Response(SpeakSentence("Connecting you.")))
    flow.on("transferAnswer")(lambda event: 1 / 0)
    caller, agent = call_id(), call_id()
    bw.post("answer", answer_event(callId=caller))
    leg = {"callId": agent, "parentCallId": caller, "to": "+12025550142"}
    bw.post("transferAnswer", call_event("transferAnswer", **leg))
    bw.post("disconnect", disconnect_event(callId=caller, cause="hangup"))
    default_view = operator.get("/api/disconnects").get_json()["disconnects"]
    assert [(row["callId"], row["category"]) for row in default_view] == [(caller, "handler-error")]
    html = page(operator, caller)
    outcome = html[html.index('id="summary-outcome"') :]
    outcome = outcome[: outcome.index("</dd>")]
    assert "handler-error" in outcome and "cause hangup" in outcome


class _Transcript:
    """Stands in for the in-app sandbox: only its transcript is read by a call's page."""

    def __init__(self, entries):
        self.entries = entries

    def transcript(self, call_id):
        return self.entries


def _offsets(html: str) -> list[float]:
    diagram = re.findall(r'<text class="seq-offset"[^>]*>([^<]+)</text>', html)
    heard = re.findall(r'<li class="heard-\w+">\s*<span class="muted">([-+][\d.]+) s', html)
    return [float(t.split()[0]) for t in diagram] + [float(t) for t in heard]


def test_times_count_from_the_calls_start_not_its_first_stored_callback(operator, app):
    """The first stored callback came 2 s after Bandwidth's startTime (by Bandwidth's clock,
    which need not be ours), and the sandbox's caller heard the call answered before that:
    nothing on the page is before its base."""
    cid, now = call_id(), time.time()
    times = {"startTime": "2019-06-20T15:54:22.234Z", "eventTime": "2019-06-20T15:54:24.234Z"}
    payload = {"eventType": "answer", "callId": cid, **times}
    stored_event(app, "answer", call_id=cid, received_at=now, payload=payload)
    stored_event(app, "disconnect", call_id=cid, received_at=now + 5, cause="hangup")
    assert _offsets(page(operator, cid)) == pytest.approx([2.0, 7.0], abs=0.01)
    app.extensions["sandbox"] = _Transcript(
        [{"time": now - 3, "at": 0.0, "callId": cid, "kind": "answered", "text": ""}]
    )
    html = page(operator, cid)
    offsets = _offsets(html)
    assert len(offsets) == 3 and min(offsets) == 0.0, offsets
    assert offsets[0] == pytest.approx(3.0, abs=0.01)  # the answer, 3 s after the base
