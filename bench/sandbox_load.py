"""Sandbox load benchmark: the app under gunicorn, driven by ``python -m sandbox load``.

    python bench/sandbox_load.py [--calls 1000] [--concurrency 100] [--workers 2]
                                 [--scenario ivr mixed] [--json]

Starts gunicorn with gunicorn.conf.py and a temporary SQLite database (PUBLIC_BASE_URL set
to it, so the flows' callback URLs come back to it; the demo IVR and the voicemail flow
loaded), then runs each scenario from an in-process standalone sandbox: ``ivr`` (answer ->
gather -> disconnect, the baseline) and ``mixed`` (an inbound IVR call with a transfer, a
three-party conference, a recorded and transcribed call, and the ``ivr`` call, in turn;
``conference`` runs the conference alone).  For each it prints calls/s,
callback latency percentiles, callback errors and events lost (read back from the app's
store), and the mixed scenario's figures as ratios of the baseline's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.load import print_figures, run_load  # noqa: E402
from tests.servers import gunicorn, listening_socket, port_of  # noqa: E402

CALLBACK_USER = "bandwidth"
CALLBACK_PASSWORD = "bench-callback-secret"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--drivers", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--time-scale", type=float, default=0.001)
    parser.add_argument(
        "--scenario", nargs="+", default=["ivr", "mixed"], choices=["ivr", "conference", "mixed"]
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-load-") as tmp:
        sock = listening_socket()
        base = f"http://127.0.0.1:{port_of(sock)}"
        database = f"sqlite:///{Path(tmp) / 'events.db'}"
        env = {
            "DATABASE_URL": database,
            "SPOOL_PATH": str(Path(tmp) / "spool.jsonl"),
            "CALLBACK_USERNAME": CALLBACK_USER,
            "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
            "SECRET_KEY": "sandbox-load-bench",
            "DASHBOARD_PASSWORD": "bench-dashboard",
            "PUBLIC_BASE_URL": base,
            "VOICE_FLOWS": "examples.ivr,examples.voicemail,examples.conference",
        }
        results = []
        with gunicorn(env, workers=args.workers, sock=sock):
            for scenario in args.scenario:
                results.append(
                    run_load(
                        app_url=base,
                        calls=args.calls,
                        concurrency=args.concurrency,
                        drivers=args.drivers,
                        callback_user=CALLBACK_USER,
                        callback_password=CALLBACK_PASSWORD,
                        app_database=database,
                        time_scale=args.time_scale,
                        scenario=scenario,
                    )
                )
    print(f"app: gunicorn.conf.py, {args.workers} workers, SQLite (WAL), {os.cpu_count()} CPUs")
    failed = False
    for figures in results:
        print_figures(figures, as_json=args.json)
        failed = failed or bool(
            figures["callback_errors"] or figures["events_lost"] or figures["unfinished_calls"]
        )
    if len(results) > 1 and not args.json:
        base_figures, *others = results
        for figures in others:
            ratios = ", ".join(
                f"{key} x{figures[key] / base_figures[key]:.2f}"
                for key in ("calls_per_second", "callback_p50_ms", "callback_p99_ms")
                if base_figures[key]
            )
            print(f"{figures['scenario']} vs {base_figures['scenario']}: {ratios}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
