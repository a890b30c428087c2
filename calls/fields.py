"""The field types of :mod:`calls.schemas`: JSON values taken as they are, checked by rules.

Each field's ``_deserialize`` only checks the JSON type (no field coerces: a string is never a
number, 1 is never true) and every other rule is a marshmallow validator, run by marshmallow
in the order given, each failing rule adding its own message.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from marshmallow import ValidationError, fields
from marshmallow.validate import Length, OneOf, Range, Regexp

from voice_rules import CREATE_CALL_UUI

METHODS = ("GET", "POST")
MAX_URL = 2048
MAX_CREDENTIAL = 1024
MAX_TAG = 4096
MAX_DISPLAY_NAME = 256
MAX_UUI = 350

# "+" then 2-15 ASCII digits, the first non-zero.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# sip:user@host[:port][;params] (RFC 3261 user and uri-parameter characters, ASCII only).
SIP_URI = re.compile(
    r"(?i:sip):[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
    r"(?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$%=]+)*"
)
# http(s)://host[:port][/path?query#fragment]; printable ASCII only, no userinfo, port 1-65535.
HTTP_URL = re.compile(
    r"(?i:https?)://"
    r"(?P<host>[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(?:[/?#][!-~]*+)?"
)
# C0/C1 control characters, DEL and the Unicode line/paragraph separators.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
URL_ERROR = "Not a valid http or https URL."
USERINFO_ERROR = "Credentials belong in the username/password fields, not in the URL."


def camelcase(name: str) -> str:
    """``answer_fallback_url`` -> ``answerFallbackUrl``; ``from_`` -> ``from``."""
    first, *rest = name.split("_")  # "from_" ends with "", which adds nothing
    return first + "".join(word.title() for word in rest)


##### RULES #####


def no_control_characters(value: str) -> None:
    if CONTROL.search(value) is not None:
        raise ValidationError("May not contain control characters.")


def http_url(value: str) -> None:
    """An absolute http(s) URL without credentials in it (they have fields of their own)."""
    if HTTP_URL.fullmatch(value) is None:
        authority = value.partition("://")[2].partition("/")[0]
        raise ValidationError(USERINFO_ERROR if "@" in authority else URL_ERROR)
    if "[" in value:
        try:
            ipaddress.IPv6Address(value.partition("[")[2].partition("]")[0])
        except ValueError:
            raise ValidationError(URL_ERROR) from None


def uui_list(value: str) -> None:
    """Each comma-separated value is ``<data>[;param=value...];encoding=jwt|base64|hex``
    (the rule BXML shares, in voice_rules.py)."""
    if CREATE_CALL_UUI.whole.fullmatch(value) is not None:
        return
    index, encoding = CREATE_CALL_UUI.problem(value)
    if encoding is None:
        raise ValidationError(f"Value {index} must be <data>;encoding=jwt|base64|hex (RFC 7433).")
    raise ValidationError(f"Value {index} is not valid {encoding} data.")


##### FIELDS #####

Rule = Callable[[Any], Any]


class Text(fields.Field[str]):
    """A JSON string with, in this order, a length range, no control characters and the
    ``validate`` rule."""

    default_error_messages = {"invalid": "Not a valid string."}

    def __init__(
        self,
        *,
        max_length: int | None = None,
        min_length: int = 0,
        no_control: bool = False,
        validate: Rule | None = None,
        **kwargs: Any,
    ) -> None:
        rules: list[Rule] = []
        if min_length:
            rules.append(Length(min=min_length))
        if max_length is not None:
            rules.append(Length(max=max_length))
        if no_control:
            rules.append(no_control_characters)
        if validate is not None:
            rules.append(validate)
        super().__init__(validate=rules, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class Number(fields.Field[float]):
    """A finite JSON number (``int`` or ``float``, never ``bool`` or a string) in a range.

    Integers stay integers, so ``callTimeout=30`` is sent as ``30``, not ``30.0``.
    """

    default_error_messages = {
        "invalid": "Not a valid number.",
        "not_integer": "Not a valid integer.",
        "not_finite": "Must be a finite number.",
    }

    def __init__(
        self,
        *,
        between: tuple[float, float] | None = None,
        integer: bool = False,
        **kwargs: Any,
    ) -> None:
        rules = (
            [] if between is None else [Range(*between, error="Must be between {min} and {max}.")]
        )
        self.integer = integer
        super().__init__(validate=rules, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if self.integer and not isinstance(value, int):
            raise self.make_error("not_integer")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("not_finite")
        return value


class Bool(fields.Field[bool]):
    """``true`` or ``false`` only (marshmallow's Boolean would also take ``"yes"`` or ``1``)."""

    default_error_messages = {"invalid": "Not a valid boolean."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


def choice(choices: Iterable[str], **kwargs: Any) -> fields.Raw:
    """One of a fixed set of strings (case-sensitive, as Bandwidth's enums are)."""
    return fields.Raw(validate=OneOf(sorted(choices)), **kwargs)  # "Must be one of: ..."


def whole_match(pattern: str, error: str) -> Regexp:
    """The whole value matches ``pattern`` (Regexp alone would accept a matching prefix)."""
    return Regexp(rf"(?:{pattern})\Z", error=error)


def phone_number(**kwargs: Any) -> Text:
    rule = whole_match(E164.pattern, "Must be an E.164 number: + then 2-15 digits.")
    return Text(validate=rule, **kwargs)


def destination(**kwargs: Any) -> Text:
    rule = whole_match(
        f"{E164.pattern}|{SIP_URI.pattern}",
        "Must be an E.164 number (+ then 2-15 digits) or a sip: URI.",
    )
    return Text(validate=rule, **kwargs)


def uui(**kwargs: Any) -> Text:
    """A comma-separated list of User-To-User values (RFC 7433), 350 characters in all."""
    return Text(min_length=1, max_length=MAX_UUI, validate=uui_list, **kwargs)


def url(**kwargs: Any) -> Text:
    return Text(max_length=MAX_URL, validate=http_url, **kwargs)


def optional_url() -> Text:
    return url(allow_none=True)


def method() -> fields.Raw:
    return choice(METHODS, allow_none=True)


def credential() -> Text:
    return Text(max_length=MAX_CREDENTIAL, allow_none=True)
