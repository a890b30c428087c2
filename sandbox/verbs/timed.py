"""SpeakSentence, PlayAudio, Pause, Ring, SendDtmf: they only take time; no callback.

How long: speech ``SANDBOX_SPEECH_SECONDS_PER_CHAR`` per character, audio
``SANDBOX_AUDIO_SECONDS``, Pause and Ring their ``duration``, SendDtmf its tones and waits.
Inputs (hang-ups, Update Call) are handled while they play; digits pressed are kept for
the next Gather, or sent as ``dtmf`` after StartGather.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bxml
from sandbox.settings import Settings
from sandbox.verbs.transcription import heard

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg


def duration(settings: Settings, verb: bxml.Verb) -> float:
    """Simulated seconds ``verb`` takes to play (0 for verbs that do not play)."""
    attrs = verb.attrs
    name = verb.name
    if name == "SpeakSentence":
        return len(verb.text or "") * settings.speech_seconds_per_char
    if name == "PlayAudio":
        return settings.audio_seconds
    if name == "Pause":
        return float(attrs.get("duration", 1))  # type: ignore[arg-type]
    if name == "Ring":
        return float(attrs.get("duration", 5))  # type: ignore[arg-type]
    if name == "SendDtmf":
        tone = float(attrs.get("toneDuration", 200)) + float(attrs.get("toneInterval", 400))  # type: ignore[arg-type]
        total = 0.0
        for char in verb.text or "":
            total += 0.5 if char in "w," else 1.0 if char == "W" else tone / 1000.0
        return total
    return 0.0


def play(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    if verb.name == "SpeakSentence" and leg is call.leg:
        heard(call, (verb.text or "").strip())
    call.wait(duration(call.settings, verb))
    return None


UNITS = {name: play for name in ("SpeakSentence", "PlayAudio", "Pause", "Ring", "SendDtmf")}
