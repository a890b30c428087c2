#!/usr/bin/env python3
"""Validate + serialize one Create Call request: calls.schemas vs bandwidth-sdk 23.3.1.

Both sides take the same request with every optional field set (machineDetection
included) and produce the JSON text to send:

- ours: ``to_json(create_call_payload(**kwargs))``, the exact path ``VoiceClient.create_call``
  takes (kwargs -> marshmallow validation -> camelCase dict -> compact JSON);
- SDK:  ``CreateCall(..., machine_detection=MachineDetectionConfiguration(...)).to_json()``.

Both outputs are checked equal (as JSON) first.  The runs are interleaved in one process, so
machine noise hits both alike; reported: best and median microseconds per request and the
ours/SDK ratios, then inputs the SDK accepts and the schema rejects.

Target: at most 10x the SDK's time (best ratio <= 10x).  The schema checks far more than
the SDK (which checks ranges and lengths only) through one path, marshmallow's own: a hand
written fast path beside it saved 18-49 us on a request that then waits ~100 ms for an
HTTPS round trip, and was removed.  The exit status is 0 when it is met, 1 otherwise.

    python bench/bench_create_call.py [--n 5000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from bandwidth.models.create_call import CreateCall
from bandwidth.models.machine_detection_configuration import (
    MachineDetectionConfiguration,
)
from marshmallow import ValidationError

from calls.schemas import create_call_payload, to_json

MACHINE_DETECTION: dict[str, Any] = {
    "mode": "async",
    "detection_timeout": 15,
    "silence_timeout": 10,
    "speech_threshold": 10,
    "speech_end_threshold": 5,
    "machine_speech_end_threshold": 5,
    "delay_result": True,
    "callback_url": "https://cb.example.com/callbacks/amd",
    "callback_method": "POST",
    "username": "amd-user",
    "password": "amd-secret",
    "fallback_url": "https://cb.example.com/callbacks/amd-fallback",
    "fallback_method": "POST",
    "fallback_username": "amd-fb-user",
    "fallback_password": "amd-fb-secret",
}
REQUEST: dict[str, Any] = {
    "to": "+12025550123",
    "from_": "+12025550199",
    "privacy": False,
    "display_name": "Support",
    "uui": "eyJhbGciOiJIUzI1NiJ9.WyJoaSJd.-znkjYyCkgz4djmHUPSXl9YrJ6Nix_XvmlwKGFh5ERM;encoding=jwt,"
    "aGVsbG8gd29ybGQ;encoding=base64",
    "application_id": "04e88489-df02-4e34-a0ee-27a91849555f",
    "answer_url": "https://cb.example.com/callbacks/answer",
    "answer_method": "POST",
    "username": "cb-user",
    "password": "cb-secret",
    "answer_fallback_url": "https://cb.example.com/callbacks/answer-fallback",
    "answer_fallback_method": "GET",
    "fallback_username": "fb-user",
    "fallback_password": "fb-secret",
    "disconnect_url": "https://cb.example.com/callbacks/disconnect",
    "disconnect_method": "POST",
    "call_timeout": 30.5,
    "callback_timeout": 15,
    "priority": 2,
    "tag": '{"order": 7}',
}


def ours(request: dict[str, Any] = REQUEST) -> str:
    return to_json(create_call_payload(**request, machine_detection=MACHINE_DETECTION))


def sdk(request: dict[str, Any] = REQUEST) -> str:
    fields = dict(request)
    fields["var_from"] = fields.pop("from_")
    detection = MachineDetectionConfiguration(**MACHINE_DETECTION)
    return str(CreateCall(**fields, machine_detection=detection).to_json())


# Inputs bandwidth-sdk 23.3.1 serializes without complaint and calls.schemas rejects.
SDK_MISSES: dict[str, dict[str, Any]] = {
    "to not E.164 or SIP": {"to": "scooby-doo"},
    "to with a trailing newline": {"to": "+12025550123\n"},
    "from not E.164": {"from_": "2025550199"},
    "displayName 'Bob' with privacy": {"privacy": True, "display_name": "Bob"},
    "displayName with a newline": {"display_name": "Sup\nport"},
    "uui without ;encoding=": {"uui": "aGVsbG8"},
    "uui over 350 characters": {"uui": "ab" * 200 + ";encoding=hex"},
    "answerUrl not http(s)": {"answer_url": "ftp://cb.example.com/answer"},
    "credentials over plain http": {"answer_url": "http://cb.example.com/answer"},
    "credentials inside the URL": {"disconnect_url": "https://u:p@cb.example.com/d"},
}


def sdk_accepts(overrides: dict[str, Any]) -> bool:
    try:
        sdk({**REQUEST, **overrides})
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False
    return True


def ours_rejects(overrides: dict[str, Any]) -> bool:
    try:
        ours({**REQUEST, **overrides})
    except ValidationError:
        return True
    return False


def time_per_request(build: Callable[[], str], n: int) -> float:
    """Mean CPU microseconds per request over ``n`` requests.

    CPU time of this process, not wall time: on a shared machine a run that gets preempted
    would otherwise count other programs' work against whichever side was running.
    """
    gc.collect()
    start = time.process_time()
    for _ in range(n):
        build()
    return (time.process_time() - start) / n * 1e6


IMPLEMENTATIONS: list[tuple[str, str, Callable[[], str]]] = [
    ("calls.schemas (this project)", "marshmallow", ours),
    ("bandwidth-sdk CreateCall", "bandwidth-sdk", sdk),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000, help="requests per run")
    parser.add_argument("--repeats", type=int, default=7, help="runs per implementation")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()} / {platform.platform()}")
    print(f"{args.n} requests per run, {args.repeats} runs; CPU microseconds per request\n")

    if json.loads(ours()) != json.loads(sdk()):
        print("the two implementations do not produce the same JSON")
        return 2
    for _, _, build in IMPLEMENTATIONS:  # warm every code path
        time_per_request(build, max(1, args.n // 10))
    # Interleave the runs so that machine noise hits both implementations alike.
    runs: dict[str, list[float]] = {label: [] for label, _, _ in IMPLEMENTATIONS}
    for _ in range(args.repeats):
        for label, _, build in IMPLEMENTATIONS:
            runs[label].append(time_per_request(build, args.n))

    header = f"{'implementation':30s} {'version':>8s} {'best':>8s} {'median':>8s} {'bytes':>6s}"
    print(header)
    print("-" * len(header))
    for label, dist, build in IMPLEMENTATIONS:
        times = runs[label]
        print(
            f"{label:30s} {version(dist):>8s} "
            f"{min(times):8.1f} {statistics.median(times):8.1f} {len(build()):6d}"
        )
    mine, theirs = (runs[label] for label, _, _ in IMPLEMENTATIONS)
    best = min(mine) / min(theirs)
    median = statistics.median(mine) / statistics.median(theirs)
    print(f"\nours vs bandwidth-sdk: {best:.2f}x best, {median:.2f}x median (target <= 10x)")

    print("\nAccepted by bandwidth-sdk, rejected by calls.schemas:")
    for label, overrides in SDK_MISSES.items():
        sdk_result = "accepts" if sdk_accepts(overrides) else "rejects"
        our_result = "rejects" if ours_rejects(overrides) else "ACCEPTS"
        print(f"  {label:32s} sdk {sdk_result:8s} ours {our_result}")

    met = best <= 10.0
    print("\ntarget met" if met else "\nTARGET NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
