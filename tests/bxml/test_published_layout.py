"""Bandwidth's published examples put identifiers, numbers and URLs on their own indented
line; parsing trims that layout from them and keeps speech and tag text as written."""

from __future__ import annotations

import pytest

import bxml
from bxml import (
    Bridge,
    Conference,
    PhoneNumber,
    PlayAudio,
    Refer,
    Response,
    SendDtmf,
    SipUri,
    SpeakSentence,
    Tag,
    Transfer,
)

CALL_ID = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-51633ec68f8d"

# The layout of Bandwidth's BXML examples: text content alone on an indented line.
PUBLISHED = f"""<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <SpeakSentence>Connecting you to the other party.</SpeakSentence>
    <Bridge bridgeCompleteUrl="https://bridge.url/nextBXMLForSecondCall">
        {CALL_ID}
    </Bridge>
</Response>
"""


def test_the_published_bridge_example_parses():
    assert bxml.parse(PUBLISHED) == Response(
        SpeakSentence("Connecting you to the other party."),
        Bridge(CALL_ID, bridge_complete_url="https://bridge.url/nextBXMLForSecondCall"),
    )


def _indented(tag: str, text: str) -> str:
    return f"<{tag}>\n\t\t{text}\r\n    </{tag}>"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (
            _indented("PlayAudio", "https://audio.url/audio1.wav"),
            PlayAudio("https://audio.url/audio1.wav"),
        ),
        (_indented("Conference", "my-conference"), Conference("my-conference")),
        (_indented("SendDtmf", "12w34"), SendDtmf("12w34")),
        (
            "<Transfer>" + _indented("PhoneNumber", "+15555555555") + "</Transfer>",
            Transfer(PhoneNumber("+15555555555")),
        ),
        (
            "<Transfer>" + _indented("SipUri", "sip:user@server.com") + "</Transfer>",
            Transfer(SipUri("sip:user@server.com")),
        ),
        (
            "<Refer>" + _indented("SipUri", "sip:user@server.com") + "</Refer>",
            Refer(SipUri("sip:user@server.com")),
        ),
    ],
    ids=["PlayAudio", "Conference", "SendDtmf", "PhoneNumber", "SipUri", "Refer-SipUri"],
)
def test_identifier_numbers_and_urls_are_trimmed(markup, expected):
    assert bxml.parse(f"<Response>{markup}</Response>") == Response(expected)


def test_speech_and_tag_text_stay_as_written():
    doc = bxml.parse(
        "<Response>\n  <SpeakSentence>\n    Hello  there\n  </SpeakSentence>\n"
        "  <Tag>  spaced  </Tag>\n</Response>"
    )
    speak, tag = doc
    assert speak.text == "\n    Hello  there\n  "
    assert tag.text == "  spaced  "
    assert doc == Response(SpeakSentence("\n    Hello  there\n  "), Tag("  spaced  "))


@pytest.mark.parametrize(
    ("markup", "match"),
    [
        ("<Bridge>\n   \n</Bridge>", "Bridge: text must not be empty"),
        ("<Bridge>\n  c-1 c-2\n</Bridge>", "call id without spaces"),
        ("<Conference>  my conf  </Conference>", "A-Z a-z 0-9"),
        ("<PlayAudio>\n  https://a.example/x y.wav\n</PlayAudio>", "without spaces"),
    ],
)
def test_inner_spaces_are_still_refused(markup, match):
    with pytest.raises(bxml.BxmlError, match=match):
        bxml.parse(f"<Response>{markup}</Response>")
