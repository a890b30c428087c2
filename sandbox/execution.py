"""What every part of a call's execution shares: how a leg ends, how a document is replaced,
where a document is, and the causes of a failed call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.payloads import Leg, new_error_id

FAILURE_CAUSES = frozenset(
    {"busy", "timeout", "rejected", "invalid-bxml", "callback-error", "error"}
)
SIP_CODES = {"busy": 486, "rejected": 603}
# What a wait that takes speech returns when the callee said something (never a digit).
SPOKE = "(spoke)"
DEFAULT_MESSAGES = {
    "busy": "Callee is busy",
    "rejected": "Callee rejected the call",
    "timeout": "Call was not answered before callTimeout",
}


class CallEnded(Exception):
    """A leg ends: ``cause`` as in the disconnect event."""

    def __init__(self, cause: str, call_id: str, message: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.call_id = call_id
        self.message = message

    def fields(self) -> dict[str, Any]:
        """``cause``, and for a failure ``errorMessage`` and a new ``errorId``."""
        fields: dict[str, Any] = {"cause": self.cause}
        if self.cause in FAILURE_CAUSES:
            fields["errorMessage"] = self.message or DEFAULT_MESSAGES.get(self.cause, self.cause)
            fields["errorId"] = new_error_id()
        return fields


class Interrupt(Exception):
    """Update Call (redirect) or Update Call BXML replaces the A-leg's document."""

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.data = data


class Stopped(Exception):
    """The driver is stopping (``release``) or simulating a crash (``abandon``)."""


class PeerLeft(Exception):
    """The call this one is bridged with left the bridge."""

    def __init__(self, peer: str) -> None:
        super().__init__(peer)
        self.peer = peer


class ConferenceChanged(Exception):
    """Something happened to the conference this call is in (the Conferences API: an end,
    a redirect, new BXML, this member's mute or hold)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__("conference")
        self.data = data


class LeaseLost(Exception):
    """Another driver holds this call now."""


@dataclass
class Document:
    """A document being executed on one leg: its text, the URL it came from, position."""

    text: str
    base: str
    pc: int = 0


class DocumentRunner(Protocol):
    """Runs a document on a leg until its end (returns) or the leg ends (raises)."""

    def run(self, leg: Leg, doc: Document) -> None: ...
