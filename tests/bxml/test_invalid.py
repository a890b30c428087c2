"""Invalid documents, built and parsed: each raises BxmlError with a useful message."""

from __future__ import annotations

import pytest
from lxml import etree

import bxml
from bxml import (
    BxmlError,
    Conference,
    CustomParam,
    Forward,
    Gather,
    Hangup,
    Pause,
    PhoneNumber,
    PlayAudio,
    Redirect,
    Refer,
    Response,
    Ring,
    SendDtmf,
    SipUri,
    SpeakSentence,
    StartGather,
    StartStream,
    StartTranscription,
    StopStream,
    StreamParam,
    Tag,
    Transfer,
)
from bxml.safe_xml import PARSER

NUMBER = "+15555550123"
WSS = "wss://s.example.com/a"


def phones(count):
    return [PhoneNumber(NUMBER) for _ in range(count)]


BUILT = [
    pytest.param(
        lambda: Response("Hangup"), r"Response: holds no text, got 'Hangup'", id="text-in-root"
    ),
    pytest.param(
        lambda: Response(object()), r"children must be bxml verbs, got object", id="not-a-verb"
    ),
    pytest.param(lambda: Gather(foo=1), r"Gather: unknown attribute 'foo'", id="unknown-attribute"),
    # Unhashable values cannot be looked up in a kind's memo; the kind's own check explains.
    pytest.param(
        lambda: Gather(gather_url=["/g"]),
        r"Gather: gatherUrl must be a string, got list \['/g'\]",
        id="url-a-list",
    ),
    pytest.param(
        lambda: Gather(max_digits=[3]),
        r"Gather: maxDigits must be an integer, got list \[3\]",
        id="integer-a-list",
    ),
    pytest.param(
        lambda: Gather(gather_method={"GET": 1}),
        r"Gather: gatherMethod must be a string, got dict",
        id="choice-a-dict",
    ),
    pytest.param(
        lambda: Gather(maxDigits=3),
        r"unknown attribute 'maxDigits' \(write max_digits",
        id="camelCase-kwarg",
    ),
    pytest.param(
        lambda: Gather(max_digits=0),
        r"Gather: maxDigits must be between 1 and 50, got 0",
        id="max-digits-0",
    ),
    pytest.param(
        lambda: Gather(max_digits=51),
        r"Gather: maxDigits must be between 1 and 50, got 51",
        id="max-digits-51",
    ),
    pytest.param(
        lambda: Gather(max_digits=99),
        r"^Gather: maxDigits must be between 1 and 50, got 99$",
        id="max-digits-99",
    ),
    pytest.param(
        lambda: Gather(max_digits="3"),
        r"maxDigits must be an integer, got str '3'",
        id="int-as-str",
    ),
    pytest.param(
        lambda: Gather(max_digits=True), r"maxDigits must be an integer, got bool", id="bool-as-int"
    ),
    pytest.param(
        lambda: Gather(max_digits=3.0),
        r"maxDigits must be an integer, got float",
        id="float-as-int",
    ),
    pytest.param(
        lambda: Pause(duration=float("nan")),
        r"duration must be between 0.1 and 86400, got nan",
        id="nan",
    ),
    pytest.param(
        lambda: Pause(duration=0),
        r"Pause: duration must be between 0.1 and 86400, got 0",
        id="pause-0",
    ),
    pytest.param(
        lambda: Transfer(*phones(1), call_timeout=301),
        r"Transfer: callTimeout must be between 1 and 300, got 301",
        id="call-timeout-301",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/x", redirect_method="PUT"),
        r"redirectMethod must be one of GET, POST, got 'PUT'",
        id="method-PUT",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/x", redirect_method="post"),
        r"redirectMethod must be one of GET, POST",
        id="method-lowercase",
    ),
    pytest.param(
        lambda: Ring(answer_call="yes"),
        r"Ring: answerCall must be a bool, got str 'yes'",
        id="bool-yes",
    ),
    pytest.param(lambda: Ring(answer_call=1), r"answerCall must be a bool, got int", id="bool-1"),
    pytest.param(
        lambda: SpeakSentence("Hi", gender="robot"),
        r"gender must be one of male, female",
        id="enum",
    ),
    pytest.param(
        lambda: SpeakSentence("Hi", voice="Julie"), r"voice must be one of julie", id="voice-case"
    ),
    pytest.param(
        lambda: Gather(Hangup()),
        r"Gather: cannot contain Hangup \(allowed: SpeakSentence/PlayAudio\)",
        id="gather-hangup",
    ),
    pytest.param(
        lambda: Gather(*[SpeakSentence("x")] * 21),
        r"Gather: holds at most 20 SpeakSentence/PlayAudio, got 21",
        id="gather-21",
    ),
    pytest.param(
        lambda: Gather(*[SpeakSentence("x")] * 3, repeat_count=7),
        r"repeatCount x nested verbs must be at most 20, got 7 x 3",
        id="gather-repeats",
    ),
    pytest.param(
        lambda: Response(PhoneNumber(NUMBER)),
        r"Response: cannot contain PhoneNumber \(it belongs inside Transfer\)",
        id="root-phone",
    ),
    pytest.param(lambda: Response(SipUri("sip:a@b")), r"cannot contain SipUri", id="root-sip"),
    pytest.param(
        lambda: Response(StreamParam(name="a", value="b")),
        r"cannot contain StreamParam",
        id="root-streamparam",
    ),
    pytest.param(
        lambda: Response(CustomParam(name="a", value="b")),
        r"cannot contain CustomParam",
        id="root-customparam",
    ),
    pytest.param(
        lambda: Response(Response()), r"Response: cannot contain Response", id="root-in-root"
    ),
    pytest.param(
        lambda: Hangup(Hangup()), r"Hangup: holds no child verbs, got Hangup", id="leaf-child"
    ),
    pytest.param(lambda: Hangup("bye"), r"Hangup: holds no text, got 'bye'", id="leaf-text"),
    pytest.param(lambda: PlayAudio("/a.wav", "/b.wav"), r"takes one text argument", id="two-texts"),
    pytest.param(
        lambda: Transfer(),
        r"Transfer: must hold at least 1 PhoneNumber/SipUri, got 0",
        id="empty-transfer",
    ),
    pytest.param(
        lambda: Transfer(*phones(9)),
        r"Transfer: holds at most 8 PhoneNumber/SipUri, got 9",
        id="9-phones",
    ),
    pytest.param(
        lambda: Transfer(SpeakSentence("x")),
        r"Transfer: cannot contain SpeakSentence",
        id="transfer-speak",
    ),
    pytest.param(lambda: Refer(), r"Refer: must hold exactly 1 SipUri, got 0", id="refer-empty"),
    pytest.param(
        lambda: Refer(SipUri("sip:a@b"), SipUri("sip:c@d")),
        r"Refer: must hold exactly 1 SipUri, got 2",
        id="refer-2",
    ),
    pytest.param(
        lambda: Refer(PhoneNumber(NUMBER)), r"Refer: cannot contain PhoneNumber", id="refer-phone"
    ),
    pytest.param(
        lambda: StartStream(*[StreamParam(name="n", value="v")] * 13, destination=WSS),
        r"StartStream: holds at most 12 StreamParam, got 13",
        id="13-streamparams",
    ),
    pytest.param(
        lambda: StartTranscription(*[CustomParam(name="n", value="v")] * 13),
        r"holds at most 12 CustomParam, got 13",
        id="13-customparams",
    ),
    pytest.param(
        lambda: StartStream(CustomParam(name="n", value="v"), destination=WSS),
        r"StartStream: cannot contain CustomParam",
        id="stream-customparam",
    ),
    pytest.param(
        lambda: SpeakSentence(), r"SpeakSentence: text must not be blank", id="speak-missing"
    ),
    pytest.param(
        lambda: SpeakSentence(" \n\t"), r"SpeakSentence: text must not be blank", id="speak-blank"
    ),
    pytest.param(
        lambda: SpeakSentence(Hangup()),
        r"content must be strings or bxml.ssml elements, got Hangup",
        id="speak-verb",
    ),
    pytest.param(
        lambda: PhoneNumber(),
        r"PhoneNumber: text is required: it must be an E.164",
        id="phone-missing",
    ),
    pytest.param(
        lambda: PhoneNumber(15555550123),
        r"PhoneNumber: text must be a string, got int",
        id="phone-int",
    ),
    pytest.param(
        lambda: Redirect(),
        r"Redirect: redirectUrl is required \(redirect_url=...\)",
        id="redirect-url",
    ),
    pytest.param(lambda: StartGather(), r"StartGather: dtmfUrl is required", id="dtmf-url"),
    pytest.param(
        lambda: StartStream(), r"StartStream: destination is required", id="stream-destination"
    ),
    pytest.param(lambda: StopStream(), r"StopStream: name is required", id="stopstream-name"),
    pytest.param(lambda: Forward(), r"Forward: to is required", id="forward-to"),
    pytest.param(
        lambda: StreamParam(name="n"), r"StreamParam: value is required", id="streamparam-value"
    ),
    pytest.param(
        lambda: StartStream(destination="https://x"),
        r"destination must be a wss:// \(or ws://\) URL",
        id="stream-not-ws",
    ),
    pytest.param(
        lambda: SpeakSentence("a\x00b"),
        r"SpeakSentence: text contains a character XML cannot carry \(U\+0000\)",
        id="nul",
    ),
    pytest.param(lambda: SpeakSentence("a\x01b"), r"\(U\+0001\)", id="x01"),
    pytest.param(lambda: SpeakSentence("a\x0bb"), r"\(U\+000B\)", id="x0b"),
    pytest.param(lambda: SpeakSentence("a\x1fb"), r"\(U\+001F\)", id="x1f"),
    pytest.param(lambda: SpeakSentence("a\ufffeb"), r"\(U\+FFFE\)", id="ufffe"),
    pytest.param(lambda: SpeakSentence("a\ud800b"), r"\(U\+D800\)", id="lone-surrogate"),
    pytest.param(
        lambda: Tag("\x07"),
        r"Tag: text contains a character XML cannot carry \(U\+0007\)",
        id="tag-bell",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/x", tag="a\x00"),
        r"Redirect: tag contains a character XML cannot carry",
        id="attr-nul",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/x", username="\udfff"),
        r"Redirect: username contains a character XML cannot carry \(U\+DFFF\)",
        id="attr-surrogate",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/x", tag="t" * 257),
        r"Redirect: tag must be at most 256 characters, got 257",
        id="tag-attr-257",
    ),
    pytest.param(
        lambda: Tag("t" * 257),
        r"Tag: text must be at most 256 characters, got 257",
        id="tag-text-257",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/" + "u" * 2048),
        r"redirectUrl must be an http\(s\) or relative URL without spaces and at most 2048",
        id="url-2049",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="javascript:alert(1)"),
        r"redirectUrl must be an http\(s\) or relative URL",
        id="url-scheme",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/a b"),
        r"redirectUrl must be an http\(s\) or relative URL without spaces",
        id="url-space",
    ),
    pytest.param(
        lambda: Redirect(redirect_url=""), r"redirectUrl must not be empty", id="url-empty"
    ),
    pytest.param(
        lambda: Redirect(redirect_url="https://"),
        r"redirectUrl must be an http\(s\)",
        id="url-scheme-only",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/a\u00a0b"),
        r"redirectUrl must be an http\(s\)",
        id="url-nbsp",
    ),
    pytest.param(
        lambda: Redirect(redirect_url="/a\tb"), r"redirectUrl must be an http\(s\)", id="url-tab"
    ),
    pytest.param(
        lambda: Redirect(redirect_url="localhost:8000/x"),
        r"redirectUrl must be an http\(s\)",
        id="url-host-port",
    ),
    pytest.param(
        lambda: PlayAudio("/a.wav", password="p" * 1025),
        r"password must be at most 1024 characters",
        id="credential-1025",
    ),
    pytest.param(
        lambda: SendDtmf("1" * 51),
        r"SendDtmf: text must use only .* and at most 50 characters, got 51",
        id="dtmf-51",
    ),
    pytest.param(
        lambda: SendDtmf("12x"),
        r"SendDtmf: text must use only 0-9 \* # a-d A-D w W ,, got '12x'",
        id="dtmf-char",
    ),
    pytest.param(
        lambda: Conference("c" * 101),
        r"Conference: text must use only .* and at most 100 characters",
        id="conference-101",
    ),
    pytest.param(
        lambda: Conference("my conf"),
        r"Conference: text must use only A-Z a-z 0-9 - _ .",
        id="conference-space",
    ),
    pytest.param(
        lambda: PhoneNumber("15555550123"),
        r"PhoneNumber: text must be an E.164 number",
        id="e164-no-plus",
    ),
    pytest.param(
        lambda: PhoneNumber("+05555550123"), r"must be an E.164 number", id="e164-leading-0"
    ),
    pytest.param(lambda: PhoneNumber("+1"), r"must be an E.164 number", id="e164-1-digit"),
    pytest.param(
        lambda: PhoneNumber("+1234567890123456"), r"must be an E.164 number", id="e164-16-digits"
    ),
    pytest.param(lambda: PhoneNumber(NUMBER + "\n"), r"must be an E.164 number", id="e164-newline"),
    pytest.param(
        lambda: SipUri("tel:+15555550123"),
        r"SipUri: text must be a SIP URI starting with 'sip:'",
        id="sip-scheme",
    ),
    pytest.param(
        lambda: Transfer(*phones(1), transfer_caller_id="Bob"),
        r"transferCallerId must be an E.164 number, Restricted/Anonymous/Private/Unavailable or blank",
        id="caller-id",
    ),
    pytest.param(
        lambda: Transfer(*phones(1), transfer_caller_display_name="a\nb"),
        r"transferCallerDisplayName must be on one line",
        id="display-name-newline",
    ),
    pytest.param(
        lambda: Forward(to="15555550123"),
        r"Forward: to must be an E.164 number or a SIP URI",
        id="forward-to-bad",
    ),
    pytest.param(
        lambda: Response(*[SpeakSentence("x" * 1000) for _ in range(70)]).to_bxml(),
        r"Response: document is \d+ bytes, over the 64 KB \(65536 bytes\) limit",
        id="oversized",
    ),
    pytest.param(
        lambda: SpeakSentence.from_ssml("<b>bold</b>"),
        r"SpeakSentence: unknown SSML element 'b'",
        id="ssml-unknown-element",
    ),
    pytest.param(
        lambda: SpeakSentence.from_ssml('<emphasis lvl="x">a</emphasis>'),
        r"emphasis: unknown attribute 'lvl'",
        id="ssml-unknown-attribute",
    ),
    pytest.param(
        lambda: SpeakSentence.from_ssml('<break time="11s"/>'),
        r"break: time must be like 500ms or 1.5s, at most 10s, got '11s'",
        id="ssml-break-11s",
    ),
    pytest.param(
        lambda: SpeakSentence.from_ssml("a &nbsp; b"),
        r"not well-formed XML: Entity 'nbsp' not defined",
        id="ssml-entity",
    ),
]


