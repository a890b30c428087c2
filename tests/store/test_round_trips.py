"""PostgreSQL: a disconnect's statements reach the server in a few round trips, not one per
statement (each round trip is a network latency the commit thread waits out)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests.pg import fresh_postgres_url

from .conftest import make_record
from .stall_proxy import RoundTripCounter

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"])]

# BEGIN, the event's INSERT, the call's earlier failures read in one go, the disconnect's
# row and counts written in one go, COMMIT.
DISCONNECT_ROUND_TRIPS = 5


@pytest.fixture
def counted_store(make_store):
    with fresh_postgres_url() as db_url:
        target = make_url(db_url)
        with RoundTripCounter(target.host or "127.0.0.1", target.port or 5432) as counter:
            url = target.set(host="127.0.0.1", port=counter.port).update_query_dict(
                {"sslmode": "disable"}  # the counter reads the protocol in clear
            )
            store = make_store(url.render_as_string(hide_password=False))
            store.migrate()
            yield store, counter
            store.dispose()


def test_the_counter_counts_each_statement_outside_a_pipeline(counted_store):
    store, counter = counted_store
    with store.engine.connect() as conn:
        before = counter.waits
        for _ in range(3):
            conn.exec_driver_sql("SELECT 1")
        assert counter.waits - before >= 3


def test_a_disconnect_is_stored_in_a_few_round_trips(counted_store):
    store, counter = counted_store
    crashed = make_record(
        event_type="answer", call_id="c-trips", category="handler-error", error_detail="boom"
    )
    assert store.record_callback(crashed).outcome == "inserted"
    before = counter.waits
    disconnect = make_record(call_id="c-trips", cause="error", error_message="busy")
    assert store.record_callback(disconnect).outcome == "inserted"
    assert counter.waits - before <= DISCONNECT_ROUND_TRIPS
    # What the reads found made it into the row: the answer's failure, its traceback.
    stored = store.disconnects(search="boom", limit=5)
    assert [(row["call_id"], row["category"]) for row in stored] == [("c-trips", "handler-error")]
