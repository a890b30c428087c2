"""Inputs (the callee's digits and hang-ups, Update Call) reach every call, not only the first.

Regression: finished calls' inputs are deleted, and SQLite reused their ids for new inputs,
which the driver's cursor had already passed: every input after the first call was lost.
"""

from __future__ import annotations

from tests.sandbox.conftest import FROM, TO

WAIT_FOR_DIGIT = (
    '<Response><Gather gatherUrl="/gather" maxDigits="1" firstDigitTimeout="60"/></Response>'
)
LONG_PAUSE = '<Response><Pause duration="3000"/></Response>'
HANGUP = "<Response><Hangup/></Response>"


def _create(api, receiver, answer_path: str) -> str:
    call_id = api.create_ok(
        to=TO,
        applicationId="app-1",
        answerUrl=receiver.url(answer_path),
        disconnectUrl=receiver.url("/disconnect"),
        **{"from": FROM},
    )
    receiver.wait_for("answer", call_id)
    return call_id


def _control(api, server, call_id: str, action: str, body: dict) -> None:
    reply = api.session.post(
        f"{server.control_url}/calls/{call_id}/{action}", json=body, timeout=10
    )
    assert reply.status_code == 202, reply.text


def _disconnect_cause(receiver, call_id: str) -> str:
    return str(receiver.wait_for("disconnect", call_id, timeout=15)[0].payload["cause"])


def test_every_consecutive_call_gets_its_inputs(db_server, db_api, receiver):
    server, api = db_server, db_api
    receiver.reply("/gather", HANGUP)
    receiver.reply("/wait", LONG_PAUSE)
    receiver.reply("/digit", WAIT_FOR_DIGIT)
    receiver.reply("/redirected", HANGUP)
    for round_ in range(3):
        digit = str(round_ + 1)
        pressed = _create(api, receiver, "/digit")
        _control(api, server, pressed, "digits", {"digits": digit})
        gather = receiver.wait_for("gather", pressed, timeout=15)[0].payload
        assert gather["digits"] == digit
        assert _disconnect_cause(receiver, pressed) == "hangup"

        hung_up = _create(api, receiver, "/wait")
        _control(api, server, hung_up, "hangup", {})
        assert _disconnect_cause(receiver, hung_up) == "hangup"
        log = [line["text"] for line in server.sandbox.call(hung_up)["log"]]
        assert "the callee hung up" in log

        redirected = _create(api, receiver, "/wait")
        reply = api.update(redirected, redirectUrl=receiver.url("/redirected"))
        assert reply.status_code == 200, reply.text
        assert receiver.wait_for("redirect", redirected, timeout=15)[0].path == "/redirected"
        assert _disconnect_cause(receiver, redirected) == "hangup"

        completed = _create(api, receiver, "/wait")
        reply = api.update(completed, state="completed")
        assert reply.status_code == 200, reply.text
        assert _disconnect_cause(receiver, completed) == "hangup"
        log = [line["text"] for line in server.sandbox.call(completed)["log"]]
        assert "Update Call: state completed" in log


def test_input_ids_are_never_reused_after_calls_end(make_sandbox):
    """The store hands out increasing ids even after every input row was deleted."""
    sandbox = make_sandbox(driver="off")
    first = sandbox.db.add_input("c-1", "digits", {"digits": "1"})
    second = sandbox.db.add_input("c-1", "digits", {"digits": "2"})
    sandbox.db.finish(["c-1"], "nobody", {})
    assert sandbox.db.inputs_after(0) == []
    third = sandbox.db.add_input("c-2", "digits", {"digits": "3"})
    assert first < second < third


def test_an_older_sqlite_inputs_table_is_upgraded_keeping_pending_inputs(tmp_path):
    import sqlite3

    from sandbox.db import SandboxDB

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # the table as earlier versions created it
        old.execute(
            "CREATE TABLE sandbox_inputs (id INTEGER NOT NULL PRIMARY KEY, call_id TEXT NOT NULL,"
            " created_at FLOAT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL)"
        )
        old.execute("CREATE INDEX ix_sandbox_inputs_call_id ON sandbox_inputs (call_id, id)")
        old.execute(
            "INSERT INTO sandbox_inputs VALUES (7, 'c-old', 1.0, 'digits', '{\"digits\":\"5\"}')"
        )
    old.close()
    db = SandboxDB(f"sqlite:///{path}")
    try:
        pending = db.inputs_after(0)
        assert [(row["id"], row["call_id"], row["data"]) for row in pending] == [
            (7, "c-old", {"digits": "5"})
        ]
        db.finish(["c-old"], "nobody", {})
        assert db.add_input("c-new", "hangup", {}) > 7
    finally:
        db.dispose()
