"""Simulated time as one call sees it: its clock, and deadlines on the real clock (scaled
by ``SANDBOX_TIME_SCALE``) or on the manual one (``sandbox.clock``), whichever runs.

A mixin of ``sandbox.call.Call``: it needs the call's ``settings``, ``manual`` (the manual
clock or None), ``program`` (where the clock is saved) and ``_waiting_since``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sandbox.clock import ManualClock
from sandbox.settings import Settings


class SimulatedTime:
    settings: Settings
    manual: ManualClock | None
    program: dict[str, Any]
    _waiting_since: float | None

    @property
    def clock(self) -> float:
        """Simulated seconds this call has spent waiting (playing, pausing, ringing, ...)."""
        return float(self.program.get("clock", 0.0))

    def clock_now(self) -> float:
        """The simulated clock at this moment (``clock`` plus the wait under way)."""
        if self._waiting_since is None:
            return self.clock
        return self.clock + self.simulated_since(self._waiting_since)

    def timeline(self) -> float:
        """Now, on the timeline of wait deadlines: real monotonic seconds, or the manual
        clock's simulated seconds."""
        return self.manual.now if self.manual is not None else time.monotonic()

    def deadline(self, seconds: float) -> float:
        """The wait deadline ``seconds`` of simulated time from now."""
        if self.manual is not None:
            return self.manual.now + max(0.0, float(seconds))
        return time.monotonic() + self.settings.scaled(seconds)

    def poll_deadline(self, seconds: float) -> float:
        """A deadline for re-checking shared state every ``seconds`` of real time; with the
        manual clock none (only an input ends such a wait)."""
        return math.inf if self.manual is not None else time.monotonic() + seconds

    def simulated_since(self, mark: float) -> float:
        """Simulated seconds since ``timeline()`` was ``mark``."""
        if self.manual is not None:
            return self.manual.now - mark
        scale = self.settings.time_scale
        return (time.monotonic() - mark) / scale if scale else 0.0

    def later(self, seconds: float) -> float:
        """The moment ``seconds`` of simulated time from now, as kept in ``program``
        (``hangupAt``, a pending machine detection): epoch seconds, or manual clock time."""
        if self.manual is not None:
            return self.manual.now + float(seconds)
        return time.time() + self.settings.scaled(seconds)

    def until(self, moment: float) -> float:
        """Wait-timeline seconds until a ``later()`` moment (negative: passed)."""
        if self.manual is not None:
            return moment - self.manual.now
        return moment - time.time()
