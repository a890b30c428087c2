"""Which callbacks take a BXML reply, and which verbs that reply may use (reference 4.4)."""

from __future__ import annotations

from bxml.errors import BxmlError
from bxml.parsing import parse
from bxml.values import show
from bxml.verb import Root
from bxml.verbs import Response

CONFERENCE_EVENTS = frozenset(
    {"conferenceCreated", "conferenceRedirect", "conferenceMemberJoin", "conferenceMemberExit"}
)
# Webhooks whose reply BXML Bandwidth executes.  recordingComplete is the spec's name for
# the event the docs (and Bandwidth's payloads) call recordComplete.
BXML_EVENTS = frozenset(
    {
        "initiate",
        "answer",
        "redirect",
        "gather",
        "transferAnswer",
        "transferComplete",
        "recordComplete",
        "recordingComplete",
        "bridgeComplete",
        "bridgeTargetComplete",
        "referComplete",
        *CONFERENCE_EVENTS,
    }
)
# Webhooks whose reply body Bandwidth ignores.
ASYNC_EVENTS = frozenset(
    {
        "disconnect",
        "transferDisconnect",
        "conferenceCompleted",
        "recordingAvailable",
        "conferenceRecordingAvailable",
        "transcriptionAvailable",
        "dtmf",
        "machineDetectionComplete",
        "mediaStreamStarted",
        "mediaStreamRejected",
        "mediaStreamStopped",
        "realTimeTranscriptionStarted",
        "realTimeTranscriptionRejected",
        "realTimeTranscriptionStopped",
        "realTimeTranscriptionAvailable",
    }
)
EVENT_TYPES = BXML_EVENTS | ASYNC_EVENTS

# transferAnswer BXML runs on the B-leg before it is bridged: no verb that moves the call.
TRANSFER_ANSWER_FORBIDS = frozenset({"Bridge", "Conference", "Forward", "Transfer"})
# In a conference event reply, audio plays to every member; anything else rejects it all.
CONFERENCE_ALLOWS = frozenset(
    {
        "PlayAudio",
        "SpeakSentence",
        "StartRecording",
        "StopRecording",
        "PauseRecording",
        "ResumeRecording",
    }
)


def reply_expected(event_type: str) -> bool:
    """True if Bandwidth executes the BXML reply to ``event_type``, False if it ignores it."""
    if not isinstance(event_type, str):
        raise BxmlError(f"event type must be a string, got {type(event_type).__name__}")
    if event_type in BXML_EVENTS:
        return True
    if event_type in ASYNC_EVENTS:
        return False
    raise BxmlError(f"unknown event type {show(event_type)}")


def check_reply(document: Root | str | bytes | None, event_type: str) -> None:
    """Raise BxmlError unless ``document`` may answer a ``event_type`` callback.

    ``document`` is a verb tree, or a rendered document (parsed first); None or an empty
    body means "no document", which any event accepts.  A reply needs a ``Response``
    root, and the verbs it holds must be allowed for the event (reference 4.4).
    """
    expected = reply_expected(event_type)
    if isinstance(document, str | bytes):
        document = parse(document) if document.strip() else None
    if document is None:
        return
    if not isinstance(document, Root):
        raise BxmlError(
            f"{event_type}: the reply must be a bxml Response, got {type(document).__name__}"
        )
    if not expected:
        raise BxmlError(f"{event_type}: Bandwidth ignores the reply to this event; send none")
    if not isinstance(document, Response):
        raise BxmlError(
            f"{event_type}: a reply needs a Response root, got {document.name} "
            f"(Bxml is for PUT .../bxml)"
        )
    for verb in document:
        if event_type == "transferAnswer" and verb.name in TRANSFER_ANSWER_FORBIDS:
            raise BxmlError(
                f"transferAnswer: {verb.name} is not allowed in this reply "
                f"(not allowed: {', '.join(sorted(TRANSFER_ANSWER_FORBIDS))})"
            )
        if event_type in CONFERENCE_EVENTS and verb.name not in CONFERENCE_ALLOWS:
            raise BxmlError(
                f"{event_type}: {verb.name} is not allowed in this reply "
                f"(allowed: {', '.join(sorted(CONFERENCE_ALLOWS))})"
            )
