"""A recorded conference line: every caller to the line's number joins one conference.

A caller rings ``+12025550170`` (``initiate``), or a call placed from that number is answered
(``answer``; its plain-text tag, if any, names the room): they hear a short prompt and join
the conference.  The conference's events come back to this flow (``conferenceEventUrl``
is our ``/callbacks/conference``; the framework keeps the flow in the conference's tag):
``conferenceCreated`` starts recording the conference, whose ``conferenceRecordingAvailable``
comes back here too; the file is in the Conferences API.  When the conference ends (the
last caller hangs up, or ``status: completed`` through the API) each caller hears goodbye.
"""

from __future__ import annotations

from bxml import Conference, Response, SpeakSentence, StartRecording
from callbacks import CallbackEvent, Flow

LINE_NUMBER = "+12025550170"
ROOM = "conference-line"

line = Flow("conference-line", numbers=[LINE_NUMBER])


@line.on("initiate")
@line.on("answer")
def join(event: CallbackEvent) -> Response:
    return Response(
        SpeakSentence("You are joining the conference. This call is recorded."),
        Conference(
            event.tag or ROOM,
            conference_event_url=line.url("conference"),
            **line.credentials(),
        ),
        SpeakSentence("The conference has ended. Goodbye."),
    )


@line.on("conferenceCreated")
def record(event: CallbackEvent) -> Response:
    return Response(
        StartRecording(recording_available_url=line.url("conference"), **line.credentials())
    )


@line.on("conferenceMemberJoin")
def welcome(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("A caller joined."))
