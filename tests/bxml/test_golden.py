"""Exact output, one golden string per verb class (escaping and UTF-8 included)."""

from __future__ import annotations

import pytest
from lxml import etree

from bxml import (
    Bridge,
    Bxml,
    Conference,
    CustomParam,
    Forward,
    Gather,
    Hangup,
    Pause,
    PauseRecording,
    PhoneNumber,
    PlayAudio,
    Record,
    Redirect,
    Refer,
    Response,
    ResumeRecording,
    Ring,
    SendDtmf,
    SipUri,
    SpeakSentence,
    StartGather,
    StartRecording,
    StartStream,
    StartTranscription,
    StopGather,
    StopRecording,
    StopStream,
    StopTranscription,
    StreamParam,
    Tag,
    Transfer,
    Verb,
    ssml,
)
from bxml.node import Node, make_element
from bxml.values import TAG

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# (verb class, document builder, expected output after the declaration)
GOLDEN = [
    (
        SpeakSentence,
        lambda: Response(
            SpeakSentence("Hola, señor & señora <García>", voice="esperanza", locale="es_MX")
        ),
        '<Response><SpeakSentence voice="esperanza" locale="es_MX">'
        "Hola, señor &amp; señora &lt;García&gt;</SpeakSentence></Response>",
    ),
    (
        PlayAudio,
        lambda: Response(
            PlayAudio("https://example.com/a.wav?x=1&y=2", username="u", password="p")
        ),
        '<Response><PlayAudio username="u" password="p">'
        "https://example.com/a.wav?x=1&amp;y=2</PlayAudio></Response>",
    ),
    (
        Gather,
        lambda: Response(
            Gather(
                SpeakSentence("Press 1 & 2"),
                PlayAudio("/beep.mp3"),
                gather_url="/gather",
                max_digits=3,
                terminating_digits="#",
                first_digit_timeout=5.5,
            )
        ),
        '<Response><Gather gatherUrl="/gather" terminatingDigits="#" maxDigits="3"'
        ' firstDigitTimeout="5.5"><SpeakSentence>Press 1 &amp; 2</SpeakSentence>'
        "<PlayAudio>/beep.mp3</PlayAudio></Gather></Response>",
    ),
    (
        Transfer,
        lambda: Response(
            Transfer(
                PhoneNumber("+15555550123"),
                SipUri("sip:bob@example.com"),
                transfer_caller_id="+15555550100",
                call_timeout=20,
            )
        ),
        '<Response><Transfer transferCallerId="+15555550100" callTimeout="20">'
        "<PhoneNumber>+15555550123</PhoneNumber><SipUri>sip:bob@example.com</SipUri>"
        "</Transfer></Response>",
    ),
    (
        PhoneNumber,
        lambda: Response(
            Transfer(
                PhoneNumber(
                    "+15555550123",
                    transfer_answer_url="/answer?a=1&b=2",
                    uui="eA==;encoding=base64",
                )
            )
        ),
        '<Response><Transfer><PhoneNumber transferAnswerUrl="/answer?a=1&amp;b=2" uui="eA==;encoding=base64">'
        "+15555550123</PhoneNumber></Transfer></Response>",
    ),
    (
        SipUri,
        lambda: Response(
            Transfer(SipUri("sip:bob@example.com", uui="YWJj;encoding=base64", tag="<t>"))
        ),
        '<Response><Transfer><SipUri uui="YWJj;encoding=base64" tag="&lt;t&gt;">'
        "sip:bob@example.com</SipUri></Transfer></Response>",
    ),
    (
        Bridge,
        lambda: Response(Bridge("c-95ac8d6e", bridge_complete_url="/bridged", tag="a&b")),
        '<Response><Bridge bridgeCompleteUrl="/bridged" tag="a&amp;b">c-95ac8d6e</Bridge>'
        "</Response>",
    ),
    (
        Conference,
        lambda: Response(Conference("sales-1", mute=True, callback_timeout=5)),
        '<Response><Conference mute="true" callbackTimeout="5">sales-1</Conference></Response>',
    ),
    (
        Forward,
        lambda: Response(
            Forward(
                to="+15555550123",
                from_="+15555550100",
                call_timeout=15,
                diversion_treatment="stack",
                diversion_reason="no-answer",
            )
        ),
        '<Response><Forward to="+15555550123" from="+15555550100" callTimeout="15"'
        ' diversionTreatment="stack" diversionReason="no-answer"/></Response>',
    ),
    (
        Redirect,
        lambda: Response(Redirect(redirect_url="/next?step=2&lang=es", redirect_method="GET")),
        '<Response><Redirect redirectUrl="/next?step=2&amp;lang=es" redirectMethod="GET"/>'
        "</Response>",
    ),
    (Hangup, lambda: Response(Hangup()), "<Response><Hangup/></Response>"),
    (Pause, lambda: Response(Pause(duration=2.0)), '<Response><Pause duration="2"/></Response>'),
    (
        Ring,
        lambda: Response(Ring(duration=1.5, answer_call=False)),
        '<Response><Ring duration="1.5" answerCall="false"/></Response>',
    ),
    (
        SendDtmf,
        lambda: Response(SendDtmf("12w34W#", tone_duration=100, tone_interval=200)),
        '<Response><SendDtmf toneDuration="100" toneInterval="200">12w34W#</SendDtmf></Response>',
    ),
    (
        Record,
        lambda: Response(
            Record(
                record_complete_url="/recorded", max_duration=30, file_format="mp3", transcribe=True
            )
        ),
        '<Response><Record recordCompleteUrl="/recorded" transcribe="true" maxDuration="30"'
        ' fileFormat="mp3"/></Response>',
    ),
    (
        StartRecording,
        lambda: Response(StartRecording(recording_available_url="/rec", multi_channel=True)),
        '<Response><StartRecording recordingAvailableUrl="/rec" multiChannel="true"/></Response>',
    ),
    (PauseRecording, lambda: Response(PauseRecording()), "<Response><PauseRecording/></Response>"),
    (
        ResumeRecording,
        lambda: Response(ResumeRecording()),
        "<Response><ResumeRecording/></Response>",
    ),
    (StopRecording, lambda: Response(StopRecording()), "<Response><StopRecording/></Response>"),
    (
        StartGather,
        lambda: Response(StartGather(dtmf_url="/dtmf", dtmf_method="POST")),
        '<Response><StartGather dtmfUrl="/dtmf" dtmfMethod="POST"/></Response>',
    ),
    (StopGather, lambda: Response(StopGather()), "<Response><StopGather/></Response>"),
    (
        StartStream,
        lambda: Response(
            StartStream(
                destination="wss://s.example.com/a", name="s1", tracks="both", mode="bidirectional"
            )
        ),
        '<Response><StartStream destination="wss://s.example.com/a" name="s1" mode="bidirectional"'
        ' tracks="both"/></Response>',
    ),
    (
        StreamParam,
        lambda: Response(
            StartStream(StreamParam(name="customer", value="42 & <more>"), destination="wss://s/a")
        ),
        '<Response><StartStream destination="wss://s/a">'
        '<StreamParam name="customer" value="42 &amp; &lt;more&gt;"/></StartStream></Response>',
    ),
    (
        StopStream,
        lambda: Response(StopStream(name="s1", wait=True)),
        '<Response><StopStream name="s1" wait="true"/></Response>',
    ),
    (
        StartTranscription,
        lambda: Response(StartTranscription(name="t1", stabilized=False, tracks="inbound")),
        '<Response><StartTranscription name="t1" tracks="inbound" stabilized="false"/></Response>',
    ),
    (
        CustomParam,
        lambda: Response(StartTranscription(CustomParam(name="k", value='"quoted"'))),
        '<Response><StartTranscription><CustomParam name="k" value="&quot;quoted&quot;"/>'
        "</StartTranscription></Response>",
    ),
    (
        StopTranscription,
        lambda: Response(StopTranscription(name="t1"), StopTranscription()),
        '<Response><StopTranscription name="t1"/><StopTranscription/></Response>',
    ),
    (
        Tag,
        lambda: Response(Tag('{"step": "menu", "x": "<&>"}'), Tag()),
        '<Response><Tag>{"step": "menu", "x": "&lt;&amp;&gt;"}</Tag><Tag/></Response>',
    ),
    (
        Refer,
        lambda: Response(Refer(SipUri("sip:transfer@example.com"), refer_complete_url="/refer")),
        '<Response><Refer referCompleteUrl="/refer"><SipUri>sip:transfer@example.com</SipUri>'
        "</Refer></Response>",
    ),
    (
        Response,
        lambda: Response(SpeakSentence("Goodbye."), Hangup()),
        "<Response><SpeakSentence>Goodbye.</SpeakSentence><Hangup/></Response>",
    ),
    (Bxml, lambda: Bxml(Hangup()), "<Bxml><Hangup/></Bxml>"),
]


