"""Value kinds: how one attribute or text value is checked, written as XML and read back.

Each kind has two directions.  ``to_xml(value)`` takes the Python value a caller passed
(``max_digits=3``), checks its type and rule, and returns the attribute string (``"3"``).
``from_xml(text)`` turns a parsed attribute string back into that Python value; the
parser then builds the verb through its constructor, so both paths share one set of
checks.  A broken rule raises ``Invalid`` with the rule only; the verb that owns the
value adds its own name and the attribute's (``Gather: maxDigits must be ...``).

Characters XML cannot carry (NUL, most C0 controls, U+FFFE, lone surrogates) are left
to lxml, which refuses them when the value is set on the element.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import ClassVar

from voice_rules import BXML_UUI, UuiRule


class Invalid(Exception):
    """A value broke its rule; the message is the rule, e.g. "must be between 1 and 50"."""


def show(value: object) -> str:
    """A short repr for messages: never echo megabytes back."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_error(expected: str, value: object) -> Invalid:
    return Invalid(f"must be {expected}, got {type(value).__name__} {show(value)}")


# Each kind remembers up to this many values it has accepted, with their XML text.  The
# same URLs, methods and numbers recur in every document an app builds, and a dict hit is
# several times cheaper than the type, range and pattern checks.  Only values whose exact
# type is in the kind's ``memo_types`` (immutable str, int, float, bool) are remembered;
# the memo is emptied when full.
MEMO_SIZE = 512


class Memo(dict[object, str]):
    """A kind's accepted values -> their XML text; a missing value is ``learn``ed, so a
    lookup is one subscript whether it hits or not."""

    __slots__ = ("learn",)

    def __init__(self, learn: Callable[[object], str]) -> None:
        super().__init__()
        self.learn = learn

    def __missing__(self, value: object) -> str:
        return self.learn(value)


class Kind:
    """Base of the value kinds; ``rule`` describes a valid value for messages.

    ``to_xml`` answers from ``memo`` when it can and otherwise ``learn``s: runs ``check``,
    the full validation, and remembers the result.  The generated constructors (node.py)
    subscript ``memo``, which learns a missing value itself.
    """

    memo_types: ClassVar[frozenset[type]] = frozenset()
    __slots__ = ("memo", "rule")

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.memo = Memo(self.learn)

    def to_xml(self, value: object) -> str:
        if type(value) in self.memo_types:
            known = self.memo.get(value)
            if known is not None:
                return known
        return self.learn(value)

    def learn(self, value: object) -> str:
        """``check`` the value and remember it (a memo miss)."""
        text = self.check(value)
        if type(value) in self.memo_types:
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()
            self.memo[value] = text
        return text

    def check(self, value: object) -> str:
        """The XML text for ``value``, or Invalid naming the rule it breaks."""
        raise NotImplementedError

    def from_xml(self, text: str) -> object:
        return text


class Text(Kind):
    """A string of bounded length, optionally matching a pattern (checked with fullmatch)."""

    __slots__ = ("max_length", "min_length", "pattern")
    memo_types = frozenset({str})

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        pattern: str | None = None,
        rule: str = "",
    ) -> None:
        super().__init__(rule)
        self.max_length = max_length
        self.min_length = min_length
        self.pattern = re.compile(pattern) if pattern is not None else None

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise _type_error("a string", value)
        if len(value) > self.max_length:
            rule = f"{self.rule} and " if self.rule else "must be "
            raise Invalid(f"{rule}at most {self.max_length} characters, got {len(value)}")
        if len(value) < self.min_length:
            raise Invalid("must not be empty")
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            raise Invalid(f"{self.rule}, got {show(value)}")
        return value


class Url(Kind):
    """A URL of up to 2048 characters with one of ``schemes`` (or, if ``relative``, none),
    without spaces or control characters.  String tests, not a regex: URLs are the most
    common values in BXML and this check runs for each new one."""

    __slots__ = ("relative", "schemes")
    memo_types = frozenset({str})
    _SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")

    def __init__(self, schemes: tuple[str, ...], *, relative: bool, rule: str) -> None:
        super().__init__(rule + " without spaces")
        self.schemes = schemes
        self.relative = relative

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise _type_error("a string", value)
        if len(value) > 2048:
            raise Invalid(f"{self.rule} and at most 2048 characters, got {len(value)}")
        if not value:
            raise Invalid("must not be empty")
        # isprintable() is False for control characters and for every space but " ".
        if " " not in value and value.isprintable() and value not in self.schemes:
            if value.startswith(self.schemes):
                return value
            if self.relative and self._SCHEME.match(value) is None:
                return value
        raise Invalid(f"{self.rule}, got {show(value)}")


