"""SSML inside ``<SpeakSentence>``, built as real elements from an allow-list.

    from bxml import SpeakSentence, ssml
    SpeakSentence("Hello ", ssml.Emphasis("there", level="strong"), "!")
    SpeakSentence("Wait", ssml.Break(time="500ms"), "then ", ssml.SayAs("123", interpret_as="digits"))

Strings are always text: ``SpeakSentence("a <b> c")`` says "a <b> c".  Markup written as
a string goes through ``SpeakSentence.from_ssml(...)``, which parses it with the hardened
parser and accepts only the elements and attributes below.  Nothing is ever produced by
un-escaping serialized text (the Bandwidth SDK's regex does that, and it is an injection).
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from lxml import etree

from bxml.errors import BxmlError
from bxml.node import Node, bad_character, line_of
from bxml.values import Choice, Invalid, Kind, Text, show

__all__ = [
    "Break",
    "Emphasis",
    "Lang",
    "P",
    "Phoneme",
    "Prosody",
    "S",
    "SayAs",
    "SsmlElement",
    "Sub",
]


class BreakTime(Kind):
    """A pause length such as ``500ms`` or ``1.5s``, at most 10 seconds."""

    __slots__ = ()
    memo_types = frozenset({str})
    _PATTERN = re.compile(r"([0-9]{1,5}(?:\.[0-9]{1,3})?)(ms|s)")

    def __init__(self) -> None:
        super().__init__("must be like 500ms or 1.5s, at most 10s")

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid(f"{self.rule}, got {type(value).__name__} {show(value)}")
        match = self._PATTERN.fullmatch(value)
        if match is None:
            raise Invalid(f"{self.rule}, got {show(value)}")
        seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
        if seconds > 10:
            raise Invalid(f"{self.rule}, got {show(value)}")
        return value


def _levels(*words: str, number: str) -> Text:
    return Text(
        32,
        pattern="|".join(words) + "|" + number,
        rule="must be one of " + ", ".join(words) + " or a relative value like +10%",
    )


LANGUAGE = Text(35, pattern=r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", rule="must look like fr-FR")
PITCH = _levels(
    "x-low", "low", "medium", "high", "x-high", "default", number=r"[+-]?[0-9]{1,3}(?:\.[0-9]+)?%"
)
RATE = _levels(
    "x-slow", "slow", "medium", "fast", "x-fast", "default", number=r"[0-9]{1,3}(?:\.[0-9]+)?%"
)
VOLUME = _levels(
    "silent", "x-soft", "soft", "medium", "loud", "x-loud", "default",
    number=r"[+-][0-9]{1,2}(?:\.[0-9]+)?dB",
)  # fmt: skip
INTERPRET_AS = Choice(
    "characters", "spell-out", "cardinal", "number", "ordinal", "digits", "fraction",
    "unit", "date", "time", "telephone", "address", "interjection", "expletive",
)  # fmt: skip
SAY_AS_FORMAT = Text(32, min_length=1, pattern=r"[A-Za-z0-9_\-]+", rule="must be like mdy")
PHONETIC = Text(256, min_length=1)

Content: TypeAlias = "str | SsmlElement"
MAX_DEPTH = 16  # SSML levels; real prompts use two or three


class SsmlElement(Node):
    """One SSML element: text and (for containers) further SSML elements, mixed."""

    registry: ClassVar[dict[str, type[SsmlElement]]] = {}
    holds: ClassVar[str] = "mixed"  # "mixed": text and elements; "text": text only; "nothing"

    __slots__ = ("_content", "_depth")
    _content: tuple[Content, ...]
    _depth: int  # levels of SSML elements, this one included

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        SsmlElement.registry[cls.name] = cls

    if TYPE_CHECKING:  # generated per class from the attribute table (node._compile_init)

        def __init__(self, *content: str | SsmlElement, **attributes: object) -> None: ...

    def _init_content(self, element: etree._Element, content: tuple[object, ...]) -> None:
        self._content = fill_mixed(self, element, content, elements=self.holds == "mixed")
        self._depth = 1 + max(
            (item._depth for item in self._content if isinstance(item, SsmlElement)), default=0
        )
        if self._depth > MAX_DEPTH:
            raise self.error(f"SSML nested deeper than {MAX_DEPTH} levels")
        if self.holds == "nothing" and self._content:
            raise self.error("holds no content")
        if self.holds == "text" and not flatten(self._content).strip():
            raise self.error("text must not be blank")

    @property
    def content(self) -> tuple[str | SsmlElement, ...]:
        """The mixed content: strings and SSML elements, adjacent strings merged."""
        return self._content

    @property
    def text(self) -> str:
        """The content's text with the markup left out."""
        return flatten(self._content)

    def _repr_content(self) -> list[str]:
        return [repr(item) for item in self._content]

    @classmethod
    def _from_element(cls, element: etree._Element, depth: int = 1) -> SsmlElement:
        try:
            content = read_mixed(cls.name, element, depth)
            return cls(*content, **cls._read_attributes(element))
        except BxmlError as error:
            if error.line is None:
                error.line = line_of(element)
            raise


