"""What the far end of a call heard, pressed and said, in order: the call's transcript.

Each entry is ``{"at": seconds, "time": epoch, "callId": leg, "kind": kind, "text": text}``
where ``at`` is the call's simulated clock (``Call.clock``: seconds of ringing, playing,
pausing and waiting since the call was queued), ``time`` the wall clock then (epoch
seconds, the base of the times the app stores its callbacks at, so the dashboard draws both
on one time line) and ``callId`` the leg it happened on (a Transfer's agent leg has its
own).  Kinds:

- heard: ``speech`` (SpeakSentence text), ``audio`` (PlayAudio URL), ``pause`` and ``ring``
  (seconds), ``tones`` (SendDtmf digits the app played);
- done by the person on the phone: ``pressed`` (digits), ``said`` (speech a Record or a
  transcription took), ``hangup``;
- what happened: ``answered``, ``transfer`` (the number dialled), ``bridge``,
  ``conference``, ``record``, ``ended`` (the cause).

The A-leg's row keeps the entries of all its legs (``program["transcript"]``), the newest
500.  ``transcript_of`` reads them back for one leg.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import bxml
from sandbox.payloads import Leg

KEY = "transcript"
LIMIT = 500
HEARD = ("speech", "audio", "pause", "ring", "tones")


class Call(Protocol):
    """What this module needs of a ``sandbox.call.Call`` (which imports it)."""

    program: dict[str, Any]

    def clock_now(self) -> float: ...


def add(call: Call, leg: Leg, kind: str, text: str) -> None:
    """Note one entry, at the call's simulated clock now."""
    entries: list[dict[str, Any]] = call.program.setdefault(KEY, [])
    entries.append(
        {
            "at": round(call.clock_now(), 3),
            "time": round(time.time(), 3),
            "callId": leg.call_id,
            "kind": kind,
            "text": text,
        }
    )
    if len(entries) > LIMIT:
        del entries[: len(entries) - LIMIT]


def newest(program: dict[str, Any]) -> dict[str, Any] | None:
    """The last entry noted (to tell whether the transcript changed since a save)."""
    entries = program.get(KEY)
    return entries[-1] if entries else None


def verb(call: Call, leg: Leg, verb: bxml.Verb) -> None:
    """Note what a verb starting on ``leg`` makes the far end hear (or what it does)."""
    attrs, name = verb.attrs, verb.name
    if name == "SpeakSentence":
        add(call, leg, "speech", " ".join((verb.text or "").split()))
    elif name == "PlayAudio":
        add(call, leg, "audio", (verb.text or "").strip())
    elif name == "Pause":
        add(call, leg, "pause", f"{float(attrs.get('duration', 1)):g} s")  # type: ignore[arg-type]
    elif name == "Ring":
        add(call, leg, "ring", f"{float(attrs.get('duration', 5)):g} s")  # type: ignore[arg-type]
    elif name == "SendDtmf":
        add(call, leg, "tones", (verb.text or "").strip())
    elif name == "Transfer" and verb.children:
        add(call, leg, "transfer", (verb.children[0].text or "").strip())
    elif name == "Bridge":
        add(call, leg, "bridge", (verb.text or "").strip())
    elif name == "Conference":
        add(call, leg, "conference", (verb.text or "").strip())
    elif name == "Record":
        add(call, leg, "record", f"up to {float(attrs.get('maxDuration', 60)):g} s")  # type: ignore[arg-type]


def transcript_of(program: dict[str, Any] | None, call_id: str) -> list[dict[str, Any]]:
    """The entries of leg ``call_id`` in a saved ``program`` (its A-leg's), each with a
    readable ``line`` too."""
    entries = (program or {}).get(KEY) or []
    return [{**entry, "line": describe(entry)} for entry in entries if entry["callId"] == call_id]


# How each kind of entry reads, from its text.
_WORDS: dict[str, Callable[[str], str]] = {
    "speech": lambda text: f"heard {text!r}",
    "audio": lambda text: f"heard audio {text}",
    "pause": lambda text: f"heard silence ({text})",
    "ring": lambda text: f"heard ringing ({text})",
    "tones": lambda text: f"heard tones {text!r}",
    "pressed": lambda text: f"pressed {text!r}",
    "said": lambda text: f"said {text!r}",
    "transfer": lambda text: f"transferred to {text}",
    "bridge": lambda text: f"bridged with {text}",
    "conference": lambda text: f"joined conference {text!r}",
    "record": lambda text: f"recording ({text})",
    "ended": lambda text: f"call ended ({text})",
    "answered": lambda text: "answered" if text == "the call is answered" else text,
}


def describe(entry: dict[str, Any]) -> str:
    """What one entry says, as words: ``heard 'Thanks for calling.'``."""
    words = _WORDS.get(entry["kind"])
    return words(entry["text"]) if words is not None else str(entry["text"])


def render(entries: list[dict[str, Any]], indent: str = "  ") -> str:
    """The entries as lines (``   12.4 s  heard 'Thanks for calling.'``)."""
    if not entries:
        return f"{indent}(nothing yet)"
    return "\n".join(f"{indent}{entry['at']:7.1f} s  {describe(entry)}" for entry in entries)
