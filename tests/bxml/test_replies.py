"""Which callbacks take BXML, and which verbs their replies may hold (reference 4.4)."""

from __future__ import annotations

import pytest

import bxml
from bxml import (
    EVENT_TYPES,
    Bridge,
    BxmlError,
    Conference,
    Forward,
    Gather,
    Hangup,
    PauseRecording,
    PhoneNumber,
    PlayAudio,
    Redirect,
    Response,
    ResumeRecording,
    SpeakSentence,
    StartRecording,
    StopRecording,
    Tag,
    Transfer,
    check_reply,
    reply_expected,
)

BXML_EVENTS = [
    "initiate", "answer", "redirect", "gather", "transferAnswer", "transferComplete",
    "recordComplete", "recordingComplete", "bridgeComplete", "bridgeTargetComplete",
    "referComplete", "conferenceCreated", "conferenceRedirect", "conferenceMemberJoin",
    "conferenceMemberExit",
]  # fmt: skip
ASYNC_EVENTS = [
    "disconnect", "transferDisconnect", "conferenceCompleted", "recordingAvailable",
    "conferenceRecordingAvailable", "transcriptionAvailable", "dtmf", "machineDetectionComplete",
    "mediaStreamStarted", "mediaStreamRejected", "mediaStreamStopped",
    "realTimeTranscriptionStarted", "realTimeTranscriptionRejected",
    "realTimeTranscriptionStopped", "realTimeTranscriptionAvailable",
]  # fmt: skip
CONFERENCE_EVENTS = BXML_EVENTS[-4:]


def transfer():
    return Transfer(PhoneNumber("+15555550123"))


def test_event_types_are_exactly_the_known_ones():
    assert isinstance(EVENT_TYPES, frozenset)
    assert set(BXML_EVENTS) | set(ASYNC_EVENTS) == EVENT_TYPES


@pytest.mark.parametrize("event_type", BXML_EVENTS)
def test_bxml_webhooks_expect_a_reply(event_type):
    assert reply_expected(event_type) is True
    check_reply(Response(SpeakSentence("ok")), event_type)


@pytest.mark.parametrize("event_type", ASYNC_EVENTS)
def test_async_events_accept_no_document(event_type):
    assert reply_expected(event_type) is False
    check_reply(None, event_type)
    check_reply("", event_type)
    with pytest.raises(BxmlError, match=f"{event_type}: Bandwidth ignores the reply"):
        check_reply(Response(), event_type)
    with pytest.raises(BxmlError, match="ignores the reply"):
        check_reply(b"<Response><Hangup/></Response>", event_type)


@pytest.mark.parametrize("event_type", ["", "Answer", "answered", "recordingcomplete"])
def test_unknown_event_types_raise(event_type):
    with pytest.raises(BxmlError, match="unknown event type"):
        reply_expected(event_type)
    with pytest.raises(BxmlError, match="unknown event type"):
        check_reply(Response(), event_type)


@pytest.mark.parametrize(
    "verb", [Bridge("c-1"), Conference("c"), Forward(to="+15555550123"), transfer()]
)
def test_transfer_answer_forbids_verbs_that_move_the_call(verb):
    with pytest.raises(BxmlError, match=f"transferAnswer: {verb.name} is not allowed"):
        check_reply(Response(SpeakSentence("hi"), verb), "transferAnswer")
    check_reply(Response(verb), "answer")


def test_transfer_answer_allows_the_rest():
    check_reply(
        Response(Gather(SpeakSentence("Press 1")), Tag("t"), Redirect(redirect_url="/r"), Hangup()),
        "transferAnswer",
    )


ALLOWED_IN_CONFERENCE = [
    PlayAudio("/a.wav"),
    SpeakSentence("hi"),
    StartRecording(),
    StopRecording(),
    PauseRecording(),
    ResumeRecording(),
]


@pytest.mark.parametrize("event_type", CONFERENCE_EVENTS)
def test_conference_events_allow_only_audio_and_recording_verbs(event_type):
    check_reply(Response(*ALLOWED_IN_CONFERENCE), event_type)
    for verb in [Hangup(), Gather(), Tag("t"), transfer(), Redirect(redirect_url="/r")]:
        with pytest.raises(BxmlError, match=f"{event_type}: {verb.name} is not allowed"):
            check_reply(Response(SpeakSentence("hi"), verb), event_type)


def test_a_reply_needs_a_response_root():
    with pytest.raises(BxmlError, match=r"a reply needs a Response root, got Bxml"):
        check_reply(bxml.Bxml(Hangup()), "answer")
    with pytest.raises(BxmlError, match="the reply must be a bxml Response, got int"):
        check_reply(42, "answer")  # type: ignore[arg-type]


def test_rendered_replies_are_parsed_first():
    check_reply(Response(SpeakSentence("ok")).to_bxml(), "gather")
    with pytest.raises(BxmlError, match="transferAnswer: Transfer is not allowed"):
        check_reply(Response(transfer()).to_bxml().encode(), "transferAnswer")
    with pytest.raises(BxmlError, match="not well-formed"):
        check_reply("<Response>", "answer")
