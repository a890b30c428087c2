"""How fast the call-flow testing kit runs a scripted call of the demo IVR.

100 calls through the kit (``sandbox.kit.voice_kit``, what the ``voice_call`` fixture
yields), each: dial in (``initiate``), hear the menu, press 2 (``gather``), hear the order
prompt, press 1234 (``gather``), hear the transfer announced, the agent's leg answers
(``transferAnswer``), the caller hangs up (``transferDisconnect``, ``disconnect``).  Every
callback goes through the app's whole WSGI stack (the kit hands it over in process) and is
stored in its SQLite store, at the kit's settings.  Reported: wall time, this process's CPU
time (what the machine's load does not change) and the load average.

Baseline, in the same run and the same app: the same call as tests scripted it before the
kit, on the real clock at the tests' time scale (``SANDBOX_TIME_SCALE=0.01``), the caller
scripted with ``gatherDigits`` and ``hangupAfter`` and the test waiting for the disconnect.

    python bench/bench_kit.py [--calls 100] [--baseline-calls 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.kit import ScriptedCall, VoiceKit, voice_kit  # noqa: E402

IVR_NUMBER = "+12025550199"
SUPPORT = "+12025550143"


def one_kit_call(kit: VoiceKit, caller: str) -> ScriptedCall:
    call = kit.dial(IVR_NUMBER, from_=caller)
    call.expect_heard("For support, press 2")
    call.press("2")
    call.expect_heard("4 digit order number")
    call.press("1234")
    call.expect_heard("Connecting you to support")
    agent = call.expect_transfer_to(SUPPORT)
    agent.expect_heard("A caller from the demo IVR")
    call.hang_up()
    assert call.disconnect_cause == "hangup", call.transcript
    return call


def kit_run(calls: int) -> tuple[float, float, list[float]]:
    """(wall seconds for ``calls`` calls, this process's CPU seconds for them, seconds per
    call) in one kit."""
    with voice_kit({"VOICE_FLOWS": "examples.ivr"}) as kit:
        one_kit_call(kit, "+12025559000")  # warm-up: imports, the store's schema
        per_call = []
        started = time.perf_counter()
        cpu = time.process_time()
        for number in range(calls):
            began = time.perf_counter()
            call = one_kit_call(kit, f"+1202555{1000 + number:04d}")
            per_call.append(time.perf_counter() - began)
            events = [c.event_type for c in call.callbacks]
            assert events == [
                "initiate",
                "gather",
                "gather",
                "transferAnswer",
                "transferDisconnect",
                "disconnect",
            ], events
        return time.perf_counter() - started, time.process_time() - cpu, per_call


def baseline_run(calls: int) -> list[float]:
    """Seconds per call, scripted and waited for on the real clock at time scale 0.01."""
    from app import create_app
    from sandbox.kit.server import serving

    with tempfile.TemporaryDirectory(prefix="bench-kit-") as folder:
        config = {"VOICE_FLOWS": "examples.ivr", "SANDBOX_TIME_SCALE": 0.01}

        def real_clock_app(settings: dict) -> object:
            return create_app({**settings, "SANDBOX_CLOCK": "real"})

        # The kit's server and settings, the real clock instead of the manual one.
        with serving(Path(folder), config, real_clock_app) as (app, _base):  # type: ignore[arg-type]
            sandbox = app.extensions["sandbox"]
            api_url = _base + "/sandbox/api/v2"
            per_call = []
            for number in range(calls + 1):
                caller = f"+1202556{1000 + number:04d}"
                sandbox.script(caller, {"gatherDigits": ["2", "1234"], "hangupAfter": 6})
                began = time.perf_counter()
                created = sandbox.dial_in({"to": IVR_NUMBER, "from": caller}, api_url)
                ended = sandbox.wait_for(created["callId"], "disconnected", timeout=30)
                assert ended["disconnectCause"] == "hangup", ended["log"]
                if number:  # the first one warms up
                    per_call.append(time.perf_counter() - began)
            return per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--baseline-calls", type=int, default=20)
    args = parser.parse_args()
    wall, cpu, per_call = kit_run(args.calls)
    baseline = baseline_run(args.baseline_calls)
    kit_median = statistics.median(per_call)
    base_median = statistics.median(baseline)
    print(f"kit: {args.calls} scripted IVR calls in {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(
        f"  per call: median {kit_median * 1000:.0f} ms, "
        f"p90 {statistics.quantiles(per_call, n=10)[-1] * 1000:.0f} ms, "
        f"max {max(per_call) * 1000:.0f} ms"
    )
    print(
        f"baseline (real clock, SANDBOX_TIME_SCALE=0.01, {args.baseline_calls} calls): "
        f"median {base_median * 1000:.0f} ms per call"
    )
    print(f"kit / baseline per call: {kit_median / base_median:.2f}")
    print(f"target 100 calls < 10 s: {'met' if wall * 100 / args.calls < 10 else 'NOT met'}")
    print(f"load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
