"""Shared tables: a valid value for every attribute of every verb, and minimal verbs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bxml import (
    Bridge,
    Bxml,
    Conference,
    CustomParam,
    Forward,
    Gather,
    Hangup,
    Pause,
    PauseRecording,
    PhoneNumber,
    PlayAudio,
    Record,
    Redirect,
    Refer,
    Response,
    ResumeRecording,
    Ring,
    SendDtmf,
    SipUri,
    SpeakSentence,
    StartGather,
    StartRecording,
    StartStream,
    StartTranscription,
    StopGather,
    StopRecording,
    StopStream,
    StopTranscription,
    StreamParam,
    Tag,
    Transfer,
    Verb,
)

URL = "https://example.com/callbacks/event?a=1&b=<2>"
NUMBER = "+15555550123"
SIP = "sip:agent@example.com"
STREAM = "wss://stream.example.com/audio"

CREDENTIALS = {"username": "user", "password": 'p&ss "word" <x>'}
FALLBACK_CREDENTIALS = {"fallback_username": "user2", "fallback_password": "secret2"}
TAG = {"tag": "tag with & and < and ñ"}


def webhook(event: str, fallback: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {f"{event}_url": URL, f"{event}_method": "GET"}
    if fallback:
        values |= {
            f"{event}_fallback_url": "/relative/fallback",
            f"{event}_fallback_method": "POST",
        }
    return values


TRANSFER_LEG = {
    **webhook("transfer_answer"),
    **webhook("transfer_disconnect", fallback=False),
    **CREDENTIALS,
    **FALLBACK_CREDENTIALS,
    **TAG,
}
RECORDING_OUTPUT = {
    **webhook("recording_available", fallback=False),
    "transcribe": True,
    "detect_language": False,
    **webhook("transcription_available", fallback=False),
}

# Every attribute of every verb, in table order, with a valid (mostly non-default) value.
ALL_ATTRIBUTES: dict[type[Verb], dict[str, Any]] = {
    SpeakSentence: {"voice": "julie", "gender": "male", "locale": "es_MX"},
    PlayAudio: {**CREDENTIALS},
    Gather: {
        **webhook("gather"),
        **CREDENTIALS,
        **FALLBACK_CREDENTIALS,
        **TAG,
        "terminating_digits": "#*",
        "max_digits": 50,
        "inter_digit_timeout": 2.5,
        "first_digit_timeout": 0,
        "repeat_count": 2,
        "input": "dtmf_speech",
        "hints": "sales, support",
        "language": "en-US",
        "partial_result_callback": URL,
        "partial_result_callback_method": "GET",
        "profanity_filter": False,
        "speech_model": "default",
        "speech_timeout": 7,
    },
    Transfer: {
        "transfer_caller_id": "Anonymous",
        "privacy": True,
        "transfer_caller_display_name": "Sales & Support",
        "call_timeout": 300,
        **webhook("transfer_complete"),
        **CREDENTIALS,
        **FALLBACK_CREDENTIALS,
        **TAG,
        "diversion_treatment": "stack",
        "diversion_reason": "do-not-disturb",
    },
    PhoneNumber: {**TRANSFER_LEG, "uui": "bXktdXVp;encoding=base64"},
    SipUri: {"uui": "bXktdXVp;encoding=base64", **TRANSFER_LEG},
    Bridge: {
        **webhook("bridge_complete"),
        **webhook("bridge_target_complete"),
        **CREDENTIALS,
        **FALLBACK_CREDENTIALS,
        **TAG,
    },
    Conference: {
        "mute": True,
        "hold": False,
        "call_ids_to_coach": "c-1,c-2",
        **webhook("conference_event"),
        **CREDENTIALS,
        **FALLBACK_CREDENTIALS,
        **TAG,
        "callback_timeout": 12.5,
    },
    Forward: {
        "to": SIP,
        "from_": "+442071234567",
        "privacy": True,
        "caller_display_name": "Front desk",
        "call_timeout": 1,
        "diversion_treatment": "propagate",
        "diversion_reason": "user-busy",
        "uui": "YWJj;encoding=base64",
    },
    Redirect: {**webhook("redirect"), **CREDENTIALS, **FALLBACK_CREDENTIALS, **TAG},
    Hangup: {},
    Pause: {"duration": 0.1},
    Ring: {"duration": 86400, "answer_call": False},
    SendDtmf: {"tone_duration": 50, "tone_interval": 4999.5},
    Record: {
        **webhook("record_complete"),
        **RECORDING_OUTPUT,
        **CREDENTIALS,
        **FALLBACK_CREDENTIALS,
        **TAG,
        "terminating_digits": "",
        "max_duration": 10800,
        "silence_timeout": 3,
        "file_format": "mp3",
        "recording_name": "voicemail",
    },
    StartRecording: {
        **RECORDING_OUTPUT,
        **CREDENTIALS,
        **TAG,
        "file_format": "wav",
        "multi_channel": True,
        "recording_name": "call",
    },
    PauseRecording: {},
    ResumeRecording: {},
    StopRecording: {},
    StartGather: {**webhook("dtmf", fallback=False), **CREDENTIALS, **TAG},
    StopGather: {},
    StartStream: {
        "destination": STREAM,
        "destination_username": "ws-user",
        "destination_password": "ws-secret",
        "name": "stream-1",
        "mode": "bidirectional",
        "tracks": "both",
        **webhook("stream_event", fallback=False),
        **CREDENTIALS,
    },
    StreamParam: {"name": "customer", "value": "42 & more"},
    StopStream: {"name": "stream-1", "wait": True},
    StartTranscription: {
        "name": "live",
        "tracks": "inbound",
        **webhook("transcription_event", fallback=False),
        **CREDENTIALS,
        "destination": STREAM,
        "stabilized": False,
        "detect_language": True,
        "preferred_languages": "en-US,es-US",
    },
    CustomParam: {"name": "customer", "value": "42"},
    StopTranscription: {"name": "live"},
    Tag: {},
    Refer: {**webhook("refer_complete", fallback=False), **TAG},
    Response: {},
    Bxml: {},
}

# Text and children each verb needs to be valid; a function, so each call is fresh.
CONTENT: dict[type[Verb], Callable[[], tuple[Any, ...]]] = {
    SpeakSentence: lambda: ("Hello",),
    PlayAudio: lambda: ("https://example.com/a.wav",),
    PhoneNumber: lambda: (NUMBER,),
    SipUri: lambda: (SIP,),
    Bridge: lambda: ("c-95ac8d6e-1a31c52e",),
    Conference: lambda: ("my-conf_1.a",),
    SendDtmf: lambda: ("12w#",),
    Tag: lambda: ("state",),
    Transfer: lambda: (PhoneNumber(NUMBER),),
    Refer: lambda: (SipUri(SIP),),
}
REQUIRED_ATTRIBUTES: dict[type[Verb], dict[str, Any]] = {
    Forward: {"to": NUMBER},
    Redirect: {"redirect_url": URL},
    StartGather: {"dtmf_url": URL},
    StartStream: {"destination": STREAM},
    StopStream: {"name": "stream-1"},
    StreamParam: {"name": "n", "value": "v"},
    CustomParam: {"name": "n", "value": "v"},
}
# Verbs that live only inside another verb, and how to wrap them.
PARENTS: dict[type[Verb], Callable[[Verb], Verb]] = {
    PhoneNumber: lambda verb: Transfer(verb),
    SipUri: lambda verb: Refer(verb),
    StreamParam: lambda verb: StartStream(verb, destination=STREAM),
    CustomParam: lambda verb: StartTranscription(verb),
}


def minimal(verb_class: type[Verb], **attributes: Any) -> Verb:
    """The smallest valid instance of ``verb_class``, plus ``attributes``."""
    content = CONTENT.get(verb_class, tuple)()
    return verb_class(*content, **{**REQUIRED_ATTRIBUTES.get(verb_class, {}), **attributes})


def document(verb: Verb) -> Response | Bxml:
    """A document holding ``verb`` (inside its parent verb if it needs one)."""
    if isinstance(verb, Response | Bxml):
        return verb
    wrap = PARENTS.get(type(verb))
    return Response(wrap(verb) if wrap else verb)


ATTRIBUTE_CASES = [
    (verb_class, python_name, value)
    for verb_class, values in ALL_ATTRIBUTES.items()
    for python_name, value in values.items()
]
