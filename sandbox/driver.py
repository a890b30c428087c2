"""The driver: claims calls with a lease and runs each one in a ``CallRunner`` thread.

How the lease works:

- A call row is claimable while it is active, is an A-leg, and has no owner or an expired
  lease (``lease_expires < now``).  Claiming is one conditional UPDATE; the driver whose
  UPDATE changed the row owns the call (one winner, on SQLite and on PostgreSQL).
- The owner renews all its leases every ``lease_seconds / 3`` (one UPDATE) and every save
  renews that call's lease.  Every save is conditional on the owner, so a driver that lost
  a call (it stalled past its lease and another took over) stops before its next callback.
- A runner saves its position before every verb; a driver that takes over an expired
  lease resumes the call there.  A clean stop saves and releases the leases at once.

Inputs: digits, hang-ups and API updates are rows in ``sandbox_inputs``.  A busy driver reads
the new ones every ``poll_interval`` (one indexed query) and hands them to its runners; an
idle driver only looks for claimable calls, every ``idle_poll`` seconds, or at once when
this process created a call (``notify``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.call import Call
from sandbox.clock import ManualClock
from sandbox.db import SandboxDB
from sandbox.delivery import Deliverer, Delivery
from sandbox.payloads import Leg
from sandbox.runner import CallRunner
from sandbox.settings import Settings
from sandbox.stale import end_stale_calls

log = logging.getLogger(__name__)

# Inputs may commit out of id order (PostgreSQL sequences): ids are re-read for this long.
INPUT_WINDOW_SECONDS = 2.0
PURGE_EVERY_SECONDS = 3600.0
STALE_CHECK_SECONDS = 60.0


class Driver:
    def __init__(
        self,
        settings: Settings,
        db: SandboxDB,
        deliverer: Deliverer,
        clock: ManualClock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db
        self.deliverer = deliverer
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.runners: dict[str, CallRunner] = {}
        self.legs: dict[str, Call] = {}  # any leg id (A or B) -> its runner
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str, str], None]] = []
        self._callback_listeners: list[Callable[[str, dict[str, Any], Delivery], None]] = []
        self.dispatched_through = 0  # every input up to this id is in its runner's inbox
        self._handed: set[int] = set()  # inputs after that one handed over directly
        self._input_after = 0
        self._recent_inputs: collections.deque[tuple[float, int]] = collections.deque()
        self._dispatched: dict[int, float] = {}
        self._renewed_at: dict[str, float] = {}
        self._next_purge = 0.0
        self._next_dead_check = 0.0
        self._next_stale_check = 0.0
        db.resume_seconds = settings.resume_seconds

    # --- life -------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stopping = False
            try:
                self._input_after = self.db.max_input_id()
            except Exception:
                log.warning("sandbox driver: database not ready yet", exc_info=True)
            self._thread = threading.Thread(
                target=self._loop, name=f"sandbox-driver-{self.owner}", daemon=True
            )
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopping

    def notify(self) -> None:
        """Look for work now (a call was created, or an input stored, in this process)."""
        self._wake.set()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop cleanly: runners save where they are and release their leases."""
        self._halt("release", timeout)

    def abandon(self, *, timeout: float = 10.0) -> None:
        """Stop as if the process died: nothing is saved or released (for tests)."""
        self._halt("abandon", timeout)

    def _halt(self, mode: str, timeout: float) -> None:
        with self._lock:
            self._stopping = True
            runners = list(self.runners.values())
            thread, self._thread = self._thread, None
        for runner in runners:
            runner.stop(mode)
        self._wake.set()
        deadline = time.monotonic() + timeout
        for runner in runners:
            if runner.thread is not None:
                runner.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [r.call_id for r in runners if r.thread is not None and r.thread.is_alive()]
        if mode == "release" and stuck:
            # Runners still inside a callback cannot save; give their leases back anyway (a
            # runner that wakes up later finds its lease gone and stops), so another driver
            # resumes them at once instead of after SANDBOX_LEASE_SECONDS.
            try:
                self.db.release(self.owner, stuck)
            except Exception:
                log.warning("sandbox driver: could not release %s", stuck, exc_info=True)
        if thread is not None:
            thread.join(max(0.1, deadline - time.monotonic()))

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(call_id, state)`` on every state change a runner here makes."""
        self._listeners.append(listener)

    def add_callback_listener(
        self, listener: Callable[[str, dict[str, Any], Delivery], None]
    ) -> None:
        """Call ``listener(a_leg_id, payload, delivery)`` after every callback sent here."""
        self._callback_listeners.append(listener)

    def delivered(self, runner: Call, payload: dict[str, Any], result: Delivery) -> None:
        for listener in list(self._callback_listeners):
            try:
                listener(runner.call_id, payload, result)
            except Exception:
                log.exception("sandbox callback listener failed")

    def _working(self) -> contextlib.AbstractContextManager[None]:
        """With the manual clock: claiming or dispatching keeps the calls unsettled."""
        return self.clock.busy() if self.clock is not None else contextlib.nullcontext()

    def changed(self, call_id: str, state: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(call_id, state)
            except Exception:
                log.exception("sandbox listener failed")

    # --- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        next_claim = 0.0
        next_renew = 0.0
        settings = self.settings
        while not self._stopping:
            woken = self._wake.is_set()
            self._wake.clear()
            now = time.time()
            busy = bool(self.runners)
            try:
                if busy and now >= next_renew:
                    self._renew(now)
                    next_renew = now + settings.lease_seconds / 3
                if busy:
                    with self._working():
                        self._dispatch_inputs(now)
                if (woken or now >= next_claim) and len(self.runners) < settings.max_calls:
                    with self._working():
                        claimed_all = self._claim(now)
                    # New calls of this process wake the loop (notify); others' calls and
                    # expired leases are found by this slower poll, busy or idle.
                    next_claim = now + settings.idle_poll
                    if not claimed_all:
                        next_claim = now
                if now >= self._next_dead_check:
                    self._next_dead_check = now + settings.idle_poll
                    if self._release_dead_owners(now):
                        next_claim = now
                if now >= self._next_stale_check:  # at start, then now and then
                    self._next_stale_check = now + STALE_CHECK_SECONDS
                    end_stale_calls(self.db, now, settings.resume_seconds)
                if now >= self._next_purge:
                    self._next_purge = now + PURGE_EVERY_SECONDS
                    self.db.purge(now - settings.keep_days * 86400)
            except Exception:
                log.warning("sandbox driver: database error; retrying", exc_info=True)
                self._wake.wait(min(1.0, settings.idle_poll))
                continue
            pause = settings.poll_interval if self.runners else settings.idle_poll
            self._wake.wait(max(0.0, min(pause, next_claim - time.time())))

    def _release_dead_owners(self, now: float) -> bool:
        """Leases held by a driver of a process on this host that is gone (a reloaded
        ``flask run``, a killed worker) are released now, not when they expire."""
        released = 0
        for owner in self.db.lease_owners(f"{self.host}:", now):
            try:
                pid = int(owner.split(":")[-2])
            except (IndexError, ValueError):
                continue
            if owner != self.owner and not _process_alive(pid):
                released += self.db.release_owner(owner)
                log.info("sandbox driver: released the calls of %s (its process is gone)", owner)
        return released > 0

    def _claim(self, now: float) -> bool:
        """Claim what is claimable; False when there may be more than we took."""
        free = self.settings.max_calls - len(self.runners)
        limit = min(free, 64)
        ids = self.db.claimable(now, limit)
        for call_id in ids:
            if call_id in self.runners:
                continue
            row = self.db.claim(call_id, self.owner, now, self.settings.lease_seconds)
            if row is None:
                continue  # another driver won it
            runner = CallRunner(self, row)
            with self._lock:
                if self._stopping:
                    self.db.release(self.owner, [call_id])
                    return True
                self.runners[call_id] = runner
                self.legs[call_id] = runner
                self._renewed_at[call_id] = time.time()
            if self.clock is not None:
                self.clock.register(runner)
            runner.start()
        return len(ids) < limit

    def _renew(self, now: float) -> None:
        ids = list(self.runners)
        held = self.db.renew(self.owner, ids, now, self.settings.lease_seconds)
        for call_id in ids:
            runner = self.runners.get(call_id)
            if runner is None:
                continue
            if call_id in held:
                self._renewed_at[call_id] = now
            elif runner.thread is not None and runner.thread.is_alive():
                runner.lose()

    def ensure_lease(self, runner: Call) -> None:
        """Before a callback: make sure the lease is fresh, else the runner stops."""
        renewed = self._renewed_at.get(runner.call_id, 0.0)
        if time.time() - renewed > self.settings.lease_seconds / 2:
            runner.save(runner.activity)

    def hand_over(self, row: dict[str, Any]) -> None:
        """Give an input stored by this process to its call at once (the manual clock)."""
        runner = self.legs.get(row["call_id"])
        if runner is not None:
            runner.deliver_input(row)
        with self._lock:
            self._handed.add(int(row["id"]))

    def undelivered(self, newest: int) -> bool:
        """Whether some input up to id ``newest`` is in no runner's inbox yet."""
        with self._lock:
            through = self.dispatched_through
            self._handed = {i for i in self._handed if i > through}
            return any(i not in self._handed for i in range(through + 1, newest + 1))

    def _dispatch_inputs(self, now: float) -> None:
        window_start = self._input_after
        while self._recent_inputs and self._recent_inputs[0][0] < now - INPUT_WINDOW_SECONDS:
            self._recent_inputs.popleft()
        if not self.db.is_sqlite and self._recent_inputs:
            window_start = min(window_start, self._recent_inputs[0][1] - 1)
        rows = self.db.inputs_after(window_start)
        for row in rows:
            self._input_after = max(self._input_after, row["id"])
            if row["id"] in self._dispatched:
                continue
            self._dispatched[row["id"]] = now
            self._recent_inputs.append((now, row["id"]))
            runner = self.legs.get(row["call_id"])
            if runner is not None:
                runner.deliver_input(row)
        self.dispatched_through = self._input_after
        if len(self._dispatched) > 10_000:
            cutoff = now - INPUT_WINDOW_SECONDS * 2
            self._dispatched = {k: v for k, v in self._dispatched.items() if v >= cutoff}

    # --- what runners call ------------------------------------------------------------

    def save(self, runner: Call) -> bool:
        ok = self.db.save(
            runner.call_id, self.owner, runner.row_values(), self.settings.lease_seconds
        )
        if ok:
            self._renewed_at[runner.call_id] = time.time()
        return ok

    def add_leg(self, runner: Call, leg: Leg, request: dict[str, Any]) -> None:
        now = time.time()
        self.db.insert_call(
            {
                "call_id": leg.call_id,
                "account_id": leg.account_id,
                "parent_call_id": leg.parent_call_id,
                "created_at": now,
                "updated_at": now,
                "state": leg.state,
                "active": 1,
                "to_number": leg.to,
                "from_number": leg.from_,
                "request": request,
                "leg": leg.to_dict(),
                "activity": "ringing",
                "log": [[round(now, 3), f"B-leg of {leg.parent_call_id}"]],
                "program": None,
                "input_seen": 0,
            }
        )
        self.legs[leg.call_id] = runner
        self.changed(leg.call_id, leg.state)

    def save_leg(self, leg: Leg) -> None:
        self.db.save_legs(
            self.owner,
            self.settings.lease_seconds,
            [
                (
                    leg.call_id,
                    {"state": leg.state, "leg": leg.to_dict(), "activity": leg.state},
                    False,
                )
            ],
        )
        self.changed(leg.call_id, leg.state)

    def finish_leg(self, leg: Leg, fields: dict[str, Any]) -> None:
        self.db.finish(
            [leg.call_id],
            self.owner,
            {
                leg.call_id: {
                    "state": "disconnected",
                    "leg": leg.to_dict(),
                    "activity": "ended",
                    "disconnect_cause": fields.get("cause"),
                    "error_message": fields.get("errorMessage"),
                    "error_id": fields.get("errorId"),
                }
            },
        )
        self.legs.pop(leg.call_id, None)
        self.changed(leg.call_id, "disconnected")

    def finish(self, runner: Call, program: dict[str, Any]) -> None:
        values = runner.row_values()
        values.update(
            state="disconnected",
            disconnect_cause=program.get("cause"),
            error_message=program.get("errorMessage"),
            error_id=program.get("errorId"),
        )
        self.db.finish([runner.call_id], self.owner, {runner.call_id: values})
        self.changed(runner.call_id, "disconnected")

    def runner_done(self, runner: Call) -> None:
        with self._lock:
            if self.runners.get(runner.call_id) is runner:
                del self.runners[runner.call_id]
            for leg_id in [k for k, v in self.legs.items() if v is runner]:
                del self.legs[leg_id]
            self._renewed_at.pop(runner.call_id, None)
        if self.clock is not None:
            self.clock.unregister(runner)
        self._wake.set()  # room for another call


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by another user
        return True
    return True
