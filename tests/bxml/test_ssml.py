"""SSML is structure: typed elements, or an explicit string parsed against the allow-list."""

from __future__ import annotations

import pytest

import bxml
from bxml import BxmlError, Response, SpeakSentence, ssml


def test_built_ssml_parses_back_to_equal_structure():
    speak = SpeakSentence(
        "Hello ", ssml.Emphasis("there", level="strong"), "!", ssml.Break(strength="weak")
    )
    parsed = bxml.parse(Response(speak).to_bxml())[0]
    assert parsed == speak
    assert parsed.content == (
        "Hello ",
        ssml.Emphasis("there", level="strong"),
        "!",
        ssml.Break(strength="weak"),
    )
    assert parsed.text == "Hello there!"


def test_from_ssml_builds_the_same_tree_as_the_elements():
    built = SpeakSentence(
        "Say ",
        ssml.SayAs("123", interpret_as="digits"),
        " then ",
        ssml.Prosody(ssml.Emphasis("slowly"), rate="slow", volume="+6dB"),
        ssml.Lang("Bonjour", xml_lang="fr-FR"),
        voice="julie",
    )
    markup = (
        'Say <say-as interpret-as="digits">123</say-as> then '
        '<prosody volume="+6dB" rate="slow"><emphasis>slowly</emphasis></prosody>'
        '<lang xml:lang="fr-FR">Bonjour</lang>'
    )
    assert SpeakSentence.from_ssml(markup, voice="julie") == built


def test_from_ssml_reads_entities_cdata_and_skips_comments():
    speak = SpeakSentence.from_ssml("Tom &amp; Jerry <!-- note --><![CDATA[<not markup>]]>")
    assert speak.content == ("Tom & Jerry <not markup>",)
    assert "&lt;not markup&gt;" in Response(speak).to_bxml()


def test_plain_strings_are_never_markup():
    speak = SpeakSentence('Hi <emphasis level="strong">there</emphasis>')
    assert speak.content == ('Hi <emphasis level="strong">there</emphasis>',)
    assert "&lt;emphasis" in Response(speak).to_bxml()


def test_adjacent_strings_merge_and_empty_strings_vanish():
    speak = SpeakSentence("a", "", "b", ssml.Break(time="1s"), "", "c")
    assert speak.content == ("ab", ssml.Break(time="1s"), "c")
    assert bxml.parse(Response(speak).to_bxml())[0] == speak


def test_an_ssml_element_may_be_reused():
    pause = ssml.Break(time="1s")
    first, second = SpeakSentence("a", pause, "b"), SpeakSentence("c", pause, "d")
    out = Response(first, second).to_bxml()
    assert '<SpeakSentence>a<break time="1s"/>b</SpeakSentence>' in out
    assert '<SpeakSentence>c<break time="1s"/>d</SpeakSentence>' in out


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ssml.Break("x"), "break: holds no content"),
        (lambda: ssml.SayAs(ssml.Emphasis("1"), interpret_as="digits"), "say-as: holds text only"),
        (lambda: ssml.SayAs("1"), r"say-as: interpret-as is required \(interpret_as=...\)"),
        (lambda: ssml.Sub(" ", alias="x"), "sub: text must not be blank"),
        (lambda: ssml.Lang("Hola"), "lang: xml:lang is required"),
        (lambda: ssml.Lang("Hola", xml_lang="spanish!"), "xml:lang must look like fr-FR"),
        (lambda: ssml.Emphasis("x", level="loud"), "level must be one of strong"),
        (lambda: ssml.Prosody("x", rate="fast-ish"), "rate must be one of x-slow"),
        (lambda: ssml.Break(time=1), "time must be like 500ms or 1.5s, at most 10s, got int 1"),
        (lambda: ssml.Break(time="10001ms"), "at most 10s, got '10001ms'"),
        (lambda: ssml.Emphasis(bxml.Hangup()), "content must be strings or bxml.ssml elements"),
        (lambda: SpeakSentence(ssml.Break(time="1s")), "SpeakSentence: text must not be blank"),
        (lambda: SpeakSentence.from_ssml(b"<p>x</p>"), "from_ssml needs a string"),
        (lambda: SpeakSentence.from_ssml("<p>x</p"), "SpeakSentence: not well-formed XML"),
        (lambda: SpeakSentence.from_ssml('<p class="x">y</p>'), "p: unknown attribute 'class'"),
        (lambda: SpeakSentence.from_ssml("<speak>y</speak>"), "unknown SSML element 'speak'"),
        (
            lambda: SpeakSentence.from_ssml("<emphasis>" * 17 + "x" + "</emphasis>" * 17),
            "SSML nested deeper than 16 levels",
        ),
    ],
)
def test_invalid_ssml_raises(build, match):
    with pytest.raises(BxmlError, match=match):
        build()


def test_break_time_limits():
    assert ssml.Break(time="10s").attrs == {"time": "10s"}
    assert ssml.Break(time="10000ms").attrs == {"time": "10000ms"}
    assert ssml.Break(time="0.5s").attrs == {"time": "0.5s"}
