"""transcribeCallRecording: ``POST .../calls/{callId}/recordings/{recordingId}/transcription``.

The recording (``complete``; a ``processing`` one is ``404`` like its media) is transcribed
at once with what the far end's callee script says (``transcript``, default "This is a
sandbox recording."); a recording of 0.5 s or less gets status ``file-size-too-small`` and
no text.  The answer is ``204``; then ``transcriptionAvailable`` goes to ``callbackUrl``
(``callbackMethod``, ``username``/``password``, ``tag``, ``callbackTimeout``) from a thread of
the process that took the request, with the recording's fields and both readings of the
``transcription`` object, as after ``<Record transcribe="true">``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from marshmallow import EXCLUDE, ValidationError, fields

from calls.fields import MAX_CREDENTIAL, Number, Text, method, optional_url
from calls.schemas import CamelCaseSchema
from sandbox import callee as callees
from sandbox.delivery import Hook
from sandbox.errors import ApiError, describe
from sandbox.payloads import Leg, event, iso
from sandbox.recordings import _seconds
from sandbox.verbs.record import CONFIDENCE, DEFAULT_TRANSCRIPT

if TYPE_CHECKING:
    from sandbox.core import Sandbox

SHORTEST_SECONDS = 0.5


class TranscribeSchema(CamelCaseSchema):
    """Body of transcribeCallRecording (every field optional; unknown ones ignored)."""

    class Meta:
        unknown = EXCLUDE

    callback_url = optional_url()
    callback_method = method()
    username = Text(max_length=MAX_CREDENTIAL, allow_none=True)
    password = Text(max_length=MAX_CREDENTIAL, allow_none=True)
    tag = Text(max_length=256, allow_none=True)
    callback_timeout = Number(between=(1, 25), allow_none=True)
    detect_language = fields.Boolean(allow_none=True)


def transcribe(
    sandbox: Sandbox, account_id: str, call_id: str, recording_id: str, body: Any
) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "validation", "The request body must be a JSON object")
    try:
        TranscribeSchema().load(body)
    except ValidationError as error:
        raise ApiError(400, "validation", describe(error, required=())) from None
    url = body.get("callbackUrl")
    if url:
        problem = sandbox.policy.problem(url)
        if problem:
            raise ApiError(400, "validation", f"Invalid callbackUrl: {problem}")
    recording = sandbox.recordings.get(account_id, call_id, recording_id)  # 403/404
    if recording["status"] != "complete":
        raise ApiError(404, "validation", f"Recording [{recording_id}] is still processing")
    seconds = _seconds(recording["duration"])
    far_end = recording["from"] if recording.get("direction") == "inbound" else recording["to"]
    script = sandbox.db.get_callee(far_end)
    said = callees.from_json(script).transcript if script else None
    text = DEFAULT_TRANSCRIPT if said is None else said
    status = "available" if seconds > SHORTEST_SECONDS else "file-size-too-small"
    transcription = {
        "id": f"t-{uuid.uuid4()}",
        "url": recording["mediaUrl"].removesuffix("/media") + "/transcription",
        "status": status,
        "completedTime": iso(time.time()),
        "transcripts": (
            [{"speaker": 0, "text": text, "confidence": CONFIDENCE}]
            if status == "available"
            else []
        ),
    }
    sandbox.catalog.set_recording(recording_id, transcription=transcription)
    if url:
        threading.Thread(
            target=_send,
            args=(sandbox, body, recording, transcription),
            name="sandbox-transcribe",
            daemon=True,
        ).start()


def _send(
    sandbox: Sandbox, body: dict[str, Any], recording: dict[str, Any], found: dict[str, Any]
) -> None:
    row = sandbox.db.get_call(recording["callId"])
    leg = Leg.from_dict(row["leg"]) if row else None
    if leg is None:
        return
    leg.tag = body.get("tag") or None
    shown = {k: v for k, v in found.items() if k != "transcripts"}
    shown.update(found["transcripts"][0] if found["transcripts"] else {})
    keys = ("mediaUrl", "recordingId", "startTime", "endTime", "duration", "fileFormat")
    payload = event("transcriptionAvailable", leg, transcription=shown)
    payload.update({key: recording[key] for key in keys if key in recording})
    hook = Hook(
        url=body["callbackUrl"],
        method=body.get("callbackMethod") or "POST",
        username=body.get("username"),
        password=body.get("password"),
    )
    sandbox.driver.deliverer.send(
        hook, payload, float(body.get("callbackTimeout") or 15), bxml=False
    )