class Choice(Kind):
    """One of a fixed set of strings (case-sensitive, as Bandwidth documents them)."""

    __slots__ = ("choices",)
    memo_types = frozenset({str})

    def __init__(self, *choices: str) -> None:
        super().__init__("must be one of " + ", ".join(choices))
        self.choices = frozenset(choices)
        self.memo.update((choice, choice) for choice in choices)

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise _type_error("a string", value)
        if value not in self.choices:
            raise Invalid(f"{self.rule}, got {show(value)}")
        return value


class Bool(Kind):
    """A Python bool, written ``true``/``false``."""

    __slots__ = ()
    memo_types = frozenset({bool})

    def __init__(self) -> None:
        super().__init__("must be true or false")
        self.memo.update({True: "true", False: "false"})

    def check(self, value: object) -> str:
        if value is True:
            return "true"
        if value is False:
            return "false"
        raise _type_error("a bool", value)

    def from_xml(self, text: str) -> object:
        if text == "true":
            return True
        if text == "false":
            return False
        raise Invalid(f"{self.rule}, got {show(text)}")


class Uui(Kind):
    """A User-To-User list: values ending ``;encoding=jwt`` or ``;encoding=base64``."""

    __slots__ = ("max_length", "names", "uui_rule")
    memo_types = frozenset({str})

    def __init__(self, max_length: int, uui_rule: UuiRule = BXML_UUI) -> None:
        self.names = "|".join(uui_rule.encodings)
        super().__init__(f"must be comma-separated <data>;encoding={self.names} values (RFC 7433)")
        self.max_length = max_length
        self.uui_rule = uui_rule

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise _type_error("a string", value)
        if len(value) > self.max_length:
            raise Invalid(f"must be at most {self.max_length} characters, got {len(value)}")
        if self.uui_rule.whole.fullmatch(value) is None:
            index, encoding = self.uui_rule.problem(value)
            if encoding is None:
                raise Invalid(
                    f"value {index} must be <data>;encoding={self.names} (RFC 7433), got {show(value)}"
                )
            raise Invalid(f"value {index} is not valid {encoding} data, got {show(value)}")
        return value


def format_number(value: int | float) -> str:
    """``2`` and ``2.0`` -> "2", ``2.5`` -> "2.5"; never an exponent."""
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    text = repr(value)
    if "e" in text:  # repr(1e-05) == "1e-05"; BXML readers expect plain decimals
        text = format(Decimal(text), "f")
    return text


# Bounded digit counts: int() on thousands of digits is slow, and nothing here needs them.
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,18})?")


