"""The disconnects list as an operator reads it: text search, the duration, direction and
flow columns, times in UTC or the browser's zone, and a chart whose buckets follow the
selected range."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from dashboard import chart
from tests.callbacks.helpers import ABSENT, call_id
from tests.dashboard.conftest import failed_call, stored_event
from tests.dashboard.test_disconnects import api, row_ids

MAY_1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()


def searched(client, query: str, **params) -> list[str]:
    return [r["callId"] for r in api(client, q=query, **params)["disconnects"]]


def test_search_finds_error_messages_and_payload_fields(operator, bw):
    slow = failed_call(bw, cause="error", errorMessage="Answer URL timed out after 15 s")
    vip = failed_call(bw, cause="busy", to="+12025550177", errorMessage="Callee is busy")
    assert searched(operator, "timed OUT after") == [slow]
    assert searched(operator, "5550177") == [vip]
    assert searched(operator, vip[-14:]) == [vip]  # the end of a call id
    assert searched(operator, "no such words") == []
    html = operator.get("/dashboard", query_string={"q": "timed out"}).get_data(as_text=True)
    assert slow in html and vip not in html
    assert 'value="timed out"' in html  # the box keeps what was typed


def test_search_finds_a_crashed_handler_of_the_call(app_config, tmp_path):
    """A handler that raises: its exception is found from the call's disconnect."""
    import sys

    from app import create_app
    from tests.callbacks.helpers import Bandwidth, answer_event, disconnect_event
    from tests.dashboard.conftest import login

    module = tmp_path / "crashing_flow.py"
    module.write_text(
        "from callbacks import Flow\n"
        "crash = Flow('crashing', default=True)\n"
        "@crash.on('answer')\n"
        "def answer(event):\n"
        "    raise LookupError('no customer record for this caller')\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        client = create_app({**app_config, "VOICE_FLOWS": "crashing_flow"}).test_client()
        cid = call_id()
        bw = Bandwidth(client)
        assert bw.post("answer", answer_event(callId=cid)).status_code == 200
        ended = disconnect_event(callId=cid, cause="hangup", errorMessage=ABSENT, errorId=ABSENT)
        assert bw.post("disconnect", ended).status_code == 204
        assert login(client).status_code == 303
        rows = api(client, q="no customer record", all="1")["disconnects"]
        assert [r["callId"] for r in rows] == [cid]
        assert rows[0]["flow"] == "crashing"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("crashing_flow", None)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("ab", "at least 3 characters"),
        ("x" * 201, "longer than 200 characters"),
    ],
)
def test_bad_search_is_a_clear_400(operator, query, problem):
    page = operator.get("/dashboard", query_string={"q": query})
    assert page.status_code == 400
    assert problem in page.get_data(as_text=True)
    reply = operator.get("/api/disconnects", query_string={"q": query})
    assert reply.status_code == 400
    assert problem in reply.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced',
        "a* OR b*",
        "NEAR(x y)",
        "col:busy",
        "' OR 1=1 --",
        "%_%",
        "\\\\\\",
        "😀😀😀",
    ],
)
def test_hostile_search_never_fails(operator, bw, query):
    failed_call(bw, cause="busy")
    reply = operator.get("/dashboard", query_string={"q": query})
    assert reply.status_code in (200, 400)  # 400 only for fewer than 3 characters
    assert (reply.status_code == 400) == (len(query) < 3)
    if reply.status_code == 200:  # the query is text, never syntax: nothing contains it
        assert row_ids(reply.get_data(as_text=True)) == []


