"""Property-based checks: any text XML can carry round-trips; nothing else escapes BxmlError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bxml
from bxml import BxmlError, Pause, Redirect, Response, SpeakSentence, Tag, ssml

BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters XML 1.0 cannot carry: C0 controls other than tab/LF/CR, U+FFFE/U+FFFF and lone
# surrogates (the last cannot even be encoded as UTF-8).
FORBIDDEN = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff"]
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
xml_text = st.text(st.characters(codec="utf-8", exclude_characters="".join(FORBIDDEN)))
spoken_text = xml_text.filter(lambda text: text.strip())
bad_text = st.tuples(xml_text, st.one_of(st.sampled_from(FORBIDDEN), SURROGATES), xml_text).map(
    "".join
)


@BOUNDED
@given(spoken_text)
def test_any_speakable_text_round_trips(text):
    doc = Response(SpeakSentence(text))
    parsed = bxml.parse(doc.to_bxml())
    assert parsed == doc
    assert parsed[0].text == text


@BOUNDED
@given(xml_text.filter(lambda text: len(text) <= 256))
def test_any_tag_text_and_attribute_value_round_trips(text):
    doc = Response(Tag(text), Redirect(redirect_url="/next", tag=text, password=text))
    parsed = bxml.parse(doc.to_bxml().encode("utf-8"))
    assert parsed == doc
    assert parsed[0].text == text
    assert parsed[1].attrs["tag"] == text
    assert parsed[1].attrs["password"] == text


@BOUNDED
@given(
    st.lists(
        st.one_of(
            xml_text,
            xml_text.filter(str.strip).map(lambda text: ssml.Emphasis(text, level="strong")),
            st.just(ssml.Break(time="250ms")),
            xml_text.filter(str.strip).map(lambda text: ssml.SayAs(text, interpret_as="digits")),
        ),
        min_size=1,
        max_size=6,
    ).filter(lambda items: any(isinstance(i, str) and i.strip() for i in items))
)
def test_mixed_ssml_content_round_trips(content):
    doc = Response(SpeakSentence(*content))
    parsed = bxml.parse(doc.to_bxml())
    assert parsed == doc
    assert parsed[0].content == doc[0].content
    assert parsed[0].text == "".join(i if isinstance(i, str) else i.text for i in content)


@BOUNDED
@given(st.floats(min_value=0.1, max_value=86400))
def test_any_number_in_range_round_trips_exactly(seconds):
    doc = Response(Pause(duration=seconds))
    assert bxml.parse(doc.to_bxml())[0].attrs["duration"] == seconds


@BOUNDED
@given(bad_text)
def test_text_xml_cannot_carry_raises_bxml_error(text):
    with pytest.raises(BxmlError, match=r"cannot carry|not valid Unicode"):
        Response(SpeakSentence("x" + text))
    with pytest.raises(BxmlError):
        Tag(text[:256])
    with pytest.raises(BxmlError):
        Redirect(redirect_url="/next", tag=text[:256])


@BOUNDED
@given(st.text())
def test_arbitrary_text_builds_or_raises_bxml_error(text):
    try:
        doc = Response(SpeakSentence(text), Tag(text[:256]))
    except BxmlError:
        return
    assert bxml.parse(doc.to_bxml()) == doc


@BOUNDED
@given(st.one_of(st.binary(max_size=3000), st.text(max_size=3000)))
def test_parse_of_arbitrary_input_raises_only_bxml_error(data):
    try:
        bxml.parse(data)
    except BxmlError:
        pass


TOKENS = [
    '<?xml version="1.0" encoding="UTF-8"?>', "<Response>", "</Response>", "<Bxml>", "</Bxml>",
    "<Gather", "</Gather>", ' maxDigits="', ' gatherUrl="', ' repeatCount="', '"', ">", "/>",
    "<SpeakSentence>", "</SpeakSentence>", "<emphasis>", "</emphasis>", '<break time="1s"/>',
    "<Transfer>", "</Transfer>", "<PhoneNumber>", "</PhoneNumber>", "+15555550123", "3", "99",
    "hello", " ", "\n", "&amp;", "&x;", "&#1;", "&#65;", "<!DOCTYPE r>", "<![CDATA[", "]]>",
    "<!--", "-->", "<Hangup/>", "<Tag>", "</Tag>", "\x00", "\ud800", "ñ", "<", "&",
]  # fmt: skip


@BOUNDED
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_parse_of_xml_like_input_raises_only_bxml_error(data):
    try:
        doc = bxml.parse(data)
    except BxmlError:
        return
    assert bxml.parse(doc.to_bxml()) == doc


@BOUNDED
@given(st.lists(st.sampled_from(TOKENS[5:]), max_size=30).map("".join))
def test_from_ssml_raises_only_bxml_error(markup):
    try:
        SpeakSentence.from_ssml(markup)
    except BxmlError:
        pass
