"""parse(to_bxml(x)) == x for every verb and every attribute, and attribute order."""

from __future__ import annotations

import inspect

import pytest

import bxml
from bxml import Verb
from bxml.node import Node
from tests.bxml.cases import ALL_ATTRIBUTES, ATTRIBUTE_CASES, document, minimal

VERB_CLASSES = sorted(Verb.registry.values(), key=lambda cls: cls.name)


def test_the_tables_cover_every_verb_and_every_attribute():
    assert set(ALL_ATTRIBUTES) == set(VERB_CLASSES)
    for verb_class, values in ALL_ATTRIBUTES.items():
        assert list(values) == [row[0] for row in verb_class.attributes], verb_class.name


def test_every_verb_of_the_reference_is_importable_from_bxml():
    names = {
        "Response", "Bxml", "Bridge", "Conference", "Forward", "Gather", "Hangup", "Pause",
        "PauseRecording", "PlayAudio", "Record", "Redirect", "Refer", "ResumeRecording", "Ring",
        "SendDtmf", "SpeakSentence", "StartGather", "StartRecording", "StartStream",
        "StreamParam", "StartTranscription", "CustomParam", "StopGather", "StopRecording",
        "StopStream", "StopTranscription", "Tag", "Transfer", "PhoneNumber", "SipUri",
    }  # fmt: skip
    assert {cls.name for cls in VERB_CLASSES} == names
    for name in names:
        assert getattr(bxml, name).name == name


@pytest.mark.parametrize("verb_class", VERB_CLASSES, ids=lambda cls: cls.name)
def test_minimal_verb_round_trips(verb_class):
    doc = document(minimal(verb_class))
    assert bxml.parse(doc.to_bxml()) == doc


@pytest.mark.parametrize(
    ("verb_class", "python_name", "value"),
    ATTRIBUTE_CASES,
    ids=[f"{cls.name}.{name}" for cls, name, _ in ATTRIBUTE_CASES],
)
def test_each_attribute_round_trips(verb_class, python_name, value):
    verb = minimal(verb_class, **{python_name: value})
    doc = document(verb)
    parsed = bxml.parse(doc.to_bxml())
    assert parsed == doc
    xml_name = verb.xml_name(python_name)
    assert verb.attrs[xml_name] == value
    assert type(verb.attrs[xml_name]) is type(value)
    assert xml_name in doc.to_bxml()


@pytest.mark.parametrize("verb_class", VERB_CLASSES, ids=lambda cls: cls.name)
def test_all_attributes_at_once_render_in_table_order(verb_class):
    values = ALL_ATTRIBUTES[verb_class]
    # Keyword order must not matter: pass them reversed.
    verb = minimal(verb_class, **dict(reversed(list(values.items()))))
    doc = document(verb)
    assert bxml.parse(doc.to_bxml()) == doc
    expected = [verb.xml_name(name) for name in values]
    assert list(verb.attrs) == expected
    assert list(verb.attrs.values()) == list(values.values())


@pytest.mark.parametrize("verb_class", VERB_CLASSES, ids=lambda cls: cls.name)
def test_constructor_signature_lists_every_attribute(verb_class):
    parameters = inspect.signature(verb_class).parameters
    for python_name, *_ in verb_class.attributes:
        assert parameters[python_name].default is None
        assert parameters[python_name].kind is inspect.Parameter.KEYWORD_ONLY


def test_none_leaves_an_attribute_out():
    assert bxml.Gather(max_digits=None, gather_url="/g").attrs == {"gatherUrl": "/g"}


def test_numbers_render_without_trailing_zero_and_read_back_typed():
    pause = bxml.Pause(duration=2.0)
    assert 'duration="2"' in bxml.Response(pause).to_bxml()
    assert (
        bxml.Response(bxml.Pause(duration=2.5))
        .to_bxml()
        .endswith('<Response><Pause duration="2.5"/></Response>')
    )
    assert (
        bxml.Response(bxml.Pause(duration=1e-1)).to_bxml().endswith('duration="0.1"/></Response>')
    )
    parsed = bxml.parse('<Response><Pause duration="2.50"/><Ring answerCall="true"/></Response>')
    assert parsed[0].attrs == {"duration": 2.5}
    assert parsed[1].attrs == {"answerCall": True}
    assert bxml.Gather(first_digit_timeout=0.000015).attrs == {"firstDigitTimeout": 0.000015}
    assert (
        'firstDigitTimeout="0.000015"'
        in bxml.Response(bxml.Gather(first_digit_timeout=0.000015)).to_bxml()
    )


@pytest.mark.parametrize("verb_class", VERB_CLASSES, ids=lambda cls: cls.name)
def test_verbs_are_slotted_so_a_typo_fails(verb_class):
    verb = minimal(verb_class)
    assert isinstance(verb, Node)
    with pytest.raises(AttributeError):
        verb.txt = "typo"