@pytest.mark.parametrize(("build", "match"), BUILT)
def test_building_invalid_bxml_raises(build, match):
    with pytest.raises(BxmlError, match=match):
        build()


def response(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Response>{body}</Response>'


PARSED = [
    pytest.param(response("<Foo/>"), r"^Response: unknown verb 'Foo'$", id="unknown-verb"),
    pytest.param(
        response('<Gather foo="1"/>'), r"Gather: unknown attribute 'foo'", id="unknown-attribute"
    ),
    pytest.param(
        response('<Gather max_digits="1"/>'),
        r"Gather: unknown attribute 'max_digits'",
        id="snake-attribute",
    ),
    pytest.param(
        response('<Gather maxDigits="0"/>'),
        r"Gather: maxDigits must be between 1 and 50, got 0",
        id="max-digits-0",
    ),
    pytest.param(
        response('<Gather maxDigits="51"/>'),
        r"Gather: maxDigits must be between 1 and 50, got 51",
        id="max-digits-51",
    ),
    pytest.param(
        response('<Gather maxDigits="3.5"/>'),
        r"maxDigits must be between 1 and 50 \(an integer\), got '3.5'",
        id="max-digits-decimal",
    ),
    pytest.param(
        response('<Gather maxDigits=" 3"/>'), r"\(an integer\), got ' 3'", id="max-digits-space"
    ),
    pytest.param(response('<Gather maxDigits="٣"/>'), r"\(an integer\)", id="max-digits-arabic"),
    pytest.param(
        response('<Gather maxDigits="' + "9" * 5000 + '"/>'),
        r"\(an integer\)",
        id="max-digits-huge",
    ),
    pytest.param(
        response('<Transfer callTimeout="301"><PhoneNumber>+15555550123</PhoneNumber></Transfer>'),
        r"Transfer: callTimeout must be between 1 and 300, got 301",
        id="call-timeout-301",
    ),
    pytest.param(
        response('<Pause duration="1e3"/>'), r"\(a decimal number\), got '1e3'", id="exponent"
    ),
    pytest.param(response('<Pause duration="nan"/>'), r"\(a decimal number\), got 'nan'", id="nan"),
    pytest.param(
        response('<Redirect redirectUrl="/x" redirectMethod="PUT"/>'),
        r"redirectMethod must be one of GET, POST, got 'PUT'",
        id="method-PUT",
    ),
    pytest.param(
        response('<Ring answerCall="yes"/>'),
        r"Ring: answerCall must be true or false, got 'yes'",
        id="bool-yes",
    ),
    pytest.param(
        response('<Ring answerCall="True"/>'),
        r"answerCall must be true or false, got 'True'",
        id="bool-True",
    ),
    pytest.param(
        response("<Gather><Hangup/></Gather>"), r"Gather: cannot contain Hangup", id="gather-hangup"
    ),
    pytest.param(
        response("<Gather><Gather/></Gather>"), r"Gather: cannot contain Gather", id="gather-gather"
    ),
    pytest.param(
        response("<PhoneNumber>+15555550123</PhoneNumber>"),
        r"Response: cannot contain PhoneNumber",
        id="root-phone",
    ),
    pytest.param(
        response("<StreamParam name='a' value='b'/>"),
        r"Response: cannot contain StreamParam",
        id="root-streamparam",
    ),
    pytest.param(response("<Response/>"), r"Response: cannot contain Response", id="root-in-root"),
    pytest.param(
        response("<Hangup><Hangup/></Hangup>"), r"Hangup: cannot contain Hangup", id="leaf-child"
    ),
    pytest.param(
        response("<Hangup>bye</Hangup>"), r"Hangup: holds no text, got 'bye'", id="leaf-text"
    ),
    pytest.param(response("junk<Hangup/>"), r"Response: holds no text, got 'junk'", id="root-text"),
    pytest.param(response("<Hangup/>junk"), r"Response: holds no text, got 'junk'", id="root-tail"),
    pytest.param(
        response("<PlayAudio>/a.wav<Hangup/></PlayAudio>"),
        r"PlayAudio: holds no child elements",
        id="text-verb-child",
    ),
    pytest.param(
        response("<SpeakSentence>Hi <Hangup/></SpeakSentence>"),
        r"SpeakSentence: unknown SSML element 'Hangup'",
        id="speak-verb",
    ),
    pytest.param(
        response("<SpeakSentence>  </SpeakSentence>"),
        r"SpeakSentence: text must not be blank",
        id="speak-blank",
    ),
    pytest.param(
        response("<Transfer/>"),
        r"Transfer: must hold at least 1 PhoneNumber/SipUri, got 0",
        id="empty-transfer",
    ),
    pytest.param(
        response("<Transfer>" + "<PhoneNumber>+15555550123</PhoneNumber>" * 9 + "</Transfer>"),
        r"Transfer: holds at most 8 PhoneNumber/SipUri, got 9",
        id="9-phones",
    ),
    pytest.param(
        response("<Refer/>"), r"Refer: must hold exactly 1 SipUri, got 0", id="refer-empty"
    ),
    pytest.param(
        response(
            f'<StartStream destination="{WSS}">'
            + '<StreamParam name="n" value="v"/>' * 13
            + "</StartStream>"
        ),
        r"StartStream: holds at most 12 StreamParam, got 13",
        id="13-streamparams",
    ),
    pytest.param(
        response(
            "<StartTranscription>"
            + '<CustomParam name="n" value="v"/>' * 13
            + "</StartTranscription>"
        ),
        r"holds at most 12 CustomParam, got 13",
        id="13-customparams",
    ),
    pytest.param(response("<Redirect/>"), r"Redirect: redirectUrl is required", id="redirect-url"),
    pytest.param(response("<StartGather/>"), r"StartGather: dtmfUrl is required", id="dtmf-url"),
    pytest.param(
        response("<PhoneNumber/>"), r"Response: cannot contain PhoneNumber", id="phone-at-root"
    ),
    pytest.param(
        response("<Transfer><PhoneNumber/></Transfer>"),
        r"PhoneNumber: text is required",
        id="phone-missing",
    ),
    pytest.param(
        response("<Transfer><PhoneNumber>+1555 5550123</PhoneNumber></Transfer>"),
        r"must be an E.164 number",
        id="phone-space",
    ),
    pytest.param(
        response("<SpeakSentence>a&#1;b</SpeakSentence>"),
        r"not well-formed XML: xmlParseCharRef: invalid xmlChar value 1",
        id="char-ref-1",
    ),
    pytest.param(
        response("<SpeakSentence>a\x01b</SpeakSentence>"), r"not well-formed XML", id="raw-control"
    ),
    pytest.param(
        response("<SpeakSentence>a&#xFFFE;b</SpeakSentence>"),
        r"not well-formed XML",
        id="char-ref-fffe",
    ),
    pytest.param(
        response("<SpeakSentence>a\ud800b</SpeakSentence>"),
        r"document is not valid Unicode: surrogates not allowed",
        id="surrogate-str",
    ),
    pytest.param(
        response(f'<Redirect redirectUrl="/x" tag="{"t" * 257}"/>'),
        r"Redirect: tag must be at most 256 characters, got 257",
        id="tag-257",
    ),
    pytest.param(
        response("<SpeakSentence>" + "x" * 70000 + "</SpeakSentence>"),
        r"^document is \d+ bytes, over the 64 KB \(65536 bytes\) limit$",
        id="oversized",
    ),
    pytest.param("", r"not well-formed XML", id="empty"),
    pytest.param("hello", r"not well-formed XML", id="not-xml"),
    pytest.param("<Response>", r"not well-formed XML", id="unclosed"),
    pytest.param(b"\xff\xfe\x00", r"not well-formed|cannot parse", id="garbage-bytes"),
    pytest.param(
        "<Foo/>", r"the root element must be Response or Bxml, got 'Foo'", id="wrong-root"
    ),
    pytest.param(
        '<Response xmlns="urn:x"/>',
        r"root element must be Response or Bxml, got '{urn:x}Response'",
        id="namespaced-root",
    ),
    pytest.param(
        '<?xml version="1.0" encoding="ISO-8859-1"?><Response/>',
        r"document must be UTF-8, got ISO-8859-1",
        id="latin-1",
    ),
    pytest.param(
        '<?xml version="1.0" encoding="UTF-16"?><Response/>'.encode("utf-16"),
        r"document must be UTF-8, got UTF-16",
        id="utf-16",
    ),
    pytest.param("<!DOCTYPE Response><Response/>", r"DOCTYPE is not allowed", id="doctype"),
    pytest.param(
        '<!DOCTYPE Response SYSTEM "http://127.0.0.1:9/evil.dtd"><Response/>',
        r"DOCTYPE is not allowed",
        id="external-dtd",
    ),
    pytest.param(
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><Response/>'.encode(
            "utf-16"
        ),
        r"DOCTYPE is not allowed",
        id="doctype-utf-16",
    ),
    pytest.param(
        response("<SpeakSentence>&x;</SpeakSentence>"),
        r"Entity 'x' not defined",
        id="undefined-entity",
    ),
]


