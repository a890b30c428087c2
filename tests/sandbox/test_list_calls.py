"""listCalls (``GET /accounts/{accountId}/calls``): filters, paging by ``Link``, on SQLite and
PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.conftest import FROM

HANGUP = "<Response><Hangup/></Response>"
FIRST, SECOND, BUSY = "+12025550171", "+12025550172", "+12025550486"


def _call(db_api, receiver, to: str) -> str:
    return db_api.create_ok(
        to=to,
        applicationId="app-1",
        answerUrl=receiver.url("/answer"),
        disconnectUrl=receiver.url("/disconnect"),
        **{"from": FROM},
    )


def _list(db_api, **params):
    reply = db_api.session.get(db_api.calls_url, params=params, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply


def test_list_calls_filters_and_pages_oldest_first(db_server, db_api, receiver):
    receiver.reply("/answer", HANGUP)
    made = [_call(db_api, receiver, to) for to in (FIRST, SECOND, FIRST, FIRST, BUSY)]
    for call_id in made:
        db_server.sandbox.wait_for(call_id, "disconnected", timeout=20)

    everything = _list(db_api).json()
    assert [c["callId"] for c in everything] == made
    assert "Link" not in _list(db_api).headers
    assert [c["callId"] for c in _list(db_api, to=FIRST).json()] == [made[0], made[2], made[3]]
    assert [c["callId"] for c in _list(db_api, disconnectCause="busy").json()] == [made[4]]
    assert _list(db_api, **{"from": "+19999999999"}).json() == []

    # startTime bounds are inclusive at both ends (calls start in any order: each is
    # started by its own runner thread, so the expected set comes from their startTimes)
    low, high = sorted([everything[1]["startTime"], everything[3]["startTime"]])
    bounded = _list(db_api, minStartTime=low, maxStartTime=high).json()
    expected = [c["callId"] for c in everything if low <= c["startTime"] <= high]
    assert [c["callId"] for c in bounded] == expected
    assert everything[1]["callId"] in expected and everything[3]["callId"] in expected

    first_page = _list(db_api, pageSize=2)
    assert [c["callId"] for c in first_page.json()] == made[:2]
    pages = [c["callId"] for c in first_page.json()]
    link = first_page.headers["Link"]
    while link:
        url = re.fullmatch(r'<(.+)>; rel="next"', link).group(1)
        page = db_api.session.get(url, timeout=10)
        assert len(page.json()) <= 2
        pages += [c["callId"] for c in page.json()]
        link = page.headers.get("Link")
    assert pages == made


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"pageSize": "0"}, "Invalid pageSize"),
        ({"pageSize": "10001"}, "Invalid pageSize"),
        ({"pageSize": "ten"}, "Invalid pageSize"),
        ({"pageToken": "%%%"}, "Invalid pageToken"),
        ({"minStartTime": "2024-13-01"}, "Invalid minStartTime"),
        ({"maxStartTime": "2024-01-01T00:00:00"}, "Invalid maxStartTime"),
    ],
)
def test_bad_list_calls_parameters_get_a_400(db_api, params, problem):
    reply = db_api.session.get(db_api.calls_url, params=params, timeout=10)
    assert reply.status_code == 400, reply.text
    assert problem in reply.json()["description"]
