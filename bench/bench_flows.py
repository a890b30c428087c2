"""What the flow model costs per callback: routing and keeping the flow in the reply's tags.

In one process, alternating rounds: the demo IVR's ``answer`` and ``gather`` handlers called
directly (handler, reply check, render: what a hand-written dispatcher does) against the
same callbacks answered through the app's flows (verified tag state, routing, the handler,
the reply check, the flow kept in every tag, render), as ``callbacks.routing`` does on
every callback.  Reported: microseconds per callback and the ratio.

    python bench/bench_flows.py [--rounds 7] [--n 2000]

The route itself (auth, payload, store) costs about 1 ms per callback at the shipped
settings (bench_callbacks.py), so the difference here is what the flow model adds to it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bxml  # noqa: E402
from app import create_app  # noqa: E402
from callbacks.routing import attach_state  # noqa: E402
from callbacks.testing import make_event  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-flows-")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "DATABASE_URL": f"sqlite:///{folder}/events.db",
            "SPOOL_PATH": f"{folder}/spool.jsonl",
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        }
    )
    registry = app.extensions["flows"]
    flow = registry.flows["demo-ivr"]
    with app.test_request_context():
        answer = make_event("answer", secret="bench")
        gather = make_event(
            "gather", secret="bench", digits="2", state={"step": "department"}, flow="demo-ivr"
        )
        events = [answer, gather]

        def direct() -> None:
            for event in events:
                document = flow.handler_for(event.event_type)(event)
                bxml.check_reply(document, event.event_type)
                document.to_bxml()

        def through_flows() -> None:
            for event in events:
                attach_state(event, "bench")
                registry.document_for(event).to_bxml()

        timings: dict[str, list[float]] = {"direct": [], "flows": []}
        for _ in range(args.rounds):
            for name, run in (("direct", direct), ("flows", through_flows)):
                started = time.process_time()
                for _ in range(args.n):
                    run()
                per_callback = (time.process_time() - started) / (args.n * len(events))
                timings[name].append(per_callback * 1e6)
    direct_us = statistics.median(timings["direct"])
    flows_us = statistics.median(timings["flows"])
    print(f"handler called directly  {direct_us:7.1f} us per callback (median of {args.rounds})")
    print(f"through the app's flows  {flows_us:7.1f} us per callback")
    print(f"ratio flows/direct: {flows_us / direct_us:.2f}x; added {flows_us - direct_us:.1f} us")


if __name__ == "__main__":
    main()
