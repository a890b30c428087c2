"""Text and attribute values can never become markup (the Bandwidth SDK's regex can)."""

from __future__ import annotations

import pytest
from lxml import etree

import bxml
from bxml import PhoneNumber, Redirect, Response, SpeakSentence, Tag, Transfer, ssml

PAYLOADS = [
    "</SpeakSentence><Transfer><PhoneNumber>+882345</PhoneNumber></Transfer><SpeakSentence>",
    '" onx="',
    "]]>",
    "<b and c>",
    "a <b and c> d",
    "&amp; &lt; &#x3C; &x;",
    "<![CDATA[<Hangup/>]]>",
    "<!-- comment --><?pi x?>",
    "<?xml version='1.0'?>",
]


def tags_of(document: str) -> list[str]:
    return [element.tag for element in etree.fromstring(document.encode()).iter()]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_stays_text(payload):
    doc = Response(SpeakSentence(f"Hello {payload}"), Tag(payload))
    out = doc.to_bxml()
    assert tags_of(out) == ["Response", "SpeakSentence", "Tag"]
    parsed = bxml.parse(out)
    assert parsed == doc
    assert parsed[0].text == f"Hello {payload}"
    assert parsed[1].text == payload


@pytest.mark.parametrize("payload", PAYLOADS)
def test_attribute_values_stay_values(payload):
    doc = Response(
        SpeakSentence("Hi"),
        Redirect(redirect_url="/next", tag=payload, username=payload, password=payload),
    )
    out = doc.to_bxml()
    assert tags_of(out) == ["Response", "SpeakSentence", "Redirect"]
    parsed = bxml.parse(out)
    assert parsed == doc
    assert parsed[1].attrs["tag"] == payload
    assert list(parsed[1].attrs) == ["redirectUrl", "username", "password", "tag"]


def test_sdk_regression_transfer_in_speech_is_not_a_transfer():
    text = "Hello </SpeakSentence><Transfer><PhoneNumber>+882345</PhoneNumber></Transfer><SpeakSentence>"
    out = Response(SpeakSentence(text)).to_bxml()
    assert "<Transfer>" not in out
    assert "&lt;/SpeakSentence&gt;&lt;Transfer&gt;" in out
    assert [verb.name for verb in bxml.parse(out)] == ["SpeakSentence"]


def test_ssml_elements_hold_text_as_text():
    doc = Response(SpeakSentence("a ", ssml.Emphasis("</emphasis><Transfer/>"), " b"))
    out = doc.to_bxml()
    assert tags_of(out) == ["Response", "SpeakSentence", "emphasis"]
    assert bxml.parse(out) == doc


def test_from_ssml_cannot_close_the_speak_sentence():
    with pytest.raises(bxml.BxmlError, match="not well-formed"):
        SpeakSentence.from_ssml(
            "Hi</SpeakSentence><Transfer><PhoneNumber>+882345</PhoneNumber></Transfer>"
            "<SpeakSentence>"
        )
    with pytest.raises(bxml.BxmlError, match="unknown SSML element 'Transfer'"):
        SpeakSentence.from_ssml("<Transfer><PhoneNumber>+882345</PhoneNumber></Transfer>")


def test_a_caller_id_cannot_smuggle_markup():
    with pytest.raises(bxml.BxmlError, match=r"transferCallerId must be an E\.164"):
        Transfer(PhoneNumber("+15555550123"), transfer_caller_id='+1"><Hangup/>')
