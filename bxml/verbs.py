"""Every BXML verb of the Bandwidth Voice API, as declarations over ``Verb``.

Attribute tables follow the order of the reference's section 4.2, which is the
bandwidth-sdk 23.3.1 serialization order.  Ranges and enums come from the same table;
where the docs give none (speechTimeout, silenceTimeout) the bound is our assumption.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from bxml import safe_xml
from bxml.errors import BxmlError
from bxml.node import AttributeRow, line_of
from bxml.ssml import Content, SsmlElement, fill_mixed, flatten, read_mixed
from bxml.values import (
    BOOL,
    CALL_ID,
    CONFERENCE_NAME,
    CREDENTIAL,
    DIVERSION_REASON,
    DIVERSION_TREATMENT,
    DTMF_DIGITS,
    FILE_FORMAT,
    FORWARD_FROM,
    FORWARD_TO,
    GATHER_INPUT,
    GENDER,
    LOCALE,
    LONG_TEXT,
    METHOD,
    NAME,
    PARAM_VALUE,
    PHONE_NUMBER,
    SINGLE_LINE_256,
    SIP_URI,
    STREAM_MODE,
    TAG,
    TERMINATING_DIGITS,
    TRACKS,
    TRANSFER_CALLER_ID,
    URL,
    UUI_256,
    UUI_350,
    VOICE,
    WEBSOCKET_URL,
    Integer,
    Number,
    Text,
)
from bxml.verb import NO_CHILDREN, Root, Verb

CREDENTIALS: tuple[AttributeRow, ...] = (("username", CREDENTIAL), ("password", CREDENTIAL))
FALLBACK_CREDENTIALS: tuple[AttributeRow, ...] = (
    ("fallback_username", CREDENTIAL),
    ("fallback_password", CREDENTIAL),
)
TAG_ATTRIBUTE: AttributeRow = ("tag", TAG)
CALL_TIMEOUT = Number(1, 300)
SECONDS_PAUSE = Number(0.1, 86400)


def webhook(event: str, fallback: bool = True) -> tuple[AttributeRow, ...]:
    """The URL and method attributes of one webhook: ``gather`` -> gatherUrl, gatherMethod,
    gatherFallbackUrl, gatherFallbackMethod."""
    rows: tuple[AttributeRow, ...] = ((f"{event}_url", URL), (f"{event}_method", METHOD))
    if fallback:
        rows += ((f"{event}_fallback_url", URL), (f"{event}_fallback_method", METHOD))
    return rows


class SpeakSentence(Verb):
    """Text to speech: ``SpeakSentence("Hello ", ssml.Emphasis("there"), voice="julie")``.

    Positional arguments are strings (always text, escaped) and ``bxml.ssml`` elements.
    """

    name = "SpeakSentence"
    attributes = (("voice", VOICE), ("gender", GENDER), ("locale", LOCALE))

    __slots__ = ("_content",)
    _content: tuple[Content, ...]

    if TYPE_CHECKING:  # generated from the attribute table (node._compile_init)

        def __init__(self, *content: str | SsmlElement, **attributes: object) -> None: ...

    @classmethod
    def _content_source(cls) -> tuple[list[str], dict[str, object]]:
        lines = [  # the common case, one non-blank string, inline
            "    self._children = NO_CHILDREN",
            "    if len(content) == 1 and type(content[0]) is str and content[0] "
            "and not content[0].isspace():",
            "        try:",
            "            element.text = content[0]",
            "        except ValueError as error:",
            "            raise self._text_error(content[0], error) from None",
            "        self._content = content",
            "    else:",
            "        self._init_content(element, content)",
        ]
        return lines, {"NO_CHILDREN": NO_CHILDREN}

    def _init_content(self, element: etree._Element, content: tuple[object, ...]) -> None:
        self._children = NO_CHILDREN
        self._content = fill_mixed(self, element, content, elements=True)
        if not flatten(self._content).strip():
            raise self.error("text must not be blank")

    @classmethod
    def from_ssml(cls, markup: str, **attributes: object) -> SpeakSentence:
        """Build from SSML written as a string, e.g. ``'Hi <break time="1s"/> there'``.

        The markup is parsed with the hardened parser and must use only the elements and
        attributes of ``bxml.ssml``; anything else raises BxmlError.
        """
        if not isinstance(markup, str):
            raise BxmlError(f"{cls.name}: from_ssml needs a string, got {type(markup).__name__}")
        element = safe_xml.parse_fragment(cls.name, markup)
        return cls(*read_mixed(cls.name, element), **attributes)

    @classmethod
    def _from_element(cls, element: etree._Element) -> Verb:
        try:
            return cls(*read_mixed(cls.name, element), **cls._read_attributes(element))
        except BxmlError as error:
            if error.line is None:
                error.line = line_of(element)
            raise

    @property
    def content(self) -> tuple[str | SsmlElement, ...]:
        """The mixed content: strings and SSML elements, adjacent strings merged."""
        return self._content

    @property
    def text(self) -> str:
        """The text to speak, SSML markup left out."""
        return flatten(self._content)

    def _repr_content(self) -> list[str]:
        return [repr(item) for item in self._content]


class PlayAudio(Verb):
    """Play a .wav or .mp3 file: ``PlayAudio("https://example.com/hello.wav")``."""

    name = "PlayAudio"
    text_kind = URL
    text_trimmed = True
    attributes = CREDENTIALS


class Gather(Verb):
    """Collect digits while playing the nested SpeakSentence/PlayAudio prompts."""

    name = "Gather"
    attributes = (
        *webhook("gather"),
        *CREDENTIALS,
        *FALLBACK_CREDENTIALS,
        TAG_ATTRIBUTE,
        ("terminating_digits", TERMINATING_DIGITS),
        ("max_digits", Integer(1, 50)),
        ("inter_digit_timeout", Number(1, 60)),
        ("first_digit_timeout", Number(0, 60)),
        ("repeat_count", Integer(1, 20)),
        ("input", GATHER_INPUT),
        ("hints", LONG_TEXT),
        ("language", Text(64)),
        ("partial_result_callback", URL),
        ("partial_result_callback_method", METHOD),
        ("profanity_filter", BOOL),
        ("speech_model", Text(256)),
        ("speech_timeout", Number(1, 60)),
    )
    child_names = ("SpeakSentence", "PlayAudio")
    max_children = 20

    @classmethod
    def _rules_source(cls) -> tuple[list[str], dict[str, object]]:
        lines, names = super()._rules_source()
        lines += [
            "    if len(self._children) > 1:",
            "        self._check_repeats(len(self._children))",
        ]
        return lines, names

    def append(self, verb: Verb) -> None:
        if type(verb) in self._child_classes:  # else super() explains what is wrong
            self._check_repeats(len(self._children) + 1)
        super().append(verb)

    def _check_repeats(self, prompts: int) -> None:
        # Bandwidth plays at most 20 prompts in all: repeatCount x nested verbs <= 20.
        if prompts < 2:  # repeatCount alone is at most 20
            return
        repeats = int(self._element.get("repeatCount", "1"))
        if repeats * prompts > 20:
            raise self.error(
                f"repeatCount x nested verbs must be at most 20, got {repeats} x {prompts}"
            )


class Transfer(Verb):
    """Call 1-8 PhoneNumber/SipUri targets at once and bridge the first to answer."""

    name = "Transfer"
    attributes = (
        ("transfer_caller_id", TRANSFER_CALLER_ID),
        ("privacy", BOOL),
        ("transfer_caller_display_name", SINGLE_LINE_256),
        ("call_timeout", CALL_TIMEOUT),
        *webhook("transfer_complete"),
        *CREDENTIALS,
        *FALLBACK_CREDENTIALS,
        TAG_ATTRIBUTE,
        ("diversion_treatment", DIVERSION_TREATMENT),
        ("diversion_reason", DIVERSION_REASON),
    )
    child_names = ("PhoneNumber", "SipUri")
    min_children = 1
    max_children = 8


_TRANSFER_LEG: tuple[AttributeRow, ...] = (
    *webhook("transfer_answer"),
    *webhook("transfer_disconnect", fallback=False),
    *CREDENTIALS,
    *FALLBACK_CREDENTIALS,
    TAG_ATTRIBUTE,
)


class PhoneNumber(Verb):
    """A Transfer target: ``PhoneNumber("+15555550123")`` (E.164)."""

    name = "PhoneNumber"
    text_kind = PHONE_NUMBER
    text_trimmed = True
    attributes = (*_TRANSFER_LEG, ("uui", UUI_350))
    nested_only = True
    belongs_in = "Transfer"


class SipUri(Verb):
    """A Transfer or Refer target: ``SipUri("sip:agent@example.com")``."""

    name = "SipUri"
    text_kind = SIP_URI
    text_trimmed = True
    attributes = (("uui", UUI_256), *_TRANSFER_LEG)
    nested_only = True
    belongs_in = "Transfer or Refer"


class Bridge(Verb):
    """Bridge this call with another: ``Bridge("c-123...")`` (the target call id)."""

    name = "Bridge"
    text_kind = CALL_ID
    text_trimmed = True
    attributes = (
        *webhook("bridge_complete"),
        *webhook("bridge_target_complete"),
        *CREDENTIALS,
        *FALLBACK_CREDENTIALS,
        TAG_ATTRIBUTE,
    )


class Conference(Verb):
    """Join a conference by name: ``Conference("my-conf")``."""

    name = "Conference"
    text_kind = CONFERENCE_NAME
    text_trimmed = True
    attributes = (
        ("mute", BOOL),
        ("hold", BOOL),
        ("call_ids_to_coach", LONG_TEXT),
        *webhook("conference_event"),
        *CREDENTIALS,
        *FALLBACK_CREDENTIALS,
        TAG_ATTRIBUTE,
        ("callback_timeout", Number(1, 25)),
    )


class Forward(Verb):
    """Forward an unanswered inbound call: ``Forward(to="+15555550123")``."""

    name = "Forward"
    attributes = (
        ("to", FORWARD_TO),
        ("from_", FORWARD_FROM),
        ("privacy", BOOL),
        ("caller_display_name", SINGLE_LINE_256),
        ("call_timeout", CALL_TIMEOUT),
        ("diversion_treatment", DIVERSION_TREATMENT),
        ("diversion_reason", DIVERSION_REASON),
        ("uui", UUI_256),
    )
    required = ("to",)


class Redirect(Verb):
    """Fetch the next BXML from ``redirect_url``; verbs after it never run."""

    name = "Redirect"
    attributes = (*webhook("redirect"), *CREDENTIALS, *FALLBACK_CREDENTIALS, TAG_ATTRIBUTE)
    required = ("redirect_url",)


class Hangup(Verb):
    name = "Hangup"


class Pause(Verb):
    """Wait ``duration`` seconds (0.1-86400)."""

    name = "Pause"
    attributes = (("duration", SECONDS_PAUSE),)


class Ring(Verb):
    name = "Ring"
    attributes = (("duration", SECONDS_PAUSE), ("answer_call", BOOL))


class SendDtmf(Verb):
    """Send tones: ``SendDtmf("12w3#")`` (w/, = 0.5 s pause, W = 1 s)."""

    name = "SendDtmf"
    text_kind = DTMF_DIGITS
    text_trimmed = True
    attributes = (("tone_duration", Number(50, 5000)), ("tone_interval", Number(50, 5000)))


_RECORDING_OUTPUT: tuple[AttributeRow, ...] = (
    *webhook("recording_available", fallback=False),
    ("transcribe", BOOL),
    ("detect_language", BOOL),
    *webhook("transcription_available", fallback=False),
)


class Record(Verb):
    name = "Record"
    attributes = (
        *webhook("record_complete"),
        *_RECORDING_OUTPUT,
        *CREDENTIALS,
        *FALLBACK_CREDENTIALS,
        TAG_ATTRIBUTE,
        ("terminating_digits", TERMINATING_DIGITS),
        ("max_duration", Number(1, 10800)),
        ("silence_timeout", Number(0, 10800)),
        ("file_format", FILE_FORMAT),
        ("recording_name", NAME),
    )


class StartRecording(Verb):
    name = "StartRecording"
    attributes = (
        *_RECORDING_OUTPUT,
        *CREDENTIALS,
        TAG_ATTRIBUTE,
        ("file_format", FILE_FORMAT),
        ("multi_channel", BOOL),
        ("recording_name", NAME),
    )


class PauseRecording(Verb):
    name = "PauseRecording"


class ResumeRecording(Verb):
    name = "ResumeRecording"


class StopRecording(Verb):
    name = "StopRecording"


class StartGather(Verb):
    """Send a ``dtmf`` event to ``dtmf_url`` for each digit, in the background."""

    name = "StartGather"
    attributes = (*webhook("dtmf", fallback=False), *CREDENTIALS, TAG_ATTRIBUTE)
    required = ("dtmf_url",)


class StopGather(Verb):
    name = "StopGather"


class StreamParam(Verb):
    name = "StreamParam"
    attributes = (("name", NAME), ("value", PARAM_VALUE))
    required = ("name", "value")
    nested_only = True
    belongs_in = "StartStream"


class StartStream(Verb):
    """Stream the call's audio to a websocket ``destination``, with up to 12 StreamParam."""

    name = "StartStream"
    attributes = (
        ("destination", WEBSOCKET_URL),
        ("destination_username", CREDENTIAL),
        ("destination_password", CREDENTIAL),
        ("name", NAME),
        ("mode", STREAM_MODE),
        ("tracks", TRACKS),
        *webhook("stream_event", fallback=False),
        *CREDENTIALS,
    )
    required = ("destination",)
    child_names = ("StreamParam",)
    max_children = 12


