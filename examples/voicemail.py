"""A voicemail line: the caller (or the person a call from this number reaches) leaves a
message, which is recorded and transcribed.

Every callback of the recording comes back to this flow: ``recordComplete`` (the reply ends
the call), then ``recordingAvailable`` and ``transcriptionAvailable``, which are stored
like every callback (the dashboard shows them, with the ``mediaUrl`` and the text).
"""

from __future__ import annotations

from bxml import Hangup, Record, Response, SpeakSentence
from callbacks import CallbackEvent, Flow

NUMBER = "+12025550166"
voicemail = Flow("voicemail", numbers=[NUMBER])


@voicemail.on("initiate")  # someone calls the voicemail number
@voicemail.on("answer")  # or a call placed from it is answered
def greet(event: CallbackEvent) -> Response:
    return Response(
        SpeakSentence("Please leave a message after the tone."),
        Record(
            record_complete_url=voicemail.url("recordComplete"),
            recording_available_url=voicemail.url("recordingAvailable"),
            transcribe=True,
            transcription_available_url=voicemail.url("transcriptionAvailable"),
            max_duration=60,
            silence_timeout=3,
            **voicemail.credentials(),
        ),
    )


@voicemail.on("recordComplete")
def recorded(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("Thank you. Goodbye."), Hangup())