class Integer(Kind):
    """An int (not a bool) within [low, high]."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        super().__init__(f"must be between {low} and {high}")
        self.low = low
        self.high = high

    memo_types = frozenset({int})  # exact types: True (a bool) is refused, not memoized

    def check(self, value: object) -> str:
        if type(value) is not int:
            raise _type_error("an integer", value)
        if not self.low <= value <= self.high:
            raise Invalid(f"{self.rule}, got {value}")
        return str(value)

    def from_xml(self, text: str) -> object:
        if _INTEGER.fullmatch(text) is None:
            raise Invalid(f"{self.rule} (an integer), got {show(text)}")
        return int(text)


class Number(Kind):
    """An int or finite float within [low, high]; decimals allowed (seconds, milliseconds)."""

    __slots__ = ("high", "low")

    def __init__(self, low: float, high: float) -> None:
        super().__init__(f"must be between {format_number(low)} and {format_number(high)}")
        self.low = low
        self.high = high

    memo_types = frozenset({int, float})  # 2 and 2.0 share an entry: both render "2"

    def check(self, value: object) -> str:
        if type(value) is not int and type(value) is not float:  # no bools
            raise _type_error("a number", value)
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise Invalid(f"{self.rule}, got {show(value)}")
        return format_number(value)

    def from_xml(self, text: str) -> object:
        if _DECIMAL.fullmatch(text) is None:
            raise Invalid(f"{self.rule} (a decimal number), got {show(text)}")
        return float(text) if "." in text else int(text)


# --- the kinds the verb tables use ----------------------------------------------------------

_NO_SPACE = r"[^\s\x00-\x1f\x7f]+"
_E164 = r"\+[1-9][0-9]{1,14}"
_PRIVATE = r"Restricted|Anonymous|Private|Unavailable"

# An http(s) URL, or a relative one (no scheme); Bandwidth resolves relative URLs against
# the URL that served the BXML.  Other schemes (javascript:, file:) are refused.
URL = Url(("https://", "http://"), relative=True, rule="must be an http(s) or relative URL")
WEBSOCKET_URL = Url(("wss://", "ws://"), relative=False, rule="must be a wss:// (or ws://) URL")
METHOD = Choice("GET", "POST")
BOOL = Bool()
CREDENTIAL = Text(1024)
TAG = Text(256)
SINGLE_LINE_256 = Text(256, pattern=r"[^\x00-\x1f\x7f]*", rule="must be on one line")
NAME = Text(256, min_length=1)
PARAM_VALUE = Text(2048)
LONG_TEXT = Text(2048)

PHONE_NUMBER = Text(
    16, pattern=_E164, rule="must be an E.164 number (+ then 2-15 digits, the first not 0)"
)
SIP_URI = Text(2048, pattern=r"sip:" + _NO_SPACE, rule="must be a SIP URI starting with 'sip:'")
FORWARD_TO = Text(
    2048,
    pattern=f"{_E164}|sip:{_NO_SPACE}",
    rule="must be an E.164 number or a SIP URI starting with 'sip:'",
)
FORWARD_FROM = Text(
    16,
    pattern=f"{_E164}|{_PRIVATE}",
    rule="must be an E.164 number or " + _PRIVATE.replace("|", "/"),
)
TRANSFER_CALLER_ID = Text(
    16,
    pattern=f"(?:{_E164}|{_PRIVATE})?",
    rule="must be an E.164 number, " + _PRIVATE.replace("|", "/") + " or blank",
)
CALL_ID = Text(256, min_length=1, pattern=_NO_SPACE, rule="must be a call id without spaces")
CONFERENCE_NAME = Text(
    100, min_length=1, pattern=r"[A-Za-z0-9_.\-]+", rule="must use only A-Z a-z 0-9 - _ ."
)
DTMF_DIGITS = Text(
    50, min_length=1, pattern=r"[0-9*#a-dA-DwW,]+", rule="must use only 0-9 * # a-d A-D w W ,"
)
TERMINATING_DIGITS = Text(12, pattern=r"[0-9*#]*", rule="must use only 0-9 * #")
UUI_256 = Uui(256)
UUI_350 = Uui(350)

VOICE = Choice(
    # Standard voices, then the Enhanced (extra cost) ones, as section 4.2 lists them.
    *"julie kate susan dave paul bridget simon katrin stefan esperanza violeta jorge rosa".split(),
    *"jolie bernard paola luca masako kenji nadiya anatoli zeina zhiyu".split(),
    *"ruth stephen lupe pedro gabrielle liam".split(),
)
GENDER = Choice("male", "female")
# The locale column of Bandwidth's voice table, and the language_REGION spellings its older
# docs list for the same voices.
LOCALE = Choice(
    *"en_US en_UK es es_MX es_US fr fr_FR fr_CA de de_DE it it_IT ja ja_JP ru ru_RU".split(),
    *"arb cmn_CN".split(),
)
GATHER_INPUT = Choice("dtmf", "speech", "dtmf_speech")
TRACKS = Choice("inbound", "outbound", "both")
STREAM_MODE = Choice("unidirectional", "bidirectional")
FILE_FORMAT = Choice("mp3", "wav")
DIVERSION_TREATMENT = Choice("none", "propagate", "stack")
DIVERSION_REASON = Choice(
    "unknown",
    "user-busy",
    "no-answer",
    "unavailable",
    "unconditional",
    "time-of-day",
    "do-not-disturb",
    "deflection",
    "follow-me",
    "out-of-service",
    "away",
)