def test_search_pages_and_exports_keep_the_query(operator, bw):
    calls = [failed_call(bw, errorMessage=f"carrier glitch {n}") for n in range(3)]
    failed_call(bw, errorMessage="something else")
    first = api(operator, q="carrier glitch", limit=2)
    assert [r["callId"] for r in first["disconnects"]] == calls[::-1][:2]
    assert "q=carrier" in first["next"]
    second = operator.get(first["next"]).get_json()
    assert [r["callId"] for r in second["disconnects"]] == [calls[0]]
    html = operator.get("/dashboard", query_string={"q": "carrier glitch"}).get_data(as_text=True)
    csv_link = re.search(r'href="([^"]+)" id="export-csv"', html).group(1)
    exported = operator.get(csv_link.replace("&amp;", "&")).get_data(as_text=True)
    assert all(c in exported for c in calls) and "something else" not in exported
    header, first = exported.splitlines()[:2]
    assert header.endswith(",flow,durationSeconds,talkSeconds")
    assert first.endswith(",demo-ivr,91.889,88.691")


def test_columns_duration_direction_and_flow(operator, bw):
    cid = failed_call(
        bw, cause="busy"
    )  # started 15:54:22.234, answered :25.432, ended 15:55:54.123
    row = api(operator)["disconnects"][0]
    assert row["callId"] == cid
    assert row["durationSeconds"] == pytest.approx(91.889)
    assert row["talkSeconds"] == pytest.approx(88.691)
    assert row["direction"] == "outbound"
    assert row["flow"] == "demo-ivr"  # the default flow handled it
    html = operator.get("/dashboard").get_data(as_text=True)
    headers = re.findall(r"<th>([^<]+)</th>", html[html.index('id="disconnects"') :])
    assert headers[:5] == ["Received", "Cause", "Duration", "Direction", "Flow"]
    assert '<td class="num duration" data-label="Duration" title="talked 1:28">1:31</td>' in html
    assert '<td class="direction" data-label="Direction">outbound</td>' in html
    assert '<td class="flow" data-label="Flow">demo-ivr</td>' in html


def test_unanswered_call_has_a_duration_but_no_talk_time(operator, bw):
    failed_call(bw, cause="timeout", answerTime=ABSENT)
    row = api(operator)["disconnects"][0]
    assert row["durationSeconds"] == pytest.approx(91.889)
    assert row["talkSeconds"] is None


def test_times_are_utc_without_script_and_carry_their_epoch(operator, app):
    stored_event(app, cause="busy", received_at=MAY_1 + 0.25)
    html = operator.get("/dashboard?since=2024-05-01").get_data(as_text=True)
    assert (
        f'<time datetime="2024-05-01T12:00:00.250Z" data-epoch="{MAY_1 + 0.25}">'
        "2024-05-01 12:00:00.250 UTC</time>" in html
    )
    # The toggle is hidden until the script shows it; the script is a file (CSP).
    assert re.search(r'<label class="check" id="tz-toggle" hidden>', html)
    assert '<option value="utc">UTC</option>' in html
    assert 'src="/static/dashboard/times.js"' in html
    assert "<script>" not in html and " on" + "change=" not in html
    script = operator.get("/static/dashboard/times.js")
    assert script.status_code == 200 and b"localStorage" in script.data
    script.close()


