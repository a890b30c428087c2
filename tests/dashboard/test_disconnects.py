"""The disconnects page, its filters, pagination, counts, chart and exports, and the API."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from tests.callbacks.helpers import ABSENT, call_id
from tests.dashboard.conftest import failed_call, stored_event

MAY_1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()


def row_ids(html: str) -> list[int]:
    table = html[html.index('id="disconnects"') :]
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', table)]


def api(client, **params):
    reply = client.get("/api/disconnects", query_string=params)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()


def test_default_view_is_abnormal_newest_first(operator, bw):
    busy = failed_call(bw, cause="busy")
    failed_call(bw, cause="hangup", errorMessage=ABSENT, errorId=ABSENT, sipResponseCode=ABSENT)
    timeout = failed_call(bw, cause="timeout")
    rows = api(operator)["disconnects"]
    assert [r["callId"] for r in rows] == [timeout, busy]
    html = operator.get("/dashboard").get_data(as_text=True)
    assert html.index(timeout) < html.index(busy)
    assert len(row_ids(html)) == 2


def test_filters(operator, bw, app):
    a = failed_call(bw, cause="busy", tag="campaign-7", errorId="err-1", to="+12025550111")
    b = failed_call(bw, cause="timeout", tag="campaign-8", errorId="err-2")
    hangup = failed_call(bw, cause="hangup", errorMessage=ABSENT, errorId=ABSENT)

    def ids(**params):
        return [r["callId"] for r in api(operator, **params)["disconnects"]]

    assert ids(cause="busy") == [a]
    assert ids(cause=["busy", "timeout"]) == [b, a]
    assert ids(cause="hangup") == [hangup]
    assert ids(all="1") == [hangup, b, a]
    assert ids(tag="campaign-8") == [b]
    assert ids(errorId="err-1") == [a]
    assert ids(error_id="err-2") == [b]
    assert ids(number="+12025550111") == [a]
    assert ids(number="(202) 555-0111") == [a]  # normalised like the stored E.164
    assert ids(number="+12025550100") == [b, a]  # from or to
    assert ids(tag="nothing") == []
    html = operator.get("/dashboard?cause=busy").get_data(as_text=True)
    assert a in html and b not in html


def test_time_range(operator, app):
    old = stored_event(app, cause="busy", received_at=MAY_1 - 3600)
    inside = stored_event(app, cause="busy", received_at=MAY_1 + 60)
    later = stored_event(app, cause="busy", received_at=MAY_1 + 2 * 86400)

    def ids(**params):
        return [r["id"] for r in api(operator, **params)["disconnects"]]

    assert ids(since="2024-05-01T12:00") == [later, inside]
    assert ids(since="2024-05-01T12:00Z", until="2024-05-02") == [inside]
    assert ids(until="2024-05-01T14:00:00+02:00") == [old]  # 12:00 UTC, exclusive
    assert ids(since=str(MAY_1), until=str(MAY_1 + 120)) == [inside]
    html = operator.get("/dashboard?since=2024-05-01T12:00&until=2024-05-02").get_data(as_text=True)
    assert row_ids(html) == [inside]
    assert 'value="2024-05-01T12:00"' in html


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday",
        "until=2024-13-01",
        "limit=0",
        "limit=100000",
        "before_id=x",
        "since=nan",
        "since=2024-05-02&until=2024-05-01",
        # Past what the store's 64-bit ids and the chart's calendar can hold.
        f"before_id={2**63}",
        f"before_id={2**64 + 5}",
        "since=1e18",
        "until=1e18",
        "since=-1e18",
        "since=9999-12-31T23:00",
        "until=0001-01-01",
    ],
)
def test_bad_filters_are_400(operator, query):
    reply = operator.get(f"/api/disconnects?{query}")
    assert reply.status_code == 400
    assert reply.get_json()["error"]
    page = operator.get(f"/dashboard?{query}")
    assert page.status_code == 400
    assert "Bad filter" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("limit=-1", "limit must not be negative, got '-1'"),
        ("limit=0", "limit must be between 1 and 500, got 0"),
        ("beforeId=xyz", "beforeId must be a whole number, got 'xyz'"),
        ("before_id=xyz", "before_id must be a whole number, got 'xyz'"),
        (f"beforeId={2**63}", f"beforeId must be at most {2**63 - 1}, got {2**63}"),
        ("number=abc", "number: 'abc' is not a phone number; a number filter needs digits"),
        ("number=%2B", "number: '+' is not a phone number"),
    ],
)
def test_bad_filter_messages_quote_the_value_and_the_parameter_as_sent(operator, query, says):
    reply = operator.get(f"/api/disconnects?{query}")
    assert reply.status_code == 400
    assert says in reply.get_json()["error"]
    page = operator.get(f"/dashboard?{query}")
    assert page.status_code == 400
    assert says in html.unescape(page.get_data(as_text=True))


def test_keyset_pagination(operator, app):
    ids = [stored_event(app, cause="busy", received_at=MAY_1 + i) for i in range(7)]
    newest_first = ids[::-1]
    first = api(operator, limit=3)
    assert [r["id"] for r in first["disconnects"]] == newest_first[:3]
    assert first["nextBeforeId"] == newest_first[2]
    second = operator.get(first["next"]).get_json()
    assert [r["id"] for r in second["disconnects"]] == newest_first[3:6]
    third = operator.get(second["next"]).get_json()
    assert [r["id"] for r in third["disconnects"]] == newest_first[6:]
    assert third["next"] is None and third["nextBeforeId"] is None

    html = operator.get("/dashboard?limit=3").get_data(as_text=True)
    assert row_ids(html) == newest_first[:3]
    older = re.search(r'href="([^"]+)" id="older"', html).group(1).replace("&amp;", "&")
    assert f"before_id={newest_first[2]}" in older
    html = operator.get(older).get_data(as_text=True)
    assert row_ids(html) == newest_first[3:6]
    assert 'id="newest"' in html
    # Pages keep their filters.
    html = operator.get("/dashboard?limit=2&cause=busy").get_data(as_text=True)
    older = re.search(r'href="([^"]+)" id="older"', html).group(1)
    assert "cause=busy" in older


def test_a_new_row_does_not_shift_the_next_page(operator, app):
    for i in range(4):
        stored_event(app, cause="busy", received_at=MAY_1 + i)
    first = api(operator, limit=2)
    stored_event(app, cause="busy")  # arrives while the operator reads page one
    second = operator.get(first["next"]).get_json()
    assert second["disconnects"][0]["id"] == first["nextBeforeId"] - 1


def test_counts_per_category(operator, bw):
    for cause in ("busy", "busy", "timeout", "hangup", "some-new-cause"):
        failed_call(bw, cause=cause)
    html = operator.get("/dashboard").get_data(as_text=True)
    counts = dict(re.findall(r'data-category="([^"]+)">(\d+)<', html))
    assert counts == {"busy": "2", "timeout": "1", "hangup": "1", "some-new-cause": "1"}
    assert '<option value="some-new-cause"' in html  # open vocabulary


def test_chart_is_inline_svg_of_failures(operator, bw):
    failed_call(bw, cause="busy")
    failed_call(bw, cause="timeout")
    failed_call(bw, cause="hangup")
    html = operator.get("/dashboard").get_data(as_text=True)
    chart = html[html.index('id="chart"') : html.index("</figure>")]
    assert "<svg" in chart and "<script" not in chart
    titles = re.findall(r"<title[^>]*>([^<]+)</title>", chart)
    assert any(t.endswith("busy 1") for t in titles)
    assert any(t.endswith("timeout 1") for t in titles)
    assert not any("hangup" in t for t in titles)
    assert "http://" not in chart.replace("http://www.w3.org/2000/svg", "")


def test_chart_over_a_long_range_uses_wider_bars(operator, app):
    stored_event(app, cause="busy", received_at=MAY_1)
    html = operator.get("/dashboard?since=2024-04-01&until=2024-06-01").get_data(as_text=True)
    assert "per 2 days" in html
    assert "busy 1" in html


def test_csv_export_neutralises_formulas(operator, bw):
    cid = failed_call(
        bw, cause="busy", errorMessage='=HYPERLINK("http://x")', tag="@SUM(A1)", errorId="-1+2"
    )
    failed_call(bw, cause="timeout", errorMessage="\tTAB", tag="\rCR")
    reply = operator.get("/dashboard/disconnects.csv")
    assert reply.status_code == 200
    assert reply.mimetype == "text/csv"
    assert "attachment" in reply.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.get_data(as_text=True))))
    assert len(rows) == 2
    busy = next(r for r in rows if r["callId"] == cid)
    assert busy["errorMessage"] == '\'=HYPERLINK("http://x")'
    assert busy["tag"] == "'@SUM(A1)"
    assert busy["errorId"] == "'-1+2"
    assert busy["from"] == "'+12025550100"
    timeout = next(r for r in rows if r["callId"] != cid)
    assert timeout["errorMessage"] == "'\tTAB"
    assert timeout["tag"] == "'\rCR"
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r"


def test_exports_follow_the_filters_from_the_newest_row(operator, bw, app):
    busy = [failed_call(bw, cause="busy") for _ in range(3)]
    failed_call(bw, cause="timeout")
    data = operator.get("/dashboard/disconnects.json?cause=busy&before_id=1&limit=1").get_json()
    assert [r["callId"] for r in data["disconnects"]] == busy[::-1]
    assert data["truncated"] is False
    app.config["DASHBOARD_EXPORT_MAX_ROWS"] = 2
    reply = operator.get("/dashboard/disconnects.json?cause=busy")
    assert reply.get_json()["truncated"] is True
    assert len(reply.get_json()["disconnects"]) == 2
    assert reply.headers["X-Export-Truncated"] == "true"
    csv_rows = operator.get("/dashboard/disconnects.csv?cause=timeout").get_data(as_text=True)
    assert len(csv_rows.strip().splitlines()) == 2


def test_export_and_api_rows_have_the_same_shape(operator, bw):
    cid = failed_call(bw, cause="busy", tag="t1")
    exported = operator.get("/dashboard/disconnects.json").get_json()["disconnects"][0]
    listed = operator.get("/api/disconnects").get_json()["disconnects"][0]
    assert exported == listed
    assert listed["callId"] == cid
    assert listed["cause"] == "busy"
    assert listed["errorMessage"] == "Callee is busy"
    assert listed["sipResponseCode"] == 486
    assert listed["tag"] == "t1"
    assert listed["from"] == "+12025550100" and listed["to"] == "+12025550123"
    assert listed["receivedAtIso"].endswith("Z")


def test_call_events_api_keeps_its_shape(operator, bw):
    cid = failed_call(bw, cause="busy")
    data = operator.get(f"/api/calls/{cid}/events").get_json()
    assert data["callId"] == cid
    assert [e["eventType"] for e in data["events"]] == ["answer", "disconnect"]
    assert data["events"][1]["payload"]["cause"] == "busy"
    assert data["events"][0]["replyBody"].startswith("<?xml")


def test_rejected_page(operator, bw):
    assert bw.post("answer", {"eventType": "answer"}).status_code == 422
    assert bw.post("disconnect", [1, 2]).status_code == 400
    html = operator.get("/dashboard/rejected").get_data(as_text=True)
    assert html.count("<tr data-id=") == 2
    assert "callId" in html  # the reason names the missing field


def test_rejected_page_paginates(operator, bw):
    for i in range(53):
        bw.post("answer", {"eventType": "answer", "n": i})
    html = operator.get("/dashboard/rejected").get_data(as_text=True)
    assert html.count("<tr data-id=") == 50
    older = re.search(r'href="([^"]+)" id="older"', html).group(1)
    assert operator.get(older).get_data(as_text=True).count("<tr data-id=") == 3
    assert operator.get("/dashboard/rejected?before_id=x").status_code == 400
    assert operator.get("/dashboard/rejected?route=answer").status_code == 400


@pytest.mark.parametrize(
    ("query", "named", "listed"),
    [
        ("category=handler-eror", "'handler-eror'", "handler-error"),
        ("category=hangup&category=nope", "'nope'", "credential-failure"),
        ("cause=bussy", "'bussy'", "busy"),
        ("cause=handler-error", "'handler-error'", "callback-error"),  # a category, not a cause
        ("all=maybe", "'maybe'", "1, 0"),
        ("direction=inbound", "'direction'", "category"),
        ("flow=demo-ivr", "'flow'", "errorId"),
        ("range=24h", "'range'", "since"),
        ("since=2024-05-01&Cause=busy", "'Cause'", "cause"),
    ],
)
def test_unknown_filter_names_and_values_are_a_400_naming_them(operator, query, named, listed):
    """Never an empty (or unfiltered) 200 that looks like an answer."""
    reply = operator.get(f"/api/disconnects?{query}")
    assert reply.status_code == 400
    error = reply.get_json()["error"]
    assert named in error and "accepted:" in error and listed in error.split("accepted:")[1]
    assert operator.get(f"/api/categories?{query}").status_code == 400
    page = operator.get(f"/dashboard?{query}")
    assert page.status_code == 400
    text = html.unescape(page.get_data(as_text=True))
    assert "Bad filter" in text and named in text and listed in text
    assert operator.get(f"/dashboard/disconnects.csv?{query}").status_code == 400


def test_a_cause_the_store_has_counted_is_accepted_though_not_documented(operator, app):
    odd = stored_event(app, cause="sip-overload")
    assert [r["id"] for r in api(operator, cause="sip-overload")["disconnects"]] == [odd]
    assert [r["id"] for r in api(operator, category="sip-overload")["disconnects"]] == [odd]
    for yes_or_no in ("1", "0", "true", "off", ""):
        assert operator.get(f"/api/disconnects?all={yes_or_no}").status_code == 200


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_ids_past_64_bits_are_400_on_both_databases(app_config, backend):
    from app import create_app
    from tests.dashboard.conftest import login

    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            from tests.pg import fresh_postgres_url

            app_config["DATABASE_URL"] = stack.enter_context(fresh_postgres_url())
        app = create_app(app_config)
        stack.callback(app.extensions["store"].dispose)
        client = app.test_client()
        assert login(client).status_code == 303
        for path in ("/dashboard/rejected", "/api/disconnects", "/dashboard"):
            reply = client.get(f"{path}?before_id={2**63}")
            assert reply.status_code == 400, path
            assert str(2**63 - 1) in reply.get_data(as_text=True)
            assert client.get(f"{path}?before_id={2**63 - 1}").status_code == 200


def test_auto_refresh_is_wired_to_the_api(operator, bw):
    failed_call(bw, cause="busy")
    html = operator.get("/dashboard?cause=busy").get_data(as_text=True)
    assert 'src="/static/dashboard/dashboard.js"' in html
    api_url = re.search(r'data-api-url="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert api_url.startswith("/api/disconnects?") and "cause=busy" in api_url
    assert operator.get(api_url).status_code == 200
    with operator.get("/static/dashboard/dashboard.js") as script:
        assert script.status_code == 200
    older_page = operator.get("/dashboard?before_id=999999").get_data(as_text=True)
    assert 'data-refresh-seconds="0"' in older_page  # only the newest page refreshes


def test_the_list_shows_what_signed_tag_state_says(app, operator, bw):
    from callbacks import encode_state

    cid = call_id()
    secret = app.config["SECRET_KEY"]
    tag = encode_state({"step": "menu", "_flow": "demo-ivr"}, secret, call_id=cid)
    failed_call(bw, callId=cid, tag=tag)
    failed_call(bw, tag="order-7")
    written = call_id()  # a plain tag a handler wrote, kept in the signed state
    failed_call(bw, callId=written, tag=encode_state({"_raw": "order-8"}, secret, call_id=written))
    html = operator.get("/dashboard").get_data(as_text=True)
    # The handler's own keys; the framework's (the flow) are not the handler's state.
    shown = str(escape('{"step": "menu"}'))
    assert f">{shown}</a>" in html
    assert f">{tag}<" not in html  # the token only in the filter link
    assert ">order-7<" in html and ">order-8<" in html
