"""Callee scripts: how the phone at the other end behaves, chosen by the number called.

By default the callee answers after ``SANDBOX_RING_SECONDS``.  Numbers ending in ``486``
are busy, ``408`` never answer (the call ends with ``timeout`` after ``callTimeout``), and
``603`` reject the call.  A script registered for an exact number (control API
``PUT .../sandbox-control/callees/{number}``, or ``bandwidth_sandbox.script(...)``) wins::

    {"answer": "answer", "ringSeconds": 2, "gatherDigits": ["1", "42#"],
     "hangupAfter": 30, "bridgeSeconds": 5, "recordSeconds": 3,
     "transcript": "what the callee says into a Record",
     "machineDetection": "human", "greetingSeconds": 2}

``machineDetection`` (``human``, ``machine`` or ``silence``) and ``greetingSeconds`` (how long
the callee speaks on answering; default 1 for a human, 15 for a machine) decide what
Create Call's ``machineDetection`` finds.
``gatherDigits`` are pressed one entry per ``<Gather>``, as each one starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANSWERS = ("answer", "busy", "no-answer", "reject")
MACHINE_DETECTION = ("human", "machine", "silence")
DTMF = frozenset("0123456789*#ABCDabcd")


class ScriptError(ValueError):
    """A callee script that cannot be used; the message names the field."""


@dataclass
class Callee:
    answer: str = "answer"
    ring_seconds: float | None = None
    gather_digits: list[str] = field(default_factory=list)
    hangup_after: float | None = None
    bridge_seconds: float | None = None
    record_seconds: float | None = None
    transcript: str | None = None
    machine_detection: str = "human"
    greeting_seconds: float | None = None
    delivery_faults: dict[str, Any] | None = None  # sandbox.faults: this call's faults

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "answer": self.answer,
            "gatherDigits": list(self.gather_digits),
            "machineDetection": self.machine_detection,
        }
        for key, value in (
            ("ringSeconds", self.ring_seconds),
            ("hangupAfter", self.hangup_after),
            ("bridgeSeconds", self.bridge_seconds),
            ("recordSeconds", self.record_seconds),
            ("transcript", self.transcript),
            ("greetingSeconds", self.greeting_seconds),
            ("deliveryFaults", self.delivery_faults),
        ):
            if value is not None:
                data[key] = value
        return data


_NUMBER_KEYS = {
    "ringSeconds": "ring_seconds",
    "hangupAfter": "hangup_after",
    "bridgeSeconds": "bridge_seconds",
    "recordSeconds": "record_seconds",
    "greetingSeconds": "greeting_seconds",
}


def from_json(data: Any) -> Callee:
    """Check a script given as JSON; raises ScriptError naming the bad field."""
    if not isinstance(data, dict):
        raise ScriptError("a callee script is a JSON object")
    unknown = set(data) - {
        "answer",
        "gatherDigits",
        "transcript",
        "machineDetection",
        "deliveryFaults",
        *_NUMBER_KEYS,
    }
    if unknown:
        raise ScriptError(f"unknown field {sorted(unknown)[0]!r}")
    callee = Callee()
    answer = data.get("answer", "answer")
    if answer not in ANSWERS:
        raise ScriptError(f"answer must be one of {', '.join(ANSWERS)}")
    callee.answer = answer
    detection = data.get("machineDetection", "human")
    if detection not in MACHINE_DETECTION:
        raise ScriptError(f"machineDetection must be one of {', '.join(MACHINE_DETECTION)}")
    callee.machine_detection = detection
    digits = data.get("gatherDigits", [])
    if not isinstance(digits, list) or not all(
        isinstance(d, str) and len(d) <= 50 and set(d) <= DTMF for d in digits
    ):
        raise ScriptError("gatherDigits must be a list of DTMF strings (0-9, *, #, A-D)")
    callee.gather_digits = list(digits)
    transcript = data.get("transcript")
    if transcript is not None:
        if not isinstance(transcript, str) or len(transcript) > 4096:
            raise ScriptError("transcript must be a string of at most 4096 characters")
        callee.transcript = transcript
    if data.get("deliveryFaults") is not None:
        callee.delivery_faults = _delivery_faults(data["deliveryFaults"])
    for key, attr in _NUMBER_KEYS.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86400:
            raise ScriptError(f"{key} must be a number of seconds between 0 and 86400")
        setattr(callee, attr, float(value))
    return callee


FAULT_LISTS = ("duplicate", "late", "refuseOnce")


def _delivery_faults(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {*FAULT_LISTS, "lateSeconds"}:
        raise ScriptError(
            "deliveryFaults is an object with duplicate, late, refuseOnce (lists of event "
            "types) and lateSeconds"
        )
    for key in FAULT_LISTS:
        items = value.get(key, [])
        if not isinstance(items, list) or not all(
            isinstance(item, str) and 0 < len(item) <= 64 for item in items
        ):
            raise ScriptError(f"deliveryFaults.{key} must be a list of event types")
    seconds = value.get("lateSeconds", 0)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= 3600
    ):
        raise ScriptError("deliveryFaults.lateSeconds must be a number of seconds (0-3600)")
    return dict(value)


def by_number(number: str) -> Callee:
    """The built-in script for a destination number (see the module docstring)."""
    digits = number.split("@", 1)[0]
    if digits.endswith("486"):
        return Callee(answer="busy")
    if digits.endswith("408"):
        return Callee(answer="no-answer")
    if digits.endswith("603"):
        return Callee(answer="reject")
    return Callee()
