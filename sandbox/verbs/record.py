"""Record: the callee speaks for its script's ``recordSeconds`` (``SANDBOX_RECORD_SECONDS``),
capped by ``maxDuration`` (and ``silenceTimeout`` after the speech); a terminating digit
(``#`` by default) ends it early.

Callbacks: ``recordComplete`` to ``recordCompleteUrl`` (its reply replaces the document),
then ``recordingAvailable`` to ``recordingAvailableUrl``.  When the call ends during the
recording, the recording still becomes available.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import bxml
from sandbox.delivery import Hook
from sandbox.execution import CallEnded
from sandbox.payloads import iso, iso_duration, new_recording_id

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg


def record(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    settings = call.settings
    terminators = str(attrs.get("terminatingDigits", "#"))
    max_duration = float(attrs.get("maxDuration", 60))  # type: ignore[arg-type]
    silence = float(attrs.get("silenceTimeout", 0))  # type: ignore[arg-type]
    script = call.script_of(leg)
    speech = settings.record_seconds if script.record_seconds is None else script.record_seconds
    limit = min(max_duration, speech + silence) if silence > 0 else max_duration
    started = time.time()
    real_started = time.monotonic()
    recording_id = new_recording_id()
    file_format = str(attrs.get("fileFormat", "wav"))
    fields = {
        "recordingId": recording_id,
        "mediaUrl": f"{leg.call_url}/recordings/{recording_id}/media",
    }

    def recorded() -> dict[str, Any]:
        elapsed = time.monotonic() - real_started
        simulated = elapsed / settings.time_scale if settings.time_scale else limit
        return {
            **fields,
            "startTime": iso(started),
            "endTime": iso(time.time()),
            "duration": iso_duration(min(simulated, limit)),
            "fileFormat": file_format,
            "channels": 1,
        }

    available = None
    if "recordingAvailableUrl" in attrs:
        available = Hook(
            url=urljoin(base, str(attrs["recordingAvailableUrl"])),
            method=str(attrs.get("recordingAvailableMethod") or "POST"),
            username=attrs.get("username"),
            password=attrs.get("password"),
        )
    call.gathering = leg.call_id
    try:
        deadline = time.monotonic() + settings.scaled(limit)
        while True:
            pressed = call.wait_until(deadline, digits=True)
            if not pressed or any(d in terminators for d in pressed):
                break
    except CallEnded:
        if available is not None:  # the recording still becomes available
            call.async_callback(
                leg, available, "recordingAvailable", **recorded(), status="complete"
            )
        raise
    finally:
        call.gathering = None
    result = recorded()
    call.note(f"Record: {result['duration']}")
    replacement = None
    if "recordCompleteUrl" in attrs:
        replacement = call.bxml_callback(
            leg, call.hook(attrs, base, "recordComplete"), "recordComplete", result
        )
    if available is not None:
        call.async_callback(leg, available, "recordingAvailable", **result, status="complete")
    return replacement


UNITS = {"Record": record}
