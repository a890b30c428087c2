"""Store benchmarks: callback write throughput, and dashboard reads at 10k vs 1M events.

    python bench/bench_store.py throughput [--backend sqlite|postgres] [--count 3000]
    python bench/bench_store.py scale [--backend sqlite|postgres] [--events 1000000]

``throughput`` times record_callback per callback (the hot path), one thread and four
threads.  ``scale`` bulk-loads synthetic events (40% disconnects, 85% of
them hangups, over 30 days), then reports the median time of the dashboard reads at
10,000 events and at ``--events``.  PostgreSQL comes from TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test), in a throw-away schema.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from store import Store
from store.rows import event_row

CAUSES = [
    ("hangup", 85),
    ("busy", 5),
    ("timeout", 3),
    ("cancel", 3),
    ("error", 2),
    ("rejected", 1),
    ("callback-error", 0.5),
    ("invalid-bxml", 0.5),
]


@contextlib.contextmanager
def database(backend: str, directory: str, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{os.path.join(directory, name + '.db')}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1/test")
    url = url.set(drivername="postgresql")
    schema = f"bench_{name}_{os.getpid()}"
    conninfo = url.set(query={}).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def callback(i: int, now: float, rng: random.Random) -> dict[str, Any]:
    kind = rng.choices(["answer", "disconnect", "gather"], [40, 40, 20])[0]
    cause = rng.choices([c for c, _ in CAUSES], [w for _, w in CAUSES])[0]
    call_id = f"c-{i // 3}"
    payload = {"eventType": kind, "callId": call_id, "n": i}
    return {
        "route": f"/callbacks/{kind}",
        "method": "POST",
        "event_type": kind,
        "call_id": call_id,
        "event_time": "2024-05-01T12:00:00.000Z",
        "from_number": f"+1555{rng.randrange(10_000):07d}",
        "to_number": "+15550009999",
        "direction": "outbound",
        "tag": f"flow-{rng.randrange(1000)}" if rng.random() < 0.3 else None,
        "cause": cause if kind == "disconnect" else None,
        "error_id": f"err-{rng.randrange(100)}" if cause not in ("hangup", "busy") else None,
        "payload": payload,
        "payload_hash": hashlib.sha256(f"{i}".encode()).hexdigest(),
        "reply_status": 204 if kind == "disconnect" else 200,
        "reply_body": None if kind == "disconnect" else "<Response><Hangup/></Response>",
        "reply_content_type": None if kind == "disconnect" else "application/xml",
        "latency_ms": 1.0,
        "received_at": now - rng.random() * 30 * 86400,
    }


def throughput(args: argparse.Namespace) -> None:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        for synchronous in ("FULL", "NORMAL") if args.backend == "sqlite" else ("-",):
            for threads in (1, 4):
                name = f"tp{threads}{synchronous.lower().strip('-')}"
                with database(args.backend, tmp, name) as url:
                    store = Store(
                        url,
                        spool_path=os.path.join(tmp, "spool.jsonl"),
                        sqlite_synchronous="FULL" if synchronous == "-" else synchronous,
                    )
                    store.migrate()
                    now = time.time()
                    records = [callback(i, now, rng) for i in range(args.count)]
                    chunks = [records[t::threads] for t in range(threads)]

                    def work(chunk: list[dict[str, Any]], s: Store = store) -> None:
                        for record in chunk:
                            assert s.record_callback(record)[0] == "inserted"

                    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
                    started = time.perf_counter()
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()
                    elapsed = time.perf_counter() - started
                    store.dispose()
                label = f"{args.backend} synchronous={synchronous}" if synchronous != "-" else "pg"
                print(
                    f"{label:28} threads={threads}: {args.count / elapsed:8.0f} callbacks/s "
                    f"({elapsed / args.count * 1e6:.0f} us each)"
                )


def bulk_load(store: Store, count: int, seed: int = 7) -> None:
    """Insert ``count`` synthetic events fast; the narrow table and rollup are derived in SQL."""
    with store.long_statements():  # bulk statements: longer than the callback path's bound
        _bulk_load(store, count, seed)


def _bulk_load(store: Store, count: int, seed: int) -> None:
    from sqlalchemy import text

    from store.rows import EVENT_COLUMNS

    rng = random.Random(seed)
    now = time.time()
    store.migrate()
    engine = store.engine
    columns = ", ".join(EVENT_COLUMNS)
    placeholders = ", ".join(f":{c}" for c in EVENT_COLUMNS)
    insert = text(f"INSERT INTO events ({columns}) VALUES ({placeholders})")  # noqa: S608
    batch = 20_000
    for start in range(0, count, batch):
        rows = [event_row(callback(i, now, rng)) for i in range(start, min(count, start + batch))]
        with engine.begin() as conn:
            conn.execute(insert, rows)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO disconnects (event_id, received_at, cause, from_number, to_number,"
                " error_id, tag) SELECT id, received_at, COALESCE(cause, 'unknown'), from_number,"
                " to_number, error_id, tag FROM events WHERE event_type = 'disconnect'"
            )
        )
        conn.execute(
            text(
                "INSERT INTO disconnect_totals (cause, count) SELECT COALESCE(cause, 'unknown'),"
                " COUNT(*) FROM events WHERE event_type = 'disconnect' GROUP BY 1"
            )
        )
        conn.execute(
            text(
                "INSERT INTO disconnect_rollup (cause, bucket_start, count)"
                " SELECT COALESCE(cause, 'unknown'), CAST(received_at / 3600 AS BIGINT) * 3600,"
                " COUNT(*) FROM events WHERE event_type = 'disconnect' GROUP BY 1, 2"
            )
        )
    if not store.is_sqlite:  # autovacuum would; SQLite runs without statistics, as shipped
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def median_ms(fn: Callable[[], object], repeat: int = 21) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def scale(args: argparse.Namespace) -> None:
    now = time.time()
    day = 86400
    queries: dict[str, Callable[[Store], object]] = {
        "cause_counts() all time": lambda s: s.cause_counts(),
        "cause_counts(last 24 h)": lambda s: s.cause_counts(since=now - day),
        "failures_over_time(7 d)": lambda s: s.failures_over_time(now - 7 * day, now),
        "disconnects() first page": lambda s: s.disconnects(),
        "disconnects(causes=[rejected])": lambda s: s.disconnects(causes=["rejected"]),
        "disconnects(cause absent)": lambda s: s.disconnects(causes=["no-such-cause"]),
        "disconnects(hangups too)": lambda s: s.disconnects(exclude_hangup=False),
        "disconnects(number=...)": lambda s: s.disconnects(number="+15550000042"),
        "disconnects(error_id=...)": lambda s: s.disconnects(error_id="err-7"),
        "disconnects(tag=...)": lambda s: s.disconnects(tag="flow-42"),
        "disconnects(to=our number)": lambda s: s.disconnects(number="+15550009999"),
        "disconnects(last 24 h)": lambda s: s.disconnects(since=now - day),
        "disconnects(all, page 20)": lambda s: s.disconnects(
            exclude_hangup=False, before_id=_page_id(s)
        ),
        "events_for_call": lambda s: s.events_for_call("c-1234"),
    }
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (10_000, args.events):
            with database(args.backend, tmp, f"scale{count}") as url:
                store = Store(url, spool_path=os.path.join(tmp, "spool.jsonl"))
                store.migrate()
                started = time.perf_counter()
                bulk_load(store, count)
                print(f"loaded {count} events in {time.perf_counter() - started:.1f} s")
                results[count] = {
                    name: median_ms(lambda q=q, s=store: q(s)) for name, q in queries.items()
                }
                store.dispose()
    small, large = results[10_000], results[args.events]
    print(f"{'median ms':32} {'10,000':>10} {args.events:>10,} {'ratio':>7}")
    for name in queries:
        ratio = large[name] / small[name] if small[name] else float("nan")
        print(f"{name:32} {small[name]:10.2f} {large[name]:10.2f} {ratio:7.2f}")


_PAGE_IDS: dict[int, int] = {}


def _page_id(store: Store) -> int:
    key = id(store)
    if key not in _PAGE_IDS:
        before = None
        for _ in range(19):
            page = store.disconnects(exclude_hangup=False, before_id=before)
            before = page[-1]["id"]
        _PAGE_IDS[key] = before or 0
    return _PAGE_IDS[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["throughput", "scale"])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    (throughput if args.mode == "throughput" else scale)(args)


if __name__ == "__main__":
    main()