@pytest.mark.parametrize(
    ("verb_class", "build", "expected"), GOLDEN, ids=[cls.name for cls, _, _ in GOLDEN]
)
def test_golden(verb_class, build, expected):
    assert build().to_bxml() == DECLARATION + expected


def test_there_is_a_golden_string_for_every_verb_class():
    assert {cls for cls, _, _ in GOLDEN} == set(Verb.registry.values())


def test_ssml_golden():
    doc = Response(
        SpeakSentence(
            "Hello ",
            ssml.Emphasis("there", level="strong"),
            ", ",
            ssml.Break(time="500ms"),
            ssml.SayAs("123", interpret_as="digits"),
            ssml.Lang("Bonjour", xml_lang="fr-FR"),
            ssml.Prosody("slow", rate="50%"),
            ssml.Sub("W3C", alias="World Wide Web Consortium"),
            ssml.Phoneme("tomato", alphabet="ipa", ph="t\u0259\u02c8me\u026ato\u028a"),
            ssml.P(ssml.S("One."), ssml.S("Two.")),
        )
    )
    assert doc.to_bxml() == DECLARATION + (
        '<Response><SpeakSentence>Hello <emphasis level="strong">there</emphasis>, '
        '<break time="500ms"/><say-as interpret-as="digits">123</say-as>'
        '<lang xml:lang="fr-FR">Bonjour</lang><prosody rate="50%">slow</prosody>'
        '<sub alias="World Wide Web Consortium">W3C</sub>'
        '<phoneme alphabet="ipa" ph="t\u0259\u02c8me\u026ato\u028a">tomato</phoneme>'
        "<p><s>One.</s><s>Two.</s></p></SpeakSentence></Response>"
    )