@pytest.mark.parametrize(("document", "match"), PARSED)
def test_parsing_invalid_bxml_raises(document, match):
    with pytest.raises(BxmlError, match=match):
        bxml.parse(document)


@pytest.mark.parametrize("document", [None, 42, ["<Response/>"], {"a": 1}])
def test_parse_refuses_other_types_with_bxml_error(document):
    with pytest.raises(BxmlError, match="expected the document as str or bytes"):
        bxml.parse(document)


def test_errors_are_value_errors_and_carry_the_line():
    with pytest.raises(ValueError, match="maxDigits") as caught:
        bxml.parse('<Response>\n<Hangup/>\n\n<Gather maxDigits="99"/></Response>')
    assert isinstance(caught.value, BxmlError)
    assert caught.value.line == 4


def test_xxe_does_not_read_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    document = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<Response><SpeakSentence>&x;</SpeakSentence></Response>"
    )
    with pytest.raises(BxmlError, match="DOCTYPE is not allowed") as caught:
        bxml.parse(document)
    assert "TOPSECRET" not in str(caught.value)
    # Even past the DOCTYPE check, the hardened parser leaves the entity unexpanded.
    tree = etree.fromstring(document.encode(), PARSER)
    assert b"TOPSECRET" not in etree.tostring(tree)