class StopStream(Verb):
    name = "StopStream"
    attributes = (("name", NAME), ("wait", BOOL))
    required = ("name",)


class CustomParam(Verb):
    name = "CustomParam"
    attributes = (("name", NAME), ("value", PARAM_VALUE))
    required = ("name", "value")
    nested_only = True
    belongs_in = "StartTranscription"


class StartTranscription(Verb):
    """Transcribe the call in real time, with up to 12 CustomParam."""

    name = "StartTranscription"
    attributes = (
        ("name", NAME),
        ("tracks", TRACKS),
        *webhook("transcription_event", fallback=False),
        *CREDENTIALS,
        ("destination", WEBSOCKET_URL),
        ("stabilized", BOOL),
        ("detect_language", BOOL),
        ("preferred_languages", Text(256)),
    )
    child_names = ("CustomParam",)
    max_children = 12


class StopTranscription(Verb):
    """Stop the transcription ``name``, or all of them when no name is given."""

    name = "StopTranscription"
    attributes = (("name", NAME),)


class Tag(Verb):
    """Set the tag sent with later callbacks: ``Tag("state")``; ``Tag()`` clears it."""

    name = "Tag"
    text_kind = TAG
    text_optional = True


class Refer(Verb):
    """Send a SIP REFER to one SipUri (inbound SIP calls only)."""

    name = "Refer"
    attributes = (*webhook("refer_complete", fallback=False), TAG_ATTRIBUTE)
    child_names = ("SipUri",)
    min_children = 1
    max_children = 1


class Response(Root):
    """The root of every webhook reply."""

    name = "Response"


class Bxml(Root):
    """The root for ``PUT /calls/{callId}/bxml`` (Update Call BXML)."""

    name = "Bxml"


def _resolve_children() -> None:
    """Turn each class's child names into classes, once every verb is defined."""
    for verb_class in Verb.registry.values():
        if issubclass(verb_class, Root):
            verb_class._child_classes = frozenset(
                cls
                for cls in Verb.registry.values()
                if not cls.nested_only and not issubclass(cls, Root)
            )
        else:
            verb_class._child_classes = frozenset(
                Verb.registry[name] for name in verb_class.child_names
            )


_resolve_children()
