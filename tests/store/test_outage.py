"""The outage breaker is the server's, not each worker's: after one worker's commit failed
for want of the database, every worker spools at once (without trying it) until the hold is
over; then one callback at a time, across the server, tries it; a claim of a probe that
never ends lapses; a success anywhere ends the outage."""

from __future__ import annotations

import itertools
import json
import logging
import os
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from store.outage import FAILED_LATELY, PROBING, OutageBoard
from tests.servers import ROOT

from .conftest import make_record, wait_until
from .test_stalls import past, sqlite_held, stored_per_call

BUSY = 1.0


# --- the board itself -----------------------------------------------------------------


@pytest.fixture
def boards(tmp_path):
    """Two views of one board file, as two workers have; closed afterwards."""
    made: list[OutageBoard] = []

    def make(hold: float = 0.3, claim: float | None = None) -> OutageBoard:
        board = OutageBoard(str(tmp_path / "spool.jsonl.outage"), hold, claim)
        made.append(board)
        return board

    yield make
    for board in made:
        board.close()


def test_a_failure_seen_by_one_view_holds_the_other_then_one_probe_then_success(boards):
    first, second = boards(), boards()
    assert first.shared and second.shared
    assert first.refusal(time.monotonic()) is None  # healthy: try the database
    first.failed()
    failed = time.monotonic()
    assert second.is_down()
    assert second.refusal(time.monotonic()) == FAILED_LATELY
    past(failed + first.hold)
    assert second.refusal(time.monotonic()) is None  # the probe is second's
    assert first.refusal(time.monotonic()) == PROBING
    assert second.refusal(time.monotonic()) == PROBING  # one at a time in a process too
    second.failed()  # the probe failed: hold again, and no claim
    assert first.refusal(time.monotonic()) == FAILED_LATELY
    past(time.monotonic() + first.hold)
    assert first.refusal(time.monotonic()) is None  # first probes now
    first.answered()
    assert not second.is_down()
    assert second.refusal(time.monotonic()) is None
    assert first.refusal(time.monotonic()) is None


def test_a_probe_claim_that_never_ends_lapses(boards):
    first, second = boards(claim=0.5), boards(claim=0.5)
    first.failed()
    past(time.monotonic() + first.hold)
    assert first.refusal(time.monotonic()) is None  # first probes, and never says how it went
    claimed = time.monotonic()
    assert second.refusal(time.monotonic()) == PROBING
    past(claimed + first.claim)
    assert second.refusal(time.monotonic()) is None  # the claim lapsed: second probes
    assert first.refusal(time.monotonic()) == PROBING


def test_another_process_failure_holds_this_one(boards, tmp_path):
    board = boards(hold=60.0)
    script = (
        "import sys\nfrom store.outage import OutageBoard\n"
        "OutageBoard(sys.argv[1], 60.0).failed()\n"
    )
    subprocess.run([sys.executable, "-c", script, board.path], cwd=ROOT, check=True, timeout=60)
    assert board.refusal(time.monotonic()) == FAILED_LATELY


def test_a_time_from_before_a_reboot_is_not_an_outage(tmp_path):
    path = tmp_path / "spool.jsonl.outage"
    far = time.monotonic() + 10**6  # the clock of a host up much longer
    path.write_bytes(struct.pack("<dd", far, far))
    board = OutageBoard(str(path), 1.0)
    try:
        assert not board.is_down()
        assert board.refusal(time.monotonic()) is None
    finally:
        board.close()


