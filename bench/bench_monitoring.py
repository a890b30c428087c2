"""What metrics and alert rules cost a callback: the app with both on against the app with
both off, under gunicorn with the shipped settings (2 workers, SQLite FULL).

Both servers run side by side; alternating wrk rounds of distinct answer callbacks
(answer_load.lua) hit them alike, and medians are compared.  "on" means METRICS_TOKEN set
(every callback counted in the multiprocess files) and ALERT_RULES set (every failure
counted in memory, each worker adding its counts to the store every ALERT_CHECK_SECONDS),
with a rule that never fires; /metrics is scraped once a second meanwhile, as Prometheus
would (more often than its usual 15 s).

    python bench/bench_monitoring.py [--rounds 5] [--seconds 4] [--connections 16]
        [--port-base N]

Target: on / off >= 0.95x in requests per second.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_callbacks import PASSWORD, USER, run_wrk  # noqa: E402
from tests.servers import gunicorn, listening_socket  # noqa: E402

TOKEN = "bench-metrics-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port-base", type=int, default=None, help="ports N, N+1")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:

        def env(name: str, **extra: str) -> dict[str, str]:
            return {
                "DATABASE_URL": f"sqlite:///{tmp}/{name}.db",
                "SPOOL_PATH": f"{tmp}/{name}-spool.jsonl",
                "CALLBACK_USERNAME": USER,
                "CALLBACK_PASSWORD": PASSWORD,
                "SECRET_KEY": "bench",
                "DASHBOARD_PASSWORD": "bench",
                **extra,
            }

        on_env = env(
            "on",
            METRICS_TOKEN=TOKEN,
            ALERT_RULES="handler-error>1000000/1h,busy>1000000/1h",
            ALERT_WEBHOOK_URL="http://127.0.0.1:9/never",
            ALERT_CHECK_SECONDS="5",
        )
        base = args.port_base or 0
        socks = [listening_socket(base + i if base else 0) for i in range(2)]
        results: dict[str, list[float]] = {"off": [], "on": []}
        scraping = threading.Event()
        with gunicorn(env("off"), sock=socks[0]) as off, gunicorn(on_env, sock=socks[1]) as on:

            def scrape() -> None:
                while not scraping.wait(1.0):
                    requests.get(
                        on + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
                    )

            scraper = threading.Thread(target=scrape, daemon=True)
            scraper.start()
            for server in (off, on):
                run_wrk(server, 2, args.connections, args.threads)  # warm-up
            for _ in range(args.rounds):
                for name, server in (("off", off), ("on", on)):
                    result = run_wrk(server, args.seconds, args.connections, args.threads)
                    if result["bad"] or result["errors"]:
                        sys.exit(f"{name}: {result}")
                    results[name].append(result["rps"])
            scraping.set()
            scraper.join()
    for name, rounds in results.items():
        print(
            f"{name:4} {statistics.median(rounds):8.0f} req/s  ({min(rounds):.0f}-{max(rounds):.0f})"
        )
    ratio = statistics.median(results["on"]) / statistics.median(results["off"])
    print(f"ratio on/off (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
