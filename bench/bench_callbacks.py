"""Callback throughput: the real app's answer route against a bare Flask route, one run.

Starts gunicorn on 127.0.0.1 twice with the same shipped settings (gunicorn.conf.py):
once serving the real app (auth, parse, dedupe, store, handler, render) and once a bare
Flask route returning a constant BXML string; drives both with the same bounded wrk load of
distinct answer callbacks; then counts the stored rows to find lost events.

    apt-get install wrk
    python bench/bench_callbacks.py [--seconds 10] [--connections 16] [--database-url URL]

Target: the app holds >= 0.5x the bare route's requests/s (aim 0.7x) with zero errors and
zero lost events.  Prints requests/s, p50/p99 latency and the ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import gunicorn  # noqa: E402

USER, PASSWORD = "bench", "bench-secret"


def run_wrk(base: str, seconds: int, connections: int, threads: int) -> dict[str, float]:
    env = {**os.environ, "BENCH_AUTH": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "answer_load.lua"),
            base,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = (result["ok"] + result["bad"]) / seconds
    return result


def count_rows(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM events WHERE route='answer'"))
        value = int(count.scalar_one())
    engine.dispose()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        env = {
            "DATABASE_URL": url,
            "SPOOL_PATH": f"{tmp}/spool.jsonl",
            "CALLBACK_USERNAME": USER,
            "CALLBACK_PASSWORD": PASSWORD,
            "SECRET_KEY": "bench",
            "DASHBOARD_PASSWORD": "bench",
        }
        with gunicorn(env, workers=args.workers, app="bench.bare_app:create_app()") as base:
            run_wrk(base, 2, args.connections, args.threads)  # warm-up
            bare = run_wrk(base, args.seconds, args.connections, args.threads)
        with gunicorn(env, workers=args.workers) as base:
            before = count_rows(url) if args.database_url else 0
            run_wrk(base, 2, args.connections, args.threads)  # warm-up (stored too)
            warm_rows = count_rows(url)
            real = run_wrk(base, args.seconds, args.connections, args.threads)
        stored = count_rows(url) - warm_rows
        spooled = Path(f"{tmp}/spool.jsonl")
        spool_lines = len(spooled.read_text().splitlines()) if spooled.exists() else 0
        del before

    lost = max(0, int(real["ok"]) - stored - spool_lines)
    print(
        f"workers={args.workers} connections={args.connections} seconds={args.seconds} "
        f"store={'sqlite' if not args.database_url else args.database_url.split(':')[0]}"
    )
    print(f"{'':12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}{'errors':>8}")
    for name, r in (("bare route", bare), ("app answer", real)):
        print(
            f"{name:12}{r['rps']:>10.0f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
            f"{int(r['bad']):>10}{int(r['errors']):>8}"
        )
    print(f"ratio app/bare: {real['rps'] / bare['rps']:.2f}x  (target >= 0.5x, aim 0.7x)")
    print(
        f"acknowledged: {int(real['ok'])}  stored: {stored}  spooled: {spool_lines}  lost: {lost}"
    )


if __name__ == "__main__":
    main()
