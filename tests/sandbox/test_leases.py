"""Exactly one driver executes each call; a call whose driver died is resumed by another."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from tests.sandbox.conftest import FROM, TO


def _body(receiver, **overrides):
    return {
        "to": TO,
        "from": FROM,
        "applicationId": "app-1",
        "answerUrl": receiver.url("/answer"),
        "disconnectUrl": receiver.url("/disconnect"),
        **overrides,
    }


def test_two_drivers_never_run_the_same_call(make_sandbox, receiver):
    receiver.reply("/answer", '<Response><Pause duration="2"/></Response>')
    api_only = make_sandbox(driver="off")  # like a process that only serves the API
    first = make_sandbox(max_calls=8)
    second = make_sandbox(max_calls=8)
    first.start_driver()
    second.start_driver()
    ids = [
        api_only.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
        for _ in range(40)
    ]
    for call_id in ids:
        assert api_only.wait_for(call_id, "disconnected", timeout=30)["disconnectCause"] == "hangup"
    answers = Counter(r.payload["callId"] for r in receiver.events("answer"))
    disconnects = Counter(r.payload["callId"] for r in receiver.events("disconnect"))
    assert answers == Counter(ids) == disconnects  # each exactly once
    owners = Counter()
    for call_id in ids:
        runs = [
            line["text"]
            for line in api_only.call(call_id)["log"]
            if line["text"].startswith("driver ")
        ]
        assert len(runs) == 1, runs
        owners[runs[0].split()[1]] += 1
    assert set(owners) == {first.driver.owner, second.driver.owner}


def test_a_call_whose_lease_expired_is_resumed_where_it_was(make_sandbox, receiver):
    receiver.reply(
        "/answer", '<Response><Pause duration="60"/><Redirect redirectUrl="/after"/></Response>'
    )
    receiver.reply("/after", "<Response><Hangup/></Response>")
    dying = make_sandbox(lease_seconds=0.5)
    call_id = dying.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
    receiver.wait_for("answer")
    dying.wait_for(call_id, "answered")
    dying.driver.abandon()  # the worker "dies" in the middle of the Pause: no save, no release

    survivor = make_sandbox(lease_seconds=0.5)
    survivor.start_driver()
    assert receiver.wait_for("redirect", timeout=10)[0].path == "/after"
    final = survivor.wait_for(call_id, "disconnected", timeout=10)
    assert final["disconnectCause"] == "hangup"
    assert len(receiver.events("answer")) == 1  # not sent again: resumed at the Pause
    assert len(receiver.events("disconnect")) == 1
    runs = [line["text"] for line in final["log"] if line["text"].startswith("driver ")]
    assert runs == [
        f"driver {dying.driver.owner} runs the call from phase queued",
        f"driver {survivor.driver.owner} runs the call from phase running",
    ]


def test_a_clean_stop_releases_the_call_at_once(make_sandbox, receiver):
    receiver.reply(
        "/answer", '<Response><Pause duration="30"/><Redirect redirectUrl="/after"/></Response>'
    )
    receiver.reply("/after", "<Response><Hangup/></Response>")
    leaving = make_sandbox(lease_seconds=60)  # a takeover would need a minute
    call_id = leaving.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
    leaving.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    leaving.driver.stop()
    other = make_sandbox(lease_seconds=60)
    other.start_driver()
    assert other.wait_for(call_id, "disconnected", timeout=10)["disconnectCause"] == "hangup"
    assert len(receiver.events("answer")) == 1


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_leases_of_a_dead_process_on_this_host_are_taken_at_once(make_sandbox, receiver):
    """A reloaded `flask run` or a killed worker: its pid is gone, so its leases are free
    long before they expire."""
    receiver.reply(
        "/answer", '<Response><Pause duration="60"/><Redirect redirectUrl="/after"/></Response>'
    )
    receiver.reply("/after", "<Response><Hangup/></Response>")
    dying = make_sandbox(lease_seconds=600)  # a takeover by expiry would take 10 minutes
    host, _, token = dying.driver.owner.split(":")
    dying.driver.owner = f"{host}:{_dead_pid()}:{token}"
    call_id = dying.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
    dying.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    dying.driver.abandon()  # nothing saved, nothing released: the process "died"

    survivor = make_sandbox(lease_seconds=600)
    survivor.start_driver()
    assert receiver.wait_for("redirect", timeout=30)[0].path == "/after"
    final = survivor.wait_for(call_id, "disconnected", timeout=10)
    runs = [line["text"] for line in final["log"] if line["text"].startswith("driver ")]
    assert runs[-1] == f"driver {survivor.driver.owner} runs the call from phase running"


def test_a_live_process_keeps_its_leases(make_sandbox, receiver):
    receiver.reply("/answer", '<Response><Pause duration="6000"/></Response>')
    holder = make_sandbox(lease_seconds=600)
    call_id = holder.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
    holder.wait_for(call_id, "answered")
    other = make_sandbox(lease_seconds=600, driver="off")
    assert other.driver._release_dead_owners(time.time()) is False  # our pid is alive
    assert holder.db.get_call(call_id)["lease_owner"] == holder.driver.owner
    holder.update_call("9900000", call_id, {"state": "completed"})
    assert holder.wait_for(call_id, "disconnected", timeout=10)["disconnectCause"] == "hangup"


def test_a_stop_releases_a_call_stuck_in_a_callback(make_sandbox, receiver):
    """A clean stop that cannot wait for a slow callback still gives the lease back."""
    release = threading.Event()

    def slow_redirect(received):
        release.wait(20)
        return "<Response><Hangup/></Response>"

    receiver.reply("/answer", '<Response><Redirect redirectUrl="/slow"/></Response>')
    receiver.reply("/slow", slow_redirect)
    leaving = make_sandbox(lease_seconds=600)
    call_id = leaving.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
    receiver.wait_for("redirect")
    leaving.driver.stop(timeout=0.2)
    try:
        assert leaving.db.get_call(call_id)["lease_owner"] is None
    finally:
        release.set()


def _hours_pass(sandbox, call_id: str, hours: float) -> None:
    """As if the sandbox had been stopped ``hours`` ago: its release (or the crashed
    driver's lease) and its last save that long in the past."""
    from sqlalchemy import update

    from sandbox.tables import calls

    back = hours * 3600
    with sandbox.db.writing() as conn:
        conn.execute(
            update(calls)
            .where(calls.c.call_id == call_id)
            .values(
                lease_expires=calls.c.lease_expires - back, updated_at=calls.c.updated_at - back
            )
        )


@pytest.mark.parametrize("stop", ["stop", "abandon"])
def test_a_call_left_from_a_run_hours_ago_is_ended_not_resumed(make_sandbox, receiver, stop):
    """A sandbox started again on the same database does not replay stale calls: they end
    (cause error, saying why) without another callback; a reload's calls resume (above)."""
    receiver.reply(
        "/answer", '<Response><Pause duration="30"/><Redirect redirectUrl="/after"/></Response>'
    )
    receiver.reply("/after", "<Response><Hangup/></Response>")
    earlier = make_sandbox(lease_seconds=60)
    call_id = earlier.create_call("9900000", _body(receiver), "http://sandbox/api/v2")["callId"]
    earlier.wait_for(call_id, "answered")
    receiver.wait_for("answer")
    getattr(earlier.driver, stop)()  # a clean stop, or a crash (the lease not released)
    _hours_pass(earlier, call_id, 3)

    later = make_sandbox(lease_seconds=60)  # SANDBOX_RESUME_SECONDS: its default
    assert later.settings.resume_seconds == 300
    later.start_driver()
    final = later.wait_for(call_id, "disconnected", timeout=10)
    assert final["disconnectCause"] == "error"
    assert "ended instead of resumed" in final["errorMessage"]
    assert "SANDBOX_RESUME_SECONDS" in final["errorMessage"]
    runs = [line["text"] for line in final["log"] if line["text"].startswith("driver ")]
    assert runs == [f"driver {earlier.driver.owner} runs the call from phase queued"]
    # Ended in the database in one step: nothing was or will be sent for it.
    assert [r.path for r in receiver.requests] == ["/answer"]


def test_resume_seconds_must_be_positive():
    from sandbox.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="SANDBOX_RESUME_SECONDS"):
        Settings(database_url="sqlite://", password="pw", resume_seconds=0)