def test_billion_laughs_is_refused_and_never_expanded():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    document = (
        f"<!DOCTYPE lolz [{entities}]><Response><SpeakSentence>&lol9;</SpeakSentence></Response>"
    )
    # Refused before parsing; and no expansion happens even in the parser alone, which is
    # what keeps it quick (the size below, not a clock, is what can fail).
    with pytest.raises(BxmlError, match="DOCTYPE is not allowed"):
        bxml.parse(document)
    try:  # the parser alone does not expand it either (libxml2 may refuse it outright)
        tree = etree.fromstring(document.encode(), PARSER)
    except etree.XMLSyntaxError:
        return
    assert len(etree.tostring(tree)) < 2000


def test_a_failed_append_changes_nothing():
    transfer = Transfer(*phones(8))
    with pytest.raises(BxmlError, match="at most 8"):
        transfer.append(PhoneNumber(NUMBER))
    assert len(transfer.children) == 8
    assert Response(transfer).to_bxml().count("<PhoneNumber>") == 8
    gather = Gather(SpeakSentence("a"), repeat_count=11)
    with pytest.raises(BxmlError, match="repeatCount x nested verbs"):
        gather.append(PlayAudio("/b.wav"))
    assert len(gather.children) == 1
    with pytest.raises(BxmlError, match="cannot contain Hangup"):
        gather.append(Hangup())


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a?b=1&c=<2>", "http://127.0.0.1:8000/x", "/callbacks/gather", "next",
     "/a:b", "?step=2", "//cdn.example.com/a.wav", "https://例え.jp/ñ"],
)  # fmt: skip
def test_url_forms_accepted(url):
    assert Redirect(redirect_url=url).attrs == {"redirectUrl": url}
