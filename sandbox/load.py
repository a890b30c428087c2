"""``python -m sandbox load``: many answer -> gather -> disconnect calls against a running app.

The sandbox runs in this process (standalone, its own SQLite database, ``--drivers`` drivers
sharing it) and points answerUrl/disconnectUrl at ``--app-url``.  The callee presses
``--digits`` at the first Gather (the demo IVR: ``9`` is not a choice, so it says goodbye and hangs
up).  Printed: calls/s, callback latency percentiles, callback errors, calls that did not
end normally, and events lost: callbacks the app acknowledged (2xx) that are missing from
its store, read back through ``/api/calls/<callId>/events`` (dashboard credentials) or
straight from ``--app-database``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter
from typing import Any

import requests

from sandbox import load_conference
from sandbox.core import Sandbox
from sandbox.load_scenarios import MIXES, Target, mix
from sandbox.standalone import standalone_settings


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def run_load(
    *,
    app_url: str,
    calls: int = 1000,
    concurrency: int = 100,
    drivers: int = 1,
    callback_user: str | None = None,
    callback_password: str | None = None,
    dashboard_user: str | None = None,
    dashboard_password: str | None = None,
    app_database: str | None = None,
    digits: str = "9",
    time_scale: float = 0.001,
    timeout: float = 600.0,
    scenario: str = "ivr",
) -> dict[str, Any]:
    """Run the load and return the figures (also what ``main`` prints)."""
    settings, _ = standalone_settings(
        environ={"BW_PASSWORD": "load"},
        time_scale=time_scale,
        poll_interval=0.02,
        idle_poll=0.05,
        max_calls=concurrency + 8,
        calls_per_second=0,  # the load is the point: no account limits
        concurrent_calls=0,
    )
    sandboxes = [Sandbox(settings) for _ in range(max(1, drivers))]
    for sandbox in sandboxes:
        sandbox.stats.track_calls = True
    target = Target(app_url, callback_user, callback_password, digits)
    scenarios = mix(scenario)
    for each in scenarios:
        each.setup(sandboxes[0], target)
    slots = threading.BoundedSemaphore(concurrency)
    ended: dict[str, threading.Event] = {}
    lock = threading.Lock()

    def on_change(call_id: str, state: str) -> None:
        if state != "disconnected":
            return
        with lock:
            done = ended.get(call_id)
        if done is not None and not done.is_set():
            done.set()
            slots.release()

    for sandbox in sandboxes:
        sandbox.driver.add_listener(on_change)
        sandbox.start_driver()
    call_ids: list[str] = []
    started = time.perf_counter()
    try:
        for number in range(calls):
            kind = scenarios[number % len(scenarios)]
            for _ in range(kind.calls):
                if not slots.acquire(timeout=timeout):
                    raise TimeoutError("no call ended within the timeout")
            sandbox = sandboxes[number % len(sandboxes)]
            with lock:
                placed = kind.place(sandbox, target, number)
                for call_id in placed:
                    ended[call_id] = threading.Event()
            call_ids.extend(placed)
        deadline = time.monotonic() + timeout
        for call_id in call_ids:
            if not ended[call_id].wait(max(0.0, deadline - time.monotonic())):
                break
        elapsed = time.perf_counter() - started
        unfinished = sum(1 for call_id in call_ids if not ended[call_id].is_set())
        causes = Counter(
            (sandboxes[0].call(call_id) or {}).get("disconnectCause") or "none"
            for call_id in call_ids
        )
        conferences = any(each.name == "conference" for each in scenarios)
        extra: dict[str, Any] = {}
        if conferences:
            extra = load_conference.conference_figures(sandboxes[0], settings.account_id)
    finally:
        for sandbox in sandboxes:
            sandbox.close()
    latencies: list[float] = []
    failures = 0
    delivered: dict[str, list[tuple[str, bool]]] = {}
    for sandbox in sandboxes:
        latencies += sandbox.stats.latencies_ms
        failures += sandbox.stats.failures
        for call_id, outcomes in sandbox.stats.by_call.items():
            delivered.setdefault(call_id, []).extend(outcomes)
    acknowledged = {
        call_id: Counter(event for event, ok in outcomes if ok)
        for call_id, outcomes in delivered.items()
    }
    # Transfer B-legs too; "None" holds the conference events that name no call.
    every_leg = sorted((set(call_ids) | set(acknowledged)) - {"None"})
    stored = _stored_events(app_url, every_leg, dashboard_user, dashboard_password, app_database)
    lost = 0
    for call_id in every_leg:
        want = acknowledged.get(call_id, Counter())
        have = stored.get(call_id, Counter())
        lost += sum(max(0, count - have[event]) for event, count in want.items())
    if conferences and app_database:  # and the conferences' own events
        have = load_conference.stored_conference_events(app_database)
        want = acknowledged.get("None", Counter())
        lost += sum(max(0, count - have[event]) for event, count in want.items())
        extra["conference_events_acknowledged"] = sum(want.values())
        extra["conference_events_stored"] = sum(have.values())
    return {
        "scenario": scenario,
        "calls": len(call_ids),
        "concurrency": concurrency,
        "drivers": len(sandboxes),
        "seconds": round(elapsed, 2),
        "calls_per_second": round(len(call_ids) / elapsed, 1) if elapsed else 0.0,
        "callbacks": len(latencies),
        "callback_p50_ms": round(percentile(latencies, 50), 1),
        "callback_p90_ms": round(percentile(latencies, 90), 1),
        "callback_p99_ms": round(percentile(latencies, 99), 1),
        "callback_mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        "callback_errors": failures,
        "unfinished_calls": unfinished,
        "disconnect_causes": dict(causes),
        "events_acknowledged": sum(sum(c.values()) for c in acknowledged.values()),
        "events_stored": sum(sum(stored.get(c, Counter()).values()) for c in every_leg),
        "events_lost": lost,
        **extra,
    }


def _stored_events(
    app_url: str,
    call_ids: list[str],
    user: str | None,
    password: str | None,
    database: str | None,
) -> dict[str, Counter[str]]:
    """eventType counts per call in the app's store (the API, or the database itself)."""
    found: dict[str, Counter[str]] = {}
    if database:
        from sqlalchemy import create_engine, text

        from store.core import normalize_url

        engine = create_engine(normalize_url(database))
        try:
            with engine.connect() as conn:
                for call_id, event_type in conn.execute(
                    text("SELECT call_id, event_type FROM events WHERE call_id IS NOT NULL")
                ):
                    found.setdefault(call_id, Counter())[event_type] += 1
        finally:
            engine.dispose()
        return found
    if not (user and password):
        return found
    with requests.Session() as session:
        session.trust_env = False
        session.auth = (user, password)
        for call_id in call_ids:
            reply = session.get(f"{app_url.rstrip('/')}/api/calls/{call_id}/events", timeout=30)
            reply.raise_for_status()
            counts: Counter[str] = Counter()
            for item in reply.json().get("events", []):
                counts[item.get("eventType")] += 1
            found[call_id] = counts
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-url", required=True, help="the app's base URL")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--drivers", type=int, default=1, help="drivers sharing the database")
    parser.add_argument("--callback-user", help="Basic credentials sent with callbacks")
    parser.add_argument("--callback-password")
    parser.add_argument("--dashboard-user", help="to read the app's /api/calls/<id>/events")
    parser.add_argument("--dashboard-password")
    parser.add_argument("--app-database", help="or read the app's store database directly")
    parser.add_argument("--digits", default="9", help="what the callee presses at the Gather")
    parser.add_argument("--time-scale", type=float, default=0.001)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--scenario",
        choices=sorted(MIXES),
        default="ivr",
        help="ivr: outbound answer/gather calls; mixed: inbound IVR, recorded, outbound",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def main(args: argparse.Namespace) -> int:
    figures = run_load(
        app_url=args.app_url,
        calls=args.calls,
        concurrency=args.concurrency,
        drivers=args.drivers,
        callback_user=args.callback_user,
        callback_password=args.callback_password,
        dashboard_user=args.dashboard_user,
        dashboard_password=args.dashboard_password,
        app_database=args.app_database,
        digits=args.digits,
        time_scale=args.time_scale,
        timeout=args.timeout,
        scenario=args.scenario,
    )
    print_figures(figures, as_json=args.json)
    failed = figures["callback_errors"] or figures["events_lost"] or figures["unfinished_calls"]
    return 1 if failed else 0


def print_figures(figures: dict[str, Any], *, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"scenario {figures['scenario']}: {figures['calls']} calls, concurrency {figures['concurrency']}, "
        f"{figures['drivers']} driver(s): {figures['seconds']} s, "
        f"{figures['calls_per_second']} calls/s"
    )
    print(
        f"callbacks: {figures['callbacks']}, latency p50 {figures['callback_p50_ms']} ms, "
        f"p90 {figures['callback_p90_ms']} ms, p99 {figures['callback_p99_ms']} ms"
    )
    print(
        f"callback errors: {figures['callback_errors']}, unfinished calls: "
        f"{figures['unfinished_calls']}, disconnect causes: {figures['disconnect_causes']}"
    )
    print(
        f"events acknowledged: {figures['events_acknowledged']}, stored: "
        f"{figures['events_stored']}, lost: {figures['events_lost']}"
    )
    if "conferences" in figures:
        print(
            f"conferences: {figures['conferences']}, with all three members: "
            f"{figures['three_party_conferences']}, completed: "
            f"{figures['completed_conferences']}; their own events (naming no call) "
            f"acknowledged: {figures.get('conference_events_acknowledged', '-')}, stored: "
            f"{figures.get('conference_events_stored', '-')}"
        )
