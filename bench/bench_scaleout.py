"""Scale-out on PostgreSQL: bench_callbacks.py's answer-callback load, one app server vs two.

Creates a fresh schema on the PostgreSQL server (TEST_DATABASE_URL, or --database-url;
dropped afterwards), migrates it once, then in one run:

1. one gunicorn master (gunicorn.conf.py, --workers workers) under one wrk process with
   --connections connections;
2. the same server under 2x connections (the total concurrency of step 3);
3. two gunicorn masters on the same database, as behind a load balancer, each under its
   own wrk process with --connections connections, both at once.

The load is bench/answer_load.lua (distinct answer callbacks, Basic auth), with a per-run
prefix added to its callIds so that two wrk processes never send the same callback.  Every
row is counted afterwards: lost = acknowledged - stored - spooled.

    apt-get install wrk
    python bench/bench_scaleout.py [--seconds 10] [--connections 16] [--workers 2]

On a 2-core machine two servers share the same CPUs as one, so the figure to look at is
zero errors and zero lost events at the higher concurrency, not a doubling.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_callbacks import PASSWORD, USER, start_wrk, wrk_result  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def run_wrk(
    bases: list[str], prefix: str, seconds: int, connections: int, threads: int
) -> list[dict[str, Any]]:
    """One wrk process per server, all at once; each result carries its callId prefix."""
    prefixes = [f"{prefix}{chr(97 + i)}" for i in range(len(bases))]
    processes = [
        start_wrk(base, seconds, connections, threads, prefix=p)
        for base, p in zip(bases, prefixes, strict=True)
    ]
    results = [wrk_result(process, seconds) for process in processes]
    for result, p in zip(results, prefixes, strict=True):
        result["prefix"] = p
    return results


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new empty schema on that server (dropped afterwards); yields a URL using it."""
    parsed = make_url(url).set(drivername="postgresql")
    admin = psycopg.connect(
        parsed.set(query={}).render_as_string(hide_password=False), autocommit=True
    )
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def stored(url: str, prefix: str) -> int:
    engine = sa.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            count = conn.execute(
                sa.text("SELECT count(*) FROM events WHERE route = 'answer' AND call_id LIKE :p"),
                {"p": f"c-bench-{prefix}-%"},
            )
            return int(count.scalar_one())
    finally:
        engine.dispose()


def spooled(paths: list[Path]) -> int:
    return sum(len(p.read_text().splitlines()) for p in paths if p.exists())


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "store", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16, help="per server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads per process")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="the PostgreSQL server (a fresh schema is created in it)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    seconds, connections, threads = args.seconds, args.connections, args.threads

    with tempfile.TemporaryDirectory() as tmp, fresh_schema(args.database_url) as url:
        spools = [Path(tmp) / f"spool-{n}.jsonl" for n in (1, 2)]
        envs = [
            {
                "DATABASE_URL": url,
                "SPOOL_PATH": str(spool),
                "CALLBACK_USERNAME": USER,
                "CALLBACK_PASSWORD": PASSWORD,
                "SECRET_KEY": "bench",
                "DASHBOARD_PASSWORD": "bench",
                # Two masters on one host: gunicorn's default control socket is per user.
                "GUNICORN_CMD_ARGS": "--no-control-socket",
            }
            for spool in spools
        ]
        migrate(envs[0])  # once, before any server starts
        runs: list[tuple[str, list[dict[str, Any]]]] = []
        with gunicorn(envs[0], workers=args.workers) as base:
            run_wrk([base], "warm1", 2, connections, threads)
            runs.append(
                (f"1 server, {connections} conn", run_wrk([base], "one", seconds, connections, threads))
            )  # fmt: skip
            runs.append(
                (
                    f"1 server, {2 * connections} conn",
                    run_wrk([base], "onex", seconds, 2 * connections, threads),
                )
            )
        with contextlib.ExitStack() as stack:
            bases = [stack.enter_context(gunicorn(env, workers=args.workers)) for env in envs]
            run_wrk(bases, "warm2", 2, connections, threads)
            runs.append(
                (
                    f"2 servers, 2x{connections} conn",
                    run_wrk(bases, "two", seconds, connections, threads),
                )
            )
        counts = {r["prefix"]: stored(url, r["prefix"]) for _, results in runs for r in results}
        spool_lines = spooled(spools)

    print(
        f"store=postgresql workers/server={args.workers} seconds={seconds} "
        f"wrk threads/process={threads} cpus={os.cpu_count()}"
    )
    header = f"{'':26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'errors':>8}"
    print(header + f"{'acked':>9}{'stored':>9}{'lost':>6}")
    rates: dict[str, float] = {}
    total_lost = 0
    for name, results in runs:
        ok = sum(int(r["ok"]) for r in results)
        rows = sum(counts[r["prefix"]] for r in results)
        lost = max(0, ok - rows)
        total_lost += lost
        rates[name] = sum(r["rps"] for r in results)
        print(
            f"{name:26}{rates[name]:>9.0f}{max(r['p50_ms'] for r in results):>9.1f}"
            f"{max(r['p99_ms'] for r in results):>9.1f}{sum(int(r['bad']) for r in results):>9}"
            f"{sum(int(r['errors']) for r in results):>8}{ok:>9}{rows:>9}{lost:>6}"
        )
    names = [name for name, _ in runs]
    print(
        f"ratio two servers / one: {rates[names[2]] / rates[names[0]]:.2f}x at "
        f"{connections} conn per server, {rates[names[2]] / rates[names[1]]:.2f}x at the same "
        f"total ({2 * connections} conn)"
    )
    print(
        f"spooled: {spool_lines}  lost: {max(0, total_lost - spool_lines)}  "
        "(p50/p99 of two servers: the higher of the two wrk processes; stored can exceed "
        "acked by the requests still in flight when wrk stopped)"
    )


if __name__ == "__main__":
    main()