def test_without_its_file_the_board_is_this_process_own(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool's folder should be\n")
    with caplog.at_level(logging.WARNING, logger="store.outage"):
        board = OutageBoard(str(blocker / "spool.jsonl.outage"), 0.2)
    assert not board.shared
    assert [r.message for r in caplog.records if "not usable" in r.message]
    board.failed()
    assert board.refusal(time.monotonic()) == FAILED_LATELY
    past(time.monotonic() + board.hold)
    assert board.refusal(time.monotonic()) is None
    assert board.refusal(time.monotonic()) == PROBING
    board.answered()
    assert board.refusal(time.monotonic()) is None
    board.close()


# --- two stores sharing a spool, as two workers do ------------------------------------


@pytest.fixture
def attempts():
    """Per store: the callIds of every commit it tried (its before_batch hook)."""

    def count(store) -> list[str]:
        tried: list[str] = []
        store.hooks.before_batch = lambda rows: tried.extend(row["call_id"] for row in rows)
        return tried

    return count


def outcome(store, call_id: str) -> str:
    return store.record_callback(make_record(call_id=call_id)).outcome


def test_after_one_store_failed_the_other_spools_without_trying(
    make_store, dead_url, db_url, attempts
):
    first, second = make_store(dead_url, busy_timeout=BUSY), make_store(dead_url, busy_timeout=BUSY)
    first_tried, second_tried = attempts(first), attempts(second)
    healthy = make_store(db_url, busy_timeout=BUSY)  # a third, on a database that answers
    healthy.migrate()  # now: a slow migration later could outlast a hold
    healthy_tried = attempts(healthy)
    assert outcome(first, "c-shared-0") == "spooled"
    failed = time.monotonic()
    assert first_tried == ["c-shared-0"]  # it tried the database, which refused
    for n in range(1, 6):
        assert outcome(second, f"c-shared-{n}") == "spooled"
    assert second_tried == []  # held by the other's failure: never tried
    past(failed + BUSY)
    assert outcome(second, "c-shared-6") == "spooled"  # the probe, refused again
    probed = time.monotonic()
    assert second_tried == ["c-shared-6"]
    assert outcome(first, "c-shared-7") == "spooled"
    assert outcome(healthy, "c-shared-8") == "spooled"
    assert first_tried == ["c-shared-0"] and healthy_tried == []  # held by the probe's failure

    # The next probe is the third's, and its success ends the outage for every store.
    past(probed + BUSY)
    assert outcome(healthy, "c-shared-9") == "inserted"
    assert healthy_tried == ["c-shared-9"]
    assert outcome(first, "c-shared-10") == "spooled"
    assert first_tried == ["c-shared-0", "c-shared-10"]  # tried at once, not held


def test_one_probe_at_a_time_across_stores_and_a_hung_probe_lapses(make_store, dead_url, attempts):
    first, second = make_store(dead_url, busy_timeout=BUSY), make_store(dead_url, busy_timeout=BUSY)
    first_tried, second_tried = attempts(first), attempts(second)
    assert outcome(first, "c-probe-0") == "spooled"
    failed = time.monotonic()
    release = threading.Event()

    def hang(rows):  # first's probe hangs before it reaches the database
        first_tried.extend(row["call_id"] for row in rows)
        release.wait(60)

    first.hooks.before_batch = hang
    past(failed + BUSY)
    probe = threading.Thread(target=outcome, args=(first, "c-probe-1"))
    probe.start()
    try:
        wait_until(lambda: first_tried == ["c-probe-0", "c-probe-1"])
        claimed = time.monotonic()
        for n in range(2, 6):
            assert outcome(second, f"c-probe-{n}") == "spooled"
        assert second_tried == []  # one probe across the stores: first's
        probe.join(timeout=30)  # its caller gave up after its wait and spooled it
        assert not probe.is_alive()
        assert second_tried == []  # still first's probe: its commit never ended
        past(claimed + BUSY + 2.0)  # the claim (busy timeout + PROBE_MARGIN) lapsed
        assert outcome(second, "c-probe-6") == "spooled"
        assert second_tried == ["c-probe-6"]  # second probes now
    finally:
        release.set()
        probe.join(timeout=30)


# One commit thread per store on both (store.core.PG_COMMIT_THREADS): one hang is all of them.
def test_a_commit_stuck_past_the_busy_timeout_holds_the_other_stores_too(make_store, attempts):
    first, second = make_store(busy_timeout=BUSY), make_store(busy_timeout=BUSY)
    first.migrate()
    second_tried = attempts(second)
    release, entered = threading.Event(), threading.Event()

    def hang(rows):  # the database hangs in first's commit (it has not failed)
        entered.set()
        release.wait(60)

    first.hooks.before_batch = hang
    stuck = threading.Thread(target=outcome, args=(first, "c-stuck-0"))
    stuck.start()
    try:
        assert entered.wait(30)
        past(time.monotonic() + BUSY)
        assert outcome(first, "c-stuck-1") == "spooled"  # first sees its commit stuck
        assert outcome(second, "c-stuck-2") == "spooled"
        assert second_tried == []  # held without a wait of its own
    finally:
        release.set()
        stuck.join(timeout=30)
    wait_until(lambda: first.commit_queue_depth() == 0)
    # The stuck commit went through: the database answers, for every store.
    assert outcome(second, "c-stuck-3") == "inserted"
    assert second_tried == ["c-stuck-3"]


# --- under gunicorn: two workers, one outage --------------------------------------------

SPOOLING = "store unavailable, spooling "
HELD = (FAILED_LATELY, PROBING, "the database has been stuck in a commit")  # not tried


def spool_reasons(log_path) -> dict[int, list[str]]:
    """Per worker pid, in order: why each of its callbacks went to the spool (the store's
    warning; the app logs one JSON object per line)."""
    reasons: dict[int, list[str]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines
        message = entry.get("message", "") if isinstance(entry, dict) else ""
        if entry.get("logger") == "store.group_commit" and message.startswith(SPOOLING):
            reasons.setdefault(int(entry["pid"]), []).append(message.split(": ", 1)[1])
    return reasons


@pytest.mark.slow
def test_under_gunicorn_one_worker_failure_sends_both_to_the_spool(tmp_path):
    from store import Store
    from tests.callbacks.helpers import basic_auth, disconnect_event
    from tests.servers import app_env, gunicorn

    busy = 2.0
    env = app_env(tmp_path, STORE_BUSY_TIMEOUT=str(busy))
    schema = Store(env["DATABASE_URL"], spool_path=env["SPOOL_PATH"])
    schema.migrate()  # so that there is a lock to hold
    schema.dispose()
    log_path = tmp_path / "gunicorn.log"
    sent = itertools.count()
    acknowledged: list[str] = []

    def post(base: str) -> None:
        call_id = f"c-gunicorn-{next(sent)}"
        reply = requests.post(
            base + "/callbacks/disconnect",
            data=json.dumps(disconnect_event(callId=call_id)),
            # A new connection each: the kernel hands connections to either worker.
            headers={**basic_auth(), "Content-Type": "application/json", "Connection": "close"},
            timeout=60,
        )
        assert reply.status_code == 204
        acknowledged.append(call_id)

    def held_in_both() -> bool:
        return len([p for p, why in spool_reasons(log_path).items() if set(why) & set(HELD)]) == 2

    with gunicorn(env, workers=2, log_path=log_path) as base:
        with sqlite_held(env["DATABASE_URL"].removeprefix("sqlite:///")):
            post(base)  # waits the busy timeout for the lock, then is spooled
            [[first_failure]] = spool_reasons(log_path).values()
            assert first_failure not in HELD
            deadline = time.monotonic() + 60
            with ThreadPoolExecutor(8) as pool:
                while not held_in_both():  # until both workers have had callbacks
                    assert time.monotonic() < deadline, "one worker took every connection"
                    list(pool.map(lambda _: post(base), range(16)))
    reasons = spool_reasons(log_path)
    assert len(reasons) == 2
    # The worker that did not see the failure spooled its first callbacks without trying
    # the database (each worker on its own would have spent one busy timeout finding out).
    tried_first = [pid for pid, why in reasons.items() if why[0] not in HELD]
    assert len(tried_first) == 1
    # Beyond the first failure, only probes tried it: one at a time, for both workers.
    tries = [reason for why in reasons.values() for reason in why if reason not in HELD]
    assert len(tries) < sum(len(why) for why in reasons.values()) // 2

    store = Store(env["DATABASE_URL"], spool_path=env["SPOOL_PATH"])
    try:
        store.replay_spool()
        stored = stored_per_call(store, "c-gunicorn")
        assert sorted(stored) == sorted(acknowledged)  # lost: 0
        assert set(stored.values()) == {1}  # duplicated: 0
        assert not store.spool.pending()
    finally:
        store.dispose()


def test_a_store_whose_outage_file_is_unusable_keeps_its_own_and_says_so_once(
    make_store, dead_url, attempts, caplog
):
    store = make_store(dead_url, busy_timeout=BUSY)
    os.mkdir(store.spool.path + ".outage")  # in the way of the file
    tried = attempts(store)
    with caplog.at_level(logging.WARNING, logger="store.outage"):
        assert outcome(store, "c-own-0") == "spooled"
        failed = time.monotonic()
        for n in range(1, 4):
            assert outcome(store, f"c-own-{n}") == "spooled"
        assert tried == ["c-own-0"]  # this process's breaker still holds its callbacks
        past(failed + BUSY)
        assert outcome(store, "c-own-4") == "spooled"
        assert tried == ["c-own-0", "c-own-4"]
    assert len([r for r in caplog.records if "not usable" in r.message]) == 1


def test_a_replay_that_stored_rows_ends_the_outage(make_store, dead_url, db_url, attempts):
    # A hold of a busy timeout long enough that only the replay below can end it (nothing
    # here waits for it: a refused connection fails at once, a held store spools at once).
    healthy = make_store(db_url, busy_timeout=60)
    healthy.migrate()  # before the outage: a slow migration must not outlast the hold
    tried = attempts(healthy)
    dead = make_store(dead_url, busy_timeout=60)
    assert outcome(dead, "c-replayed-0") == "spooled"  # and the server is held
    assert outcome(healthy, "c-replayed-1") == "spooled"
    assert tried == []  # held
    assert healthy.replay_spool() == 2  # the database took them: it is back
    assert outcome(healthy, "c-replayed-2") == "inserted"
    assert tried == ["c-replayed-2"]
