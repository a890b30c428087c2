"""Read access for consumers: name, text, attrs, children; roots as sequences; equality."""

from __future__ import annotations

import threading

import pytest

import bxml
from bxml import (
    Bxml,
    BxmlError,
    Gather,
    Hangup,
    Pause,
    PhoneNumber,
    PlayAudio,
    Response,
    SpeakSentence,
    Tag,
    Transfer,
    ssml,
)


def test_issue_example():
    doc = Response(
        SpeakSentence("Hello", voice="julie"),
        Gather(PlayAudio("https://a.example/b.wav"), gather_url="/gather", max_digits=3),
    )
    assert doc.to_bxml() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>'
        '<SpeakSentence voice="julie">Hello</SpeakSentence>'
        '<Gather gatherUrl="/gather" maxDigits="3"><PlayAudio>https://a.example/b.wav</PlayAudio>'
        "</Gather></Response>"
    )
    speak, gather = doc
    assert (speak.name, speak.text, speak.attrs, speak.children) == (
        "SpeakSentence",
        "Hello",
        {"voice": "julie"},
        [],
    )
    assert (gather.name, gather.text) == ("Gather", None)
    assert gather.attrs == {"gatherUrl": "/gather", "maxDigits": 3}
    assert gather.children == [PlayAudio("https://a.example/b.wav")]


def test_roots_are_sequences_of_verbs():
    doc = Response(Tag("t"), Hangup())
    assert len(doc) == 2
    assert doc[0] == Tag("t") and doc[-1] == Hangup()
    assert [verb.name for verb in doc] == ["Tag", "Hangup"]
    assert len(Response()) == 0
    assert (doc.name, doc.text, doc.attrs) == ("Response", None, {})


def test_text_of_each_kind_of_verb():
    assert Tag().text == "" and Tag("").text == ""
    assert Hangup().text is None
    assert PhoneNumber("+15555550123").text == "+15555550123"
    assert SpeakSentence("a ", ssml.Emphasis("b"), " c").text == "a b c"


def test_attrs_and_children_are_copies():
    gather = Gather(SpeakSentence("x"), max_digits=2)
    gather.attrs["maxDigits"] = 9
    gather.children.append(Hangup())
    assert gather.attrs == {"maxDigits": 2}
    assert len(gather.children) == 1


def test_append_is_checked_like_the_constructor():
    doc = Response()
    doc.append(SpeakSentence("Hi"))
    gather = Gather(gather_url="/g")
    doc.append(gather)
    gather.append(PlayAudio("/a.wav"))  # after placing: still reaches the document
    assert bxml.parse(doc.to_bxml()) == Response(
        SpeakSentence("Hi"), Gather(PlayAudio("/a.wav"), gather_url="/g")
    )
    with pytest.raises(BxmlError, match="cannot contain PhoneNumber"):
        doc.append(PhoneNumber("+15555550123"))
    with pytest.raises(BxmlError, match="Gather: cannot contain Gather"):
        gather.append(gather)
    assert len(doc) == 2


def test_a_verb_placed_in_two_documents_renders_in_both_and_then_refuses_appends():
    transfer = Transfer(PhoneNumber("+15555550123"))
    first, second = Response(transfer), Bxml(transfer)
    assert "<PhoneNumber>+15555550123</PhoneNumber>" in first.to_bxml()
    assert "<PhoneNumber>+15555550123</PhoneNumber>" in second.to_bxml()
    with pytest.raises(BxmlError, match="placed in two parents"):
        transfer.append(PhoneNumber("+15555550124"))
    twice = Response(Hangup(), Hangup())
    hangup = twice[0]
    assert Response(hangup, hangup).to_bxml().count("<Hangup/>") == 2


def test_equality():
    assert Response(Pause(duration=2)) == Response(Pause(duration=2.0))
    assert Response(Pause(duration=2)) != Response(Pause(duration=3))
    assert Response(Hangup()) != Bxml(Hangup())
    assert Hangup() != "Hangup"
    with pytest.raises(TypeError):
        hash(Hangup())


def test_repr_reads_like_the_code_that_built_it():
    doc = Response(
        SpeakSentence("Hi ", ssml.Break(time="1s"), voice="julie"),
        Transfer(PhoneNumber("+15555550123", tag="t"), call_timeout=20),
        Tag(),
    )
    assert repr(doc) == (
        "Response(SpeakSentence('Hi ', Break(time='1s'), voice='julie'), "
        "Transfer(PhoneNumber('+15555550123', tag='t'), call_timeout=20), Tag(''))"
    )
    namespace = {name: getattr(bxml, name) for name in bxml.__all__}
    namespace.update(vars(ssml))
    assert eval(repr(doc), namespace) == doc  # noqa: S307 (our own repr, in a test)


def test_package_docstring_documents_read_access():
    for word in ("verb.name", "verb.text", "verb.attrs", "verb.children", "len()", "parse"):
        assert word in (bxml.__doc__ or "")


def test_threads_build_render_and_parse_independently():
    def build():
        return Response(
            SpeakSentence("Hello & welcome"),
            Gather(SpeakSentence("Press 1"), gather_url="/g", max_digits=1),
            Transfer(PhoneNumber("+15555550123"), call_timeout=20),
        )

    expected = build().to_bxml()
    failures = []

    def work():
        for _ in range(300):
            out = build().to_bxml()
            if out != expected or bxml.parse(out) != build():
                failures.append(out)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_copy_shares_nothing_that_can_change():
    from bxml import Gather, PhoneNumber, Response, SpeakSentence, Tag, Transfer, rewrite_tags

    original = Response(
        Tag("a"),
        Gather(SpeakSentence("Hi"), gather_url="https://example.com/g", tag="g"),
        Transfer(PhoneNumber("+12025550142")),
    )
    rendered = original.to_bxml()
    twin = original.copy()
    assert twin == original and twin.to_bxml() == rendered
    rewrite_tags(twin, lambda value, verb: "changed")
    twin.append(Tag("more"))
    twin[1].append(SpeakSentence("More"))
    assert original.to_bxml() == rendered and len(original) == 3 and len(original[1].children) == 1
    assert [verb.name for verb in twin] == ["Tag", "Gather", "Transfer", "Tag"]
    assert twin[2].children[0].attrs["tag"] == "changed"


def test_a_lead_verb_renders_first_and_leaves_the_document_as_it_is():
    shared = Response(SpeakSentence("Hello"), Hangup())
    before = shared.to_bxml()
    first = bxml.parse(shared.to_bxml(lead=Tag("call-1")))
    second = bxml.parse(shared.to_bxml(lead=Tag("call-2")))
    assert first == Response(Tag("call-1"), SpeakSentence("Hello"), Hangup())
    assert second == Response(Tag("call-2"), SpeakSentence("Hello"), Hangup())
    assert shared.to_bxml() == before
    assert bxml.parse(Response().to_bxml(lead=Tag("only"))) == Response(Tag("only"))


def test_a_lead_verb_is_checked_as_a_child_is():
    with pytest.raises(BxmlError, match=r"Response: cannot contain PhoneNumber"):
        Response(Hangup()).to_bxml(lead=PhoneNumber("+15555550123"))
    # The size limit counts the lead too.
    near = Response(*[SpeakSentence("x" * 1000) for _ in range(63)])
    assert len(near.to_bxml().encode()) < 65536
    with pytest.raises(BxmlError, match=r"over the 64 KB"):
        near.to_bxml(lead=SpeakSentence("z" * 1000))