def flatten(content: tuple[Content, ...]) -> str:
    """The text of mixed content, SSML markup left out."""
    return "".join(item if isinstance(item, str) else item.text for item in content)


def fill_mixed(
    owner: Node, element: etree._Element, content: tuple[object, ...], *, elements: bool
) -> tuple[Content, ...]:
    """Check mixed content, merge adjacent strings, and write it into ``element``."""
    if len(content) == 1 and type(content[0]) is str:  # the common case: plain text
        text = content[0]
        if not text:
            return ()
        try:
            element.text = text
        except ValueError:
            raise owner.error(f"text {bad_character(text)}") from None
        return (text,)
    items: list[Content] = []
    for item in content:
        if isinstance(item, str):
            if not item:
                continue
            if items and isinstance(items[-1], str):
                items[-1] += item
            else:
                items.append(item)
        elif isinstance(item, SsmlElement) and elements:
            items.append(item)
        elif isinstance(item, SsmlElement):
            raise owner.error(f"holds text only, got <{item.name}>")
        else:
            raise owner.error(
                f"content must be strings or bxml.ssml elements, got {type(item).__name__} "
                f"{show(item)}"
            )
    previous: etree._Element | None = None
    for item in items:
        if isinstance(item, str):
            try:
                if previous is None:
                    element.text = item
                else:
                    previous.tail = item
            except ValueError:
                raise owner.error(f"text {bad_character(item)}") from None
        else:
            previous = item._element
            if previous.getparent() is not None:  # already in another parent: copy it
                previous = deepcopy(previous)
            previous.tail = None
            element.append(previous)
    return tuple(items)


def read_mixed(owner: str, element: etree._Element, depth: int = 0) -> list[Content]:
    """Mixed content of a parsed element: its text, SSML children (allow-listed) and tails.

    ``depth`` counts the SSML levels above; deeper than MAX_DEPTH is refused before
    recursing further, so no document can exhaust the stack.
    """
    if depth >= MAX_DEPTH and len(element):
        raise BxmlError(f"{owner}: SSML nested deeper than {MAX_DEPTH} levels", line_of(element))
    content: list[Content] = []
    if element.text:
        content.append(element.text)
    for child in element:
        tag = child.tag
        ssml_class = SsmlElement.registry.get(tag) if isinstance(tag, str) else None
        if ssml_class is None:
            raise BxmlError(f"{owner}: unknown SSML element {show(tag)}", line_of(child))
        content.append(ssml_class._from_element(child, depth + 1))
        if child.tail:
            content.append(child.tail)
    return content


# --- the allow-list --------------------------------------------------------------------------


class Break(SsmlElement):
    """A pause: ``Break(time="500ms")`` or ``Break(strength="strong")``."""

    name = "break"
    holds = "nothing"
    attributes = (
        ("strength", Choice("none", "x-weak", "weak", "medium", "strong", "x-strong")),
        ("time", BreakTime()),
    )


class Emphasis(SsmlElement):
    name = "emphasis"
    attributes = (("level", Choice("strong", "moderate", "reduced", "none")),)


class Lang(SsmlElement):
    """Text in another language: ``Lang("Bonjour", xml_lang="fr-FR")``."""

    name = "lang"
    attributes = (("xml_lang", LANGUAGE, "xml:lang"),)
    required = ("xml_lang",)


class P(SsmlElement):
    """A paragraph."""

    name = "p"


class Phoneme(SsmlElement):
    name = "phoneme"
    holds = "text"
    attributes = (
        ("alphabet", Choice("ipa", "x-sampa")),
        ("ph", PHONETIC),
    )
    required = ("ph",)


class Prosody(SsmlElement):
    name = "prosody"
    attributes = (
        ("pitch", PITCH),
        ("rate", RATE),
        ("volume", VOLUME),
    )


class S(SsmlElement):
    """A sentence."""

    name = "s"


class SayAs(SsmlElement):
    """``SayAs("123", interpret_as="digits")``."""

    name = "say-as"
    holds = "text"
    attributes = (
        ("interpret_as", INTERPRET_AS, "interpret-as"),
        ("format", SAY_AS_FORMAT),
    )
    required = ("interpret_as",)


class Sub(SsmlElement):
    """Say ``alias`` instead of the text: ``Sub("W3C", alias="World Wide Web Consortium")``."""

    name = "sub"
    holds = "text"
    attributes = (("alias", PHONETIC),)
    required = ("alias",)
