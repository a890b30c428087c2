"""The manual clock (``SANDBOX_CLOCK=manual``): simulated time that passes only when a test
advances it.

With the real clock a call's waits (a prompt playing, a Gather's timeout, a phone ringing)
take ``SANDBOX_TIME_SCALE`` times their length in real time.  With the manual clock they
take no real time at all: a waiting call *parks* here until its input arrives or the clock
is advanced past its deadline.  ``advance`` moves time forward one deadline at a time and
lets the woken calls run (their callbacks, their next verbs) before moving on, so events
happen in the order their simulated times say, however slow the machine.

``settled`` tells when every call this process runs is parked: nothing will happen until
an input arrives or time moves.  One clock per ``Sandbox``; its time is simulated seconds
since the clock was made.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class SettleTimeout(RuntimeError):
    """The calls kept running (callbacks, or a busy loop) for longer than allowed."""


@dataclass(frozen=True)
class Parked:
    """Why a call waits: until ``deadline`` (simulated seconds; inf: only an input ends
    it), and whether it is waiting for the caller's input (a Gather or Record listening)."""

    deadline: float
    listening: bool


class ManualClock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.now = 0.0
        self._running: set[Any] = set()  # calls whose runner thread is executing
        self._parked: dict[Any, Parked] = {}
        self._busy = 0  # the driver is claiming calls or handing out inputs
        self._queued: set[str] = set()  # calls created here that no runner has started yet
        # Counts every moment calls may have changed (an input, time moving, a runner
        # starting or ending): equal counts around a read mean nothing ran in between.
        self.generation = 0

    def _quiet(self) -> bool:
        return self._busy == 0 and not self._queued and self._running <= set(self._parked)

    def queued(self, call_id: str) -> None:
        """A call was created here: not settled until a runner takes it."""
        with self._cond:
            self._queued.add(call_id)
            self.generation += 1

    def not_queued(self, call_id: str) -> None:
        """A call announced by ``queued`` was refused (an account limit): none will run."""
        with self._cond:
            self._queued.discard(call_id)
            self.generation += 1
            self._cond.notify_all()

    # --- what runners call ------------------------------------------------------------

    def register(self, call: Any) -> None:
        """A runner starts (it counts as running until it parks)."""
        with self._cond:
            self._running.add(call)
            self._queued.discard(call.call_id)
            self.generation += 1

    @contextmanager
    def busy(self) -> Iterator[None]:
        """The driver is working (claiming, dispatching inputs): not settled meanwhile."""
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def unregister(self, call: Any) -> None:
        with self._cond:
            self._running.discard(call)
            self._parked.pop(call, None)
            self.generation += 1
            self._cond.notify_all()

    def park(self, call: Any, inbox: queue.Queue[Any], timeout: float, listening: bool) -> Any:
        """Wait for ``timeout`` simulated seconds or the next item of ``inbox``: the item,
        or None when the time has passed."""
        with self._cond:
            until = self.now + max(0.0, timeout)
            while True:
                if not inbox.empty():
                    self._parked.pop(call, None)
                    return inbox.get_nowait()
                if self.now >= until:
                    self._parked.pop(call, None)
                    return None
                self._parked[call] = Parked(until, listening)
                self._cond.notify_all()
                self._cond.wait()

    def post(self, call: Any, inbox: queue.Queue[Any], item: Any) -> None:
        """Hand ``item`` to a call; it counts as running from now on."""
        with self._cond:
            inbox.put(item)
            self._parked.pop(call, None)
            self.generation += 1
            self._cond.notify_all()

    # --- what tests call --------------------------------------------------------------

    def settled(self) -> bool:
        """Every running call is parked (no thread is doing anything)."""
        with self._cond:
            return self._quiet()

    def wait_settled(self, timeout: float, extra: Callable[[], bool] = lambda: True) -> None:
        """Wait (real time, at most ``timeout`` s) until every call is parked and
        ``extra()`` agrees (nothing queued elsewhere, such as inputs not yet dispatched)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                while not self._quiet():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise SettleTimeout(self._busy_message())
                    self._cond.wait(min(remaining, 0.05))
            if extra():
                with self._cond:  # nothing woke in between
                    if self._quiet():
                        return
                continue
            if time.monotonic() >= deadline:
                raise SettleTimeout("inputs were not taken up in time")
            with self._cond:
                self._cond.wait(0.002)

    def next_deadline(self, *, calls: set[Any] | None = None) -> Parked | None:
        """The earliest wake-up among the parked calls (of ``calls``, when given)."""
        with self._cond:
            found = [
                p
                for c, p in self._parked.items()
                if (calls is None or c in calls) and p.deadline != math.inf
            ]
        return min(found, key=lambda p: p.deadline) if found else None

    def parked_for(self, call_id: str, *, any_leg: bool = False) -> Parked | None:
        """How the call running leg ``call_id`` (an A-leg, or its Transfer's B-leg) waits:
        listening only when that leg's Gather or Record listens (``any_leg``: when one of
        the call's legs does); None while it runs."""
        with self._cond:
            for call, parked in self._parked.items():
                b_leg = getattr(call, "b_leg", None)
                legs = (call.call_id, b_leg.call_id if b_leg is not None else None)
                if call_id in legs:
                    listening = parked.listening and (any_leg or call.gathering == call_id)
                    return Parked(parked.deadline, listening)
        return None

    def move_to(self, when: float) -> None:
        """Set the time to ``when`` (never backwards) and wake the calls due by then."""
        with self._cond:
            if when <= self.now:
                return
            self.now = when
            self.generation += 1
            for call, parked in list(self._parked.items()):
                if parked.deadline <= when:
                    del self._parked[call]
            self._cond.notify_all()

    def advance(self, seconds: float, settle: Callable[[], None]) -> None:
        """Move ``seconds`` on, one deadline at a time, calling ``settle()`` (wait until the
        calls woken have run) before each move and after the last."""
        if seconds < 0:
            raise ValueError("time cannot go back")
        target = self.now + seconds
        while True:
            settle()
            due = self.next_deadline()
            if due is None or due.deadline > target:
                self.move_to(target)
                settle()
                return
            self.move_to(due.deadline)

    def _busy_message(self) -> str:
        busy = sorted(getattr(c, "call_id", repr(c)) for c in self._running - set(self._parked))
        return f"calls still running after the allowed time: {', '.join(busy)}"
