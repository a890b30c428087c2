"""A voicemail flow for the call-page browser tests: a greeting, then a recording whose
``recordComplete`` and ``recordingAvailable`` come back to the app."""

from __future__ import annotations

from bxml import Hangup, Record, Response, SpeakSentence
from callbacks import CallbackEvent, Flow

voicemail = Flow("voicemail")


@voicemail.on("answer")
def greet(event: CallbackEvent) -> Response:
    return Response(
        voicemail.tag({"step": "recording"}),
        SpeakSentence("Please leave a message after the tone."),
        Record(
            record_complete_url=voicemail.url("recordComplete"),
            recording_available_url=voicemail.url("recordingAvailable"),
            max_duration=4,
            file_format="wav",
            **voicemail.credentials(),
        ),
    )


@voicemail.on("recordComplete")
def recorded(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("Thank you. Goodbye."), Hangup())
