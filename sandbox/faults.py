"""Opt-in delivery faults, to test how an app copes with Bandwidth's delivery quirks.

Chosen per event type by the settings (``SANDBOX_DUPLICATE_EVENTS``,
``SANDBOX_LATE_EVENTS`` with ``SANDBOX_LATE_SECONDS``, ``SANDBOX_REFUSE_ONCE_EVENTS``: comma-
separated event types, ``*`` for every one) and, for one call, by the callee script's
``deliveryFaults`` (``{"duplicate": [...], "late": [...], "lateSeconds": 2, "refuseOnce":
[...]}``; added to the settings' lists):

- **duplicate**: the callback is delivered, then delivered again with the same payload (a
  retry after a lost reply).  For a BXML callback the first reply runs; the second is noted.
- **late**: the callback goes ``lateSeconds`` of simulated time late.  An asynchronous one
  (``disconnect``, ``dtmf``, ...) is sent from a timer while the call goes on, so it can
  arrive after later events; a BXML one holds the call until it is sent.
- **refuse once**: the first attempt fails as a connection error without reaching the app,
  so Bandwidth's retry rule applies (sent again once to the same URL; a BXML callback that
  fails again goes to its fallback URL).

Every fault applied is noted in the call's log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.delivery import Deliverer, Delivery, Hook
from sandbox.settings import Settings

EVERY = "*"


def event_set(value: Any) -> frozenset[str]:
    """``"gather, dtmf"`` or ``["gather", "dtmf"]`` -> the set of event types."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return frozenset(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class Faults:
    duplicate: frozenset[str] = frozenset()
    late: frozenset[str] = frozenset()
    late_seconds: float = 5.0
    refuse_once: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: Settings, script: dict[str, Any] | None = None) -> Faults:
        """The settings' faults, plus a callee script's ``deliveryFaults``."""
        script = script or {}
        return cls(
            duplicate=event_set(settings.duplicate_events) | event_set(script.get("duplicate")),
            late=event_set(settings.late_events) | event_set(script.get("late")),
            late_seconds=float(script.get("lateSeconds", settings.late_seconds)),
            refuse_once=event_set(settings.refuse_once_events)
            | event_set(script.get("refuseOnce")),
        )

    @staticmethod
    def _hit(events: frozenset[str], event_type: str) -> bool:
        return event_type in events or EVERY in events

    def any(self) -> bool:
        return bool(self.duplicate or self.late or self.refuse_once)

    def deliver(
        self,
        deliverer: Deliverer,
        hook: Hook,
        payload: dict[str, Any],
        timeout: float,
        *,
        bxml: bool,
        note: Callable[[str], None],
        scaled: Callable[[float], float],
    ) -> Delivery:
        """Send ``payload`` with this event type's faults (if any) applied."""
        event_type = str(payload.get("eventType"))
        refuse = self._hit(self.refuse_once, event_type)
        twice = self._hit(self.duplicate, event_type)

        def send() -> Delivery:
            if refuse:
                note(f"{event_type}: first attempt refused (delivery fault)")
            result = deliverer.send(hook, payload, timeout, bxml=bxml, refuse_first=refuse)
            if twice:
                again = deliverer.send(hook, payload, timeout, bxml=False)
                result.attempts += [f"again (delivery fault): {each}" for each in again.attempts]
            return result

        if not self._hit(self.late, event_type):
            return send()
        delay = scaled(self.late_seconds)
        note(f"{event_type}: delivered {self.late_seconds:g} s late (delivery fault)")
        if bxml:
            time.sleep(delay)
            return send()

        def later() -> None:
            result = send()
            for attempt in result.attempts:
                note(f"{event_type} (late): {attempt}")

        timer = threading.Timer(delay, later)
        timer.daemon = True
        timer.start()
        return Delivery(True, attempts=[f"held back {delay:.2f} s (delivery fault)"])
