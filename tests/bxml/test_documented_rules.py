"""Rules Bandwidth's docs state in prose: uui encodings, credentials only over TLS, and the
documented locales; checked when building and when parsing."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

import bxml

NUMBER = "+15555550123"
JWT = "eyJhbGciOiJIUzI1NiJ9.WyJoaSJd.-znkjYyCkgz4djmHUPSXl9YrJ6Nix_XvmlwKGFh5ERM"
PLAIN = "http://cb.example/x"


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: bxml.SipUri("sip:a@b.example", uui="aGVsbG8="), r"SipUri: uui value 1 must be"),
        (
            lambda: bxml.Forward(to=NUMBER, uui="aGVsbG8=;encoding=hex"),
            r"Forward: uui value 1 must",
        ),
        (lambda: bxml.Forward(to=NUMBER, uui="a;encoding=base64;x=1"), r"value 1 must"),
        (
            lambda: bxml.PhoneNumber(NUMBER, uui=f"{JWT};encoding=jwt,%%;encoding=base64"),
            r"value 2",
        ),
        (lambda: bxml.SipUri("sip:a@b.example", uui="!;encoding=jwt"), r"not valid jwt data"),
        (lambda: bxml.Forward(to=NUMBER, uui="YQ==;encoding=base64," * 20), r"at most 256"),
        (
            lambda: bxml.Record(record_complete_url=PLAIN, username="u"),
            r"Record: recordCompleteUrl must use https when username/password",
        ),
        (
            lambda: bxml.Record(transcription_available_url=PLAIN, password="p"),
            r"transcriptionAvailableUrl must use https",
        ),
        (
            lambda: bxml.Record(record_complete_fallback_url=PLAIN, fallback_username="u"),
            r"recordCompleteFallbackUrl must use https when fallbackUsername",
        ),
        (
            lambda: bxml.StartStream(
                destination="wss://s.example", stream_event_url=PLAIN, password="p"
            ),
            r"StartStream: streamEventUrl must use https",
        ),
        (
            lambda: bxml.StartStream(destination="ws://s.example", destination_password="p"),
            r"destination must use wss when destinationUsername/destinationPassword",
        ),
        (
            lambda: bxml.PlayAudio("http://a.example/a.wav", username="u"),
            r"PlayAudio: text \(the URL\) must use https",
        ),
        (
            lambda: bxml.Gather(partial_result_callback=PLAIN, username="u"),
            r"partialResultCallback must use https",
        ),
        (
            lambda: bxml.Bridge("c-1", bridge_target_complete_url=PLAIN, username="u"),
            r"bridgeTargetCompleteUrl",
        ),
        (
            lambda: bxml.Conference("c", conference_event_url="HTTP://cb.example/x", password="p"),
            r"conferenceEventUrl",
        ),
        (
            lambda: bxml.Transfer(
                bxml.PhoneNumber(NUMBER), transfer_complete_url=PLAIN, username="u"
            ),
            r"transferCompleteUrl",
        ),
        (
            lambda: bxml.PhoneNumber(NUMBER, transfer_disconnect_url=PLAIN, username="u"),
            r"transferDisconnectUrl",
        ),
        (lambda: bxml.Redirect(redirect_url=PLAIN, password="p"), r"redirectUrl"),
        (lambda: bxml.StartGather(dtmf_url=PLAIN, username="u"), r"dtmfUrl"),
        (
            lambda: bxml.StartRecording(recording_available_url=PLAIN, username="u"),
            r"recordingAvailableUrl",
        ),
        (
            lambda: bxml.StartTranscription(transcription_event_url=PLAIN, username="u"),
            r"transcriptionEventUrl",
        ),
        (
            lambda: bxml.SpeakSentence("hi", locale="xx_YY"),
            r"SpeakSentence: locale must be one of en_US",
        ),
        (lambda: bxml.SpeakSentence("hi", locale="en-US"), r"locale must be one of"),
    ],
)
def test_documented_rules_refuse(build, match):
    with pytest.raises(bxml.BxmlError, match=match):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: bxml.SipUri(
            "sip:a@b.example", uui=f"{JWT};encoding=jwt,aGVsbG8gd29ybGQ;encoding=base64"
        ),
        lambda: bxml.Forward(to=NUMBER, uui="aGVsbG8=;purpose=call-info;encoding=base64"),
        lambda: bxml.Record(record_complete_url="https://cb.example/x", username="u", password="p"),
        # Relative URLs take the scheme of the URL that served the document.
        lambda: bxml.Record(record_complete_url="/recorded", username="u"),
        # Fallback credentials are for the fallback URL only.
        lambda: bxml.Record(record_complete_url=PLAIN, fallback_username="u"),
        # Loopback hosts: local development and the sandbox.
        lambda: bxml.Redirect(redirect_url="http://127.0.0.1:8000/next", username="u"),
        lambda: bxml.Redirect(redirect_url="http://localhost/next", password="p"),
        lambda: bxml.PlayAudio("http://[::1]:8000/a.wav", username="u"),
        lambda: bxml.StartStream(destination="wss://s.example", destination_username="u"),
        lambda: bxml.PlayAudio("http://a.example/a.wav"),
        *(
            lambda locale=locale: bxml.SpeakSentence("hi", locale=locale)
            for locale in ("en_US", "en_UK", "de", "es_MX")
        ),
    ],
)
def test_documented_rules_accept(build):
    build()


@pytest.mark.parametrize(
    ("document", "match"),
    [
        (
            '<Response><Transfer><SipUri uui="aGk=">sip:a@b.example</SipUri></Transfer></Response>',
            r"SipUri: uui value 1 must",
        ),
        (
            '<Response><Forward to="+15555550123" uui="6869;encoding=hex"/></Response>',
            r"Forward: uui",
        ),
        (
            f'<Response>\n<Record recordCompleteUrl="{PLAIN}" username="u" password="p"/></Response>',
            r"Record: recordCompleteUrl must use https",
        ),
        (
            '<Response><StartStream destination="wss://s.example" streamEventUrl="http://e.example/x" username="u"/></Response>',
            r"StartStream: streamEventUrl must use https",
        ),
        ('<Response><SpeakSentence locale="zz_ZZ">hi</SpeakSentence></Response>', r"locale"),
    ],
)
def test_parsed_documents_are_held_to_the_same_rules(document, match):
    with pytest.raises(bxml.BxmlError, match=match) as raised:
        bxml.parse(document)
    assert raised.value.line is not None


def test_create_call_and_bxml_share_the_uui_rule_with_their_own_encodings():
    from calls.schemas import CreateCallSchema

    hex_uui = "6869;encoding=hex"
    base = {"to": NUMBER, "from": NUMBER, "applicationId": "a", "answerUrl": "https://a.example"}
    assert CreateCallSchema().load({**base, "uui": hex_uui})["uui"] == hex_uui
    with pytest.raises(bxml.BxmlError, match=r"encoding=jwt\|base64 \(RFC 7433\)"):
        bxml.Forward(to=NUMBER, uui=hex_uui)
    for bad in ("aGk=", "aGk=;encoding=base64;encoding=jwt"):
        with pytest.raises(ValidationError, match="RFC 7433"):
            CreateCallSchema().load({**base, "uui": bad})
        with pytest.raises(bxml.BxmlError, match="RFC 7433"):
            bxml.Forward(to=NUMBER, uui=bad)
