"""Callback throughput: the real app's answer route against a bare Flask route, one run.

Starts gunicorn on 127.0.0.1 twice with the same shipped settings (gunicorn.conf.py):
once serving the real app (auth, parse, dedupe, store, handler, render) and once a bare
Flask route returning a constant BXML string; drives both with the same bounded wrk load of
distinct answer callbacks; then counts the stored rows to find lost events.

    apt-get install wrk
    python bench/bench_callbacks.py [--rounds 5] [--seconds 4] [--connections 16] [--database-url URL]

Target: the app holds >= 0.5x the bare route's requests/s (aim 0.7x) with zero errors and
zero lost events.  Prints requests/s, p50/p99 latency and the ratio.

One worker by default: wrk keeps its connections open, and gunicorn's first worker to
accept takes them all (measured: one worker at 102% CPU, the other at 1%, for both
servers), so with two workers a run measured whichever split the accept race gave.  One
worker measures the per-worker cost the ratio is about; --workers 2 is still there.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import gunicorn  # noqa: E402

USER, PASSWORD = "bench", "bench-secret"


def start_wrk(
    base: str, seconds: int, connections: int, threads: int, prefix: str = ""
) -> subprocess.Popen[str]:
    """Start wrk with answer_load.lua against ``base``; ``prefix`` marks its callIds."""
    env = {
        **os.environ,
        "BENCH_AUTH": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "BENCH_PREFIX": prefix,
    }
    return subprocess.Popen(
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
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wrk_result(process: subprocess.Popen[str], seconds: int) -> dict[str, float]:
    """Wait for wrk; its RESULT line (ok, bad, p50_ms, p99_ms, errors) plus rps."""
    out, err = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        sys.exit(f"wrk failed: {err}")
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT ") :])
    result["rps"] = (result["ok"] + result["bad"]) / seconds
    return result


def run_wrk(base: str, seconds: int, connections: int, threads: int) -> dict[str, float]:
    return wrk_result(start_wrk(base, seconds, connections, threads), seconds)


def count_rows(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM events WHERE route='answer'"))
        value = int(count.scalar_one())
    engine.dispose()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
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
        results: dict[str, list[dict[str, float]]] = {"bare route": [], "app answer": []}
        with (
            gunicorn(env, workers=args.workers, app="bench.bare_app:create_app()") as bare,
            gunicorn(env, workers=args.workers) as real,
        ):
            bases = {"bare route": bare, "app answer": real}
            for base in bases.values():
                run_wrk(base, 2, args.connections, args.threads)  # warm-up
            warm_rows = count_rows(url)
            # Rounds alternate between the two servers, so a noisy neighbour on this shared
            # machine hits both alike; medians are compared.
            for _ in range(args.rounds):
                for name, base in bases.items():
                    results[name].append(
                        run_wrk(base, args.seconds, args.connections, args.threads)
                    )
        stored = count_rows(url) - warm_rows
        spooled = Path(f"{tmp}/spool.jsonl")
        spool_lines = len(spooled.read_text().splitlines()) if spooled.exists() else 0

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    acked = int(sum(r["ok"] for r in results["app answer"]))
    lost = max(0, acked - stored - spool_lines)
    store_name = "sqlite" if not args.database_url else args.database_url.split(":")[0]
    print(
        f"workers={args.workers} connections={args.connections} "
        f"rounds={args.rounds}x{args.seconds}s store={store_name}"
    )
    print(
        f"{'':12}{'req/s':>10}{'(min-max)':>14}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'errors':>8}"
    )
    for name, rounds in results.items():
        rps = [r["rps"] for r in rounds]
        print(
            f"{name:12}{median(name, 'rps'):>10.0f}{f'({min(rps):.0f}-{max(rps):.0f})':>14}"
            f"{median(name, 'p50_ms'):>9.1f}{median(name, 'p99_ms'):>9.1f}"
            f"{int(sum(r['bad'] for r in rounds)):>9}{int(sum(r['errors'] for r in rounds)):>8}"
        )
    ratio = median("app answer", "rps") / median("bare route", "rps")
    print(f"ratio app/bare (medians): {ratio:.2f}x  (target >= 0.5x, aim 0.7x)")
    print(f"acknowledged: {acked}  stored: {stored}  spooled: {spool_lines}  lost: {lost}")


if __name__ == "__main__":
    main()