@pytest.mark.parametrize(
    ("since", "until", "bucket", "bars", "caption"),
    [
        ("2024-05-01T12:00", "2024-05-01T12:15", 60, 15, "per 1 min"),
        ("2024-05-01T12:00", "2024-05-01T13:00", 120, 30, "per 2 min"),
        ("2024-05-01T12:00", "2024-05-01T18:00", 600, 36, "per 10 min"),
        ("2024-05-01", "2024-05-02", 3600, 24, "per 1 h"),
        ("2024-05-01", "2024-05-08", 6 * 3600, 28, "per 6 h"),
        ("2024-05-01", "2024-05-31", 86400, 30, "per 1 day"),
        ("2024-01-01", "2025-01-01", 14 * 86400, 28, "per 14 days"),
    ],
)
def test_chart_buckets_follow_the_range(since, until, bucket, bars, caption):
    start = datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp()
    end = datetime.fromisoformat(until).replace(tzinfo=UTC).timestamp()
    assert chart.bucket_for(start, end) == bucket
    counts = [(int(start // bucket * bucket) + i * bucket, "busy", 1) for i in range(bars + 2)]
    graph = chart.build(counts, start, end)
    assert len(graph.bars) >= bars - 1 and len(graph.bars) <= chart.MAX_BARS
    assert graph.bucket_label == caption.removeprefix("per ")
    assert graph.x_labels[0][1] == start // bucket * bucket


def test_chart_labels_name_the_day_when_it_changes():
    start = datetime(2024, 5, 1, 20, 0, tzinfo=UTC).timestamp()
    graph = chart.build([], start, start + 12 * 3600)
    labels = [label for _, _, label in graph.x_labels]
    assert labels[0] == "May 01 20:00"
    assert "May 02 00:00" in labels
    assert all(re.fullmatch(r"(May 0[12] )?\d\d:\d\d", label) for label in labels)
    days = chart.build([], MAY_1, MAY_1 + 30 * 86400)
    assert [label for _, _, label in days.x_labels][:2] == ["May 01", "May 07"]


def test_the_last_hour_is_drawn_in_minutes_from_the_disconnects(operator, app):
    for offset, cause in ((60, "busy"), (70, "busy"), (1900, "timeout"), (1950, "hangup")):
        stored_event(app, cause=cause, received_at=MAY_1 + offset)
    html = operator.get("/dashboard?since=2024-05-01T12:00&until=2024-05-01T13:00&all=1").get_data(
        as_text=True
    )
    figure = html[html.index('id="chart"') : html.index("</figure>")]
    assert "per 2 min" in figure
    titles = re.findall(r"<title[^>]*>([^<]+)</title>", figure)
    assert "2024-05-01 12:00 UTC: busy 2" in titles
    assert "2024-05-01 12:30 UTC: timeout 1" in titles
    assert not any("hangup" in t for t in titles)
    assert 'data-epoch="1714564800"' in figure  # labels carry their time for the zone toggle


def test_the_default_24_hours_are_hourly_bars(operator, bw):
    failed_call(bw, cause="busy")
    html = operator.get("/dashboard").get_data(as_text=True)
    figure = html[html.index('id="chart"') : html.index("</figure>")]
    assert "per 1 h" in figure
    assert len(re.findall(r"<rect x=", figure)) == 1
    assert len(re.findall(r'data-axis="1"', figure)) >= 4


def test_quick_ranges_keep_the_filters_and_set_the_chart(operator, bw):
    failed_call(bw, cause="busy")
    html = operator.get("/dashboard", query_string={"q": "busy"}).get_data(as_text=True)
    ranges = html[html.index('id="ranges"') : html.index("</p>", html.index('id="ranges"'))]
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', ranges)
    assert [label for _, label in links] == ["1 h", "6 h", "24 h", "7 days", "30 days"]
    last_hour = links[0][0].replace("&amp;", "&")
    assert "q=busy" in last_hour and "since=" in last_hour
    page = operator.get(last_hour).get_data(as_text=True)
    assert "per 2 min" in page
    assert len(row_ids(page)) == 1


def test_every_filter_box_has_a_label_and_an_example_the_filter_accepts(operator):
    """The text boxes read alike (a label saying what the box matches, a placeholder
    "e.g. A or B"), and each example, typed as shown, is accepted."""
    page = operator.get("/dashboard").get_data(as_text=True)
    start = page.index('id="filters"')
    form = page[start : page.index("</form>", start)]
    boxes = re.findall(
        r'<label[^>]*>([^<]*)<input type="(?:text|search)" name="(\w+)"[^>]*placeholder="([^"]*)"',
        form,
    )
    names = [name for _, name, _ in boxes]
    assert sorted(names) == sorted(["q", "since", "until", "number", "tag", "errorId"])
    # Every text box of the form has one (none left without a placeholder).
    assert len(re.findall(r'<input type="(?:text|search)"', form)) == len(boxes)
    for label, name, placeholder in boxes:
        assert label.strip(), name
        assert placeholder.startswith("e.g. "), (name, placeholder)
        for example in placeholder.removeprefix("e.g. ").split(" or "):
            reply = operator.get("/api/disconnects", query_string={name: example})
            assert reply.status_code == 200, (name, example, reply.get_json())
