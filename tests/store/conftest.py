"""Fixtures of the store tests: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from store import Store
from tests.pg import fresh_postgres_url
from tests.servers import closed_port

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

_counter = itertools.count(1)


def make_record(**overrides: Any) -> dict[str, Any]:
    """A callback record as the callbacks package hands it to the store."""
    event_type = overrides.pop("event_type", "disconnect")
    call_id = overrides.pop("call_id", f"c-{next(_counter)}")
    payload = overrides.pop(
        "payload",
        {
            "eventType": event_type,
            "callId": call_id,
            "from": overrides.get("from_number", "+15550001111"),
            "to": overrides.get("to_number", "+15550002222"),
            "cause": overrides.get("cause", "hangup"),
            "n": next(_counter),
        },
    )
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    record: dict[str, Any] = {
        "route": f"/callbacks/{event_type}",
        "method": "POST",
        "event_type": event_type,
        "call_id": call_id,
        "conference_id": None,
        "event_time": "2024-05-01T12:00:00.000Z",
        "from_number": "+15550001111",
        "to_number": "+15550002222",
        "direction": "outbound",
        "tag": None,
        "cause": "hangup" if event_type == "disconnect" else None,
        "error_message": None,
        "error_id": None,
        "sip_response_code": None,
        "payload": payload,
        "payload_hash": hashlib.sha256(canonical.encode()).hexdigest(),
        "reply_status": 204 if event_type == "disconnect" else 200,
        "reply_body": None if event_type == "disconnect" else "<Response></Response>",
        "reply_content_type": None if event_type == "disconnect" else "application/xml",
        "latency_ms": 1.5,
        "error_detail": None,
        "received_at": time.time(),
    }
    record.update(overrides)
    return record


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        with fresh_postgres_url() as url:
            yield url


@pytest.fixture
def dead_url(backend, tmp_path) -> str:
    """A URL of the same backend whose database cannot be reached at all."""
    if backend == "sqlite":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where the database directory should be\n")
        return f"sqlite:///{blocker / 'events.db'}"
    return f"postgresql://postgres@127.0.0.1:{closed_port()}/test"


@pytest.fixture
def make_store(db_url, tmp_path):
    """Build Stores (default: this test's database and spool); all disposed afterwards."""
    made: list[Store] = []

    def make(url: str | None = None, **options: Any) -> Store:
        options.setdefault("spool_path", str(tmp_path / "spool.jsonl"))
        options.setdefault("busy_timeout", 2.0)
        built = Store(url or db_url, **options)
        made.append(built)
        return built

    yield make
    for built in made:
        built.dispose()


@pytest.fixture
def store(make_store) -> Store:
    """A migrated store: a first callback's wait is not spent on creating the schema."""
    built = make_store()
    built.migrate()
    return built