def test_declaration_uses_double_quotes_and_output_is_utf8_text():
    out = Response(SpeakSentence("ñ")).to_bxml()
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Response>')
    assert "ñ" in out and "&#" not in out


def test_rendering_is_deterministic():
    def build():
        return Response(Gather(SpeakSentence("x"), max_digits=2, gather_url="/g"), Hangup())

    assert build().to_bxml() == build().to_bxml()


# Elements are built in a document of lxml's HTML kind (bxml/node.py); the output must be
# exactly what lxml writes for the same tree in an XML document.
AS_XML = [
    *(build for _, build, _ in GOLDEN),
    lambda: Response(
        SpeakSentence("a ]]> b\tc\nd <e/> &amp; \"f\" 'g'", voice="julie"),
        StartTranscription(CustomParam(name="k", value="line\nnext\ttab \"q\" <&> 'a'")),
        Tag(""),
        Pause(duration=1),
    ),
]


@pytest.mark.parametrize("build", AS_XML)
def test_output_is_what_lxml_writes_for_an_xml_document(build):
    out = build().to_bxml()
    tree = etree.fromstring(out.encode("utf-8"), etree.XMLParser())
    assert out == DECLARATION + etree.tostring(tree, encoding="unicode")


@pytest.mark.parametrize("xml_name", ["bad name", "a:b", "1st", "a<b", ""])
def test_a_table_with_a_name_xml_cannot_carry_is_refused_when_the_class_is_defined(xml_name):
    with pytest.raises(TypeError, match="is not an XML attribute name"):

        class Broken(Node):  # a name lxml would not otherwise re-check on each set
            name = "Broken"
            attributes = (("value", TAG, xml_name),)


def test_tags_are_still_checked_by_lxml_xml_rules():
    with pytest.raises(ValueError, match="Invalid tag name"):
        make_element("a:b")
