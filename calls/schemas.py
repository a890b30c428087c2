"""Request schemas for the Bandwidth Voice API: Create Call and Update Call.

Python names are snake_case (``from_``, ``answer_url``); the JSON on the wire is camelCase
(``from``, ``answerUrl``), set by :class:`CamelCaseSchema`. Every error is keyed by the wire
name, unknown fields are rejected, and the same schemas validate incoming JSON on a server::

    data = CreateCallSchema().load(json_body)        # -> snake_case dict
    wire = create_call_payload(to="+12025550123", from_="+12025550199",
                               application_id="abc", answer_url="https://cb.example/answer")

Constraints come from Bandwidth's OpenAPI spec (``createCall``, ``machineDetectionConfiguration``,
``updateCall``) plus the rules it states only in prose: E.164 numbers, http(s) URLs that must be
https when they carry credentials (loopback hosts excepted, for local development and the
sandbox), ``displayName`` values under ``privacy``, and the ``uui`` list format.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    post_load,
    validates_schema,
)
from marshmallow.error_store import ErrorStore

from voice_rules import CREATE_CALL_UUI, exposes_credentials

__all__ = [
    "CamelCaseSchema",
    "CreateCallSchema",
    "MachineDetectionSchema",
    "UpdateCallSchema",
    "create_call_payload",
    "to_json",
    "update_call_payload",
]

_T = TypeVar("_T")

METHODS = frozenset({"GET", "POST"})
PRIVATE_DISPLAY_NAMES = frozenset({"Restricted", "Anonymous", "Private", "Unavailable"})
MAX_URL = 2048
MAX_CREDENTIAL = 1024
MAX_TAG = 4096
MAX_DISPLAY_NAME = 256
MAX_UUI = 350

# "+" then 2-15 ASCII digits, the first non-zero.  Used with fullmatch: no trailing newline.
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
# User-To-User values (RFC 7433), the rule BXML shares (voice_rules.py).
UUI = CREATE_CALL_UUI.whole


def camelcase(name: str) -> str:
    """``answer_fallback_url`` -> ``answerFallbackUrl``; ``from_`` -> ``from``."""
    first, *rest = name.rstrip("_").split("_")
    return first + "".join(word.title() for word in rest)


##### FIELDS #####
# Each field is one check function, built once per schema: a single combined test accepts a
# good value, and only a bad one pays for finding the message.  The schema validates ~36
# values per request on every outbound call.  No field coerces: a string is never a number,
# 1 is never true.


class CheckedField(fields.Field[_T]):
    """A field whose whole job is one function of the value: ``make_check()`` returns it.

    :class:`CamelCaseSchema` builds each field's check once, when the schema is created, and
    calls it straight for every present, non-null value.  ``_deserialize`` gives the same
    result on marshmallow's own path (collections, ``partial``, ``validate=`` fields).
    """

    def make_check(self) -> Callable[[Any], _T]:
        raise NotImplementedError

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> _T:
        return self.make_check()(value)


class Text(CheckedField[str]):
    """A ``str`` with a length range and, optionally, a fullmatch pattern."""

    default_error_messages = {
        "invalid": "Not a valid string.",
        "too_short": "Shorter than minimum length {min}.",
        "too_long": "Longer than maximum length {max}.",
        "pattern": "Invalid value.",
        "control": "May not contain control characters.",
    }

    def __init__(
        self,
        *,
        max_length: int | None = None,
        min_length: int = 0,
        pattern: re.Pattern[str] | None = None,
        pattern_error: str | None = None,
        no_control: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.min_length = min_length
        self.pattern = pattern
        self.no_control = no_control
        if pattern_error is not None:
            self.error_messages = {**self.error_messages, "pattern": pattern_error}

    def make_check(self) -> Callable[[Any], str]:
        full = self._full_check()
        low = self.min_length
        high = self.max_length if self.max_length is not None else sys.maxsize
        control = CONTROL.search if self.no_control else None
        pattern = self.pattern.fullmatch if self.pattern is not None else None
        # One combined test for a good value; ``full`` finds the message for a bad one.
        if control is not None:
            return full
        if pattern is None:

            def check(value: Any) -> str:
                if value.__class__ is str and low <= len(value) <= high:
                    text: str = value
                    return text
                return full(value)

            return check

        def check_pattern(value: Any) -> str:
            if value.__class__ is str and low <= len(value) <= high and pattern(value):
                text: str = value
                return text
            return full(value)

        return check_pattern

    def _full_check(self) -> Callable[[Any], str]:
        error = self.make_error
        low = self.min_length
        high = self.max_length if self.max_length is not None else sys.maxsize
        control = CONTROL.search if self.no_control else None
        pattern = self.pattern.fullmatch if self.pattern is not None else None

        def check(value: Any) -> str:
            if value.__class__ is not str and not isinstance(value, str):
                raise error("invalid")
            size = len(value)
            if size < low:
                raise error("too_short", min=low)
            if size > high:
                raise error("too_long", max=high)
            if control is not None and control(value) is not None:
                raise error("control")
            if pattern is not None and pattern(value) is None:
                raise error("pattern")
            text: str = value
            return text

        return check


class HttpUrl(CheckedField[str]):
    """An absolute http(s) URL of at most 2048 characters, without credentials in it."""

    default_error_messages = {
        "invalid": "Not a valid string.",
        "too_long": "Longer than maximum length {max}.",
        "url": "Not a valid http or https URL.",
        "userinfo": "Credentials belong in the username/password fields, not in the URL.",
    }

    def make_check(self) -> Callable[[Any], str]:
        full = self._full_check()
        fullmatch = HTTP_URL.fullmatch

        def check(value: Any) -> str:
            if (
                value.__class__ is str
                and len(value) <= MAX_URL
                and fullmatch(value)
                and "[" not in value
            ):
                url: str = value
                return url
            return full(value)

        return check

    def _full_check(self) -> Callable[[Any], str]:
        error = self.make_error
        fullmatch = HTTP_URL.fullmatch

        def check(value: Any) -> str:
            if value.__class__ is not str and not isinstance(value, str):
                raise error("invalid")
            if len(value) > MAX_URL:
                raise error("too_long", max=MAX_URL)
            if fullmatch(value) is None:
                authority = value.partition("://")[2].split("/", 1)[0]
                raise error("userinfo" if "@" in authority else "url")
            if "[" in value:
                host = value.partition("[")[2].partition("]")[0]
                try:
                    ipaddress.IPv6Address(host)
                except ValueError:
                    raise error("url") from None
            url: str = value
            return url

        return check


class Number(CheckedField[float]):
    """A finite JSON number (``int`` or ``float``, never ``bool`` or a string) in a range.

    Integers stay integers, so ``callTimeout=30`` is sent as ``30``, not ``30.0``.
    """

    default_error_messages = {
        "invalid": "Not a valid number.",
        "not_integer": "Not a valid integer.",
        "not_finite": "Must be a finite number.",
        "range": "Must be between {min} and {max}.",
        "minimum": "Must be greater than or equal to {min}.",
    }

    def __init__(
        self,
        *,
        minimum: float,
        maximum: float | None = None,
        integer: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum
        self.integer = integer

    def make_check(self) -> Callable[[Any], float]:
        full = self._full_check()
        low = self.minimum
        high = self.maximum if self.maximum is not None else sys.float_info.max
        # NaN fails every comparison and inf exceeds ``high``: both go to ``full``.
        if self.integer:

            def check(value: Any) -> float:
                if value.__class__ is int and low <= value <= high:
                    number: float = value
                    return number
                return full(value)

        else:

            def check(value: Any) -> float:
                kind = value.__class__
                if (kind is int or kind is float) and low <= value <= high:
                    number: float = value
                    return number
                return full(value)

        return check

    def _full_check(self) -> Callable[[Any], float]:
        error = self.make_error
        low, high, integer = self.minimum, self.maximum, self.integer
        isfinite = math.isfinite

        def check(value: Any) -> float:
            kind = value.__class__
            if kind is not int:
                if kind is not float and (
                    isinstance(value, bool) or not isinstance(value, (int, float))
                ):
                    raise error("invalid")
                if integer and not isinstance(value, int):
                    raise error("not_integer")
                if not isinstance(value, int) and not isfinite(value):
                    raise error("not_finite")
            if high is None:
                if value < low:
                    raise error("minimum", min=low)
            elif not low <= value <= high:
                raise error("range", min=low, max=high)
            number: float = value
            return number

        return check


class Bool(CheckedField[bool]):
    """``true`` or ``false`` only (marshmallow's Boolean would also take ``"yes"`` or ``1``)."""

    default_error_messages = {"invalid": "Not a valid boolean."}

    def make_check(self) -> Callable[[Any], bool]:
        error = self.make_error

        def check(value: Any) -> bool:
            if value is True or value is False:
                flag: bool = value
                return flag
            raise error("invalid")

        return check


class Choice(CheckedField[str]):
    """One of a fixed set of strings (case-sensitive, as Bandwidth's enums are)."""

    default_error_messages = {"invalid": "Must be one of: {choices}."}

    def __init__(self, choices: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = frozenset(choices)

    def make_check(self) -> Callable[[Any], str]:
        error = self.make_error
        choices = self.choices
        text = ", ".join(sorted(choices))

        def check(value: Any) -> str:
            if value.__class__ is str and value in choices:
                choice: str = value
                return choice
            raise error("invalid", choices=text)

        return check


class Uui(Text):
    """A comma-separated list of User-To-User values, each ending with ``;encoding=``
    ``jwt``, ``base64`` or ``hex`` (RFC 7433), at most 350 characters in all."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_UUI, min_length=1, **kwargs)
        self.error_messages = {
            **self.error_messages,
            "item": "Value {index} must be <data>;encoding=jwt|base64|hex (RFC 7433).",
            "data": "Value {index} is not valid {encoding} data.",
        }

    def make_check(self) -> Callable[[Any], str]:
        full = self._full_check()
        whole_match = UUI.fullmatch

        def check(value: Any) -> str:
            if value.__class__ is str and 0 < len(value) <= MAX_UUI and whole_match(value):
                text: str = value
                return text
            return full(value)

        return check

    def _full_check(self) -> Callable[[Any], str]:
        error = self.make_error
        text_check = super()._full_check()
        whole_match = UUI.fullmatch

        def check(value: Any) -> str:
            text = text_check(value)
            if whole_match(text) is None:
                index, encoding = _uui_problem(text)
                if encoding is None:
                    raise error("item", index=index)
                raise error("data", index=index, encoding=encoding)
            return text

        return check


_uui_problem = CREATE_CALL_UUI.problem


class NestedSchema(fields.Nested):
    """``fields.Nested`` for one object, loaded without the per-value validator chain."""

    def make_check(self) -> Callable[[Any], Any]:
        load = self._deserialize

        def check(value: Any) -> Any:
            return load(value, None, None)

        return check


def phone_number(**kwargs: Any) -> Text:
    return Text(
        pattern=E164, pattern_error="Must be an E.164 number: + then 2-15 digits.", **kwargs
    )


def destination(**kwargs: Any) -> Text:
    return Text(
        pattern=re.compile(f"{E164.pattern}|{SIP_URI.pattern}"),
        pattern_error="Must be an E.164 number (+ then 2-15 digits) or a sip: URI.",
        **kwargs,
    )


def optional_url() -> HttpUrl:
    return HttpUrl(allow_none=True)


def method() -> Choice:
    return Choice(METHODS, allow_none=True)


def credential() -> Text:
    return Text(max_length=MAX_CREDENTIAL, allow_none=True)


##### SCHEMAS #####


class CamelCaseSchema(Schema):
    """Snake_case attributes, camelCase JSON keys; unknown keys are an error.

    Two ways in, one set of fields and rules, the same messages keyed by wire name:

    - ``load(json_body)``: a server validating camelCase JSON; returns snake_case data.
    - ``load_kwargs(values)``: a client validating snake_case keyword arguments; returns the
      camelCase dict to send (``None`` means "not set" and is left out).

    Cross-field rules live in :meth:`rules`.  Loading one dict takes a shorter path than
    ``Schema._deserialize`` (each field's check is built once; no closure, ``set_value`` or
    validator chain per value); collections and ``partial`` loads use marshmallow's own.
    """

    class Meta:
        unknown = RAISE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # (attribute, wire key, field, check): ``check`` takes a present, non-null value
        # when nothing else (validate=, pre_load=, post_load=) must run for this field.
        self._plan = tuple(
            (
                field.attribute or name,
                field.data_key or name,
                field,
                field.make_check()
                if hasattr(field, "make_check")
                and not (field.validators or field.pre_load or field.post_load)
                else None,
            )
            for name, field in self.load_fields.items()
        )
        self._keys = frozenset(key for _, key, _, _ in self._plan)
        self._attrs = frozenset(attr for attr, _, _, _ in self._plan)
        self._key_of = {attr: key for attr, key, _, _ in self._plan}
        self._attr_of = {key: attr for attr, key, _, _ in self._plan}
        # load_kwargs: attribute -> (wire key, check of a non-null value, field).
        self._by_attr = {
            attr: (key, self._kwargs_check(key, field, check), field)
            for attr, key, field, check in self._plan
        }
        self._required = frozenset(attr for attr, _, field, _ in self._plan if field.required)
        self._defaults = tuple(
            (attr, key, field.load_default)
            for attr, key, field, _ in self._plan
            if field.load_default is not missing
        )

    @staticmethod
    def _kwargs_check(
        key: str, field: fields.Field[Any], check: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any]:
        if isinstance(field, fields.Nested):
            return lambda value: CamelCaseSchema._load_nested_kwargs(field, value)
        if check is not None:
            return check
        return lambda value: field.deserialize(value, key)

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)

    def rules(self, data: Mapping[str, Any]) -> dict[str, list[str]]:
        """Cross-field errors ``{wireName: [message]}`` for loaded snake_case ``data``.

        Runs only when every field is valid on its own."""
        return {}

    def ignored(self, data: Mapping[str, Any]) -> Iterable[str]:
        """Attributes accepted for compatibility but left out of the result."""
        return ()

    @validates_schema
    def _apply_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = self.rules(data)
        if errors:
            raise ValidationError(errors)

    @post_load
    def _drop_ignored(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        for name in self.ignored(data):
            data.pop(name, None)
        return data

    def load_kwargs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validate snake_case ``values``; return the camelCase dict to send as JSON.

        A nested object may use snake_case or camelCase keys.  Raises
        :class:`marshmallow.ValidationError` keyed by wire name (an unknown keyword by its
        own name), exactly as :meth:`load` would for the same data.
        """
        errors: dict[str, Any] = {}
        loaded: dict[str, Any] = {}
        wire: dict[str, Any] = {}
        by_attr = self._by_attr
        for name, value in values.items():
            entry = by_attr.get(name)
            if entry is None:
                errors[name] = [self.error_messages["unknown"]]
                continue
            key, check, field = entry
            if value is None:
                if not field.allow_none:
                    errors[key] = [field.error_messages["null"]]
                continue
            try:
                loaded[name] = wire[key] = check(value)
            except ValidationError as error:
                errors[key] = error.messages
        if not self._required <= values.keys():
            for name in sorted(self._required - values.keys()):
                key, _, field = by_attr[name]
                errors[key] = [field.error_messages["required"]]
        for name, key, default in self._defaults:
            if name not in values:
                loaded[name] = wire[key] = default() if callable(default) else default
        if not errors:
            errors = self.rules(loaded)
        if errors:
            raise ValidationError(errors, data=dict(values), valid_data=loaded)
        for name in self.ignored(loaded):
            wire.pop(self._key_of[name], None)
        return wire

    @staticmethod
    def _load_nested_kwargs(field: fields.Nested, value: Any) -> Any:
        schema = field.schema
        if not isinstance(schema, CamelCaseSchema) or schema.many:
            return field.deserialize(value)
        if value.__class__ is not dict and not isinstance(value, Mapping):
            raise ValidationError({"_schema": [schema.error_messages["type"]]})
        if not value.keys() <= schema._attrs:  # camelCase keys: map the ones we know
            value = {schema._attr_of.get(name, name): item for name, item in value.items()}
        return schema.load_kwargs(value)

    def _deserialize(
        self,
        data: Any,
        *,
        error_store: ErrorStore,
        many: bool = False,
        partial: Any = None,
        unknown: Any = RAISE,
        index: Any = None,
    ) -> Any:
        if many or partial or not isinstance(data, dict):
            return super()._deserialize(
                data,
                error_store=error_store,
                many=many,
                partial=partial,
                unknown=unknown,
                index=index,
            )
        index = index if self.opts.index_errors else None
        result: dict[str, Any] = {}
        get = data.get
        for attr, key, field, check in self._plan:
            value = get(key, missing)
            try:
                if check is None or value is missing or value is None:
                    value = field.deserialize(value, key, data)
                else:
                    value = check(value)
            except ValidationError as error:
                error_store.store_error(error.messages, key, index=index)  # type: ignore[no-untyped-call]
                value = error.valid_data or missing
            if value is not missing:
                result[attr] = value
        if unknown != EXCLUDE:
            for key in data.keys() - self._keys:
                if unknown == INCLUDE:
                    result[key] = data[key]
                elif unknown == RAISE:
                    error_store.store_error(  # type: ignore[no-untyped-call]
                        [self.error_messages["unknown"]], key, index
                    )
        return result


def _https_errors(
    data: Mapping[str, Any], pairs: Iterable[tuple[str, str, tuple[str, str]]]
) -> dict[str, list[str]]:
    """``{wireName: [message]}`` for each URL that carries credentials over plain http.

    ``pairs`` holds (url attribute, url wire name, credential attributes).  Loopback hosts
    (127.0.0.0/8, ::1, localhost) are exempt: local development and the sandbox use http.
    """
    errors: dict[str, list[str]] = {}
    for attr, key, (user, password) in pairs:
        url = data.get(attr)
        if url is None or url.startswith("https:") or url[:6].lower() == "https:":
            continue
        if (data.get(user) or data.get(password)) and exposes_credentials(url):
            names = f"{camelcase(user)}/{camelcase(password)}"
            errors[key] = [f"Must use https when {names} is set."]
    return errors


class MachineDetectionSchema(CamelCaseSchema):
    """``machineDetection`` of Create Call (``machineDetectionConfiguration``)."""

    mode = Choice({"sync", "async"}, allow_none=True)
    detection_timeout = Number(minimum=0, allow_none=True)
    silence_timeout = Number(minimum=0, allow_none=True)
    speech_threshold = Number(minimum=0, allow_none=True)
    speech_end_threshold = Number(minimum=0, allow_none=True)
    machine_speech_end_threshold = Number(minimum=0, allow_none=True)
    delay_result = Bool(allow_none=True)
    callback_url = optional_url()
    callback_method = method()
    username = credential()
    password = credential()
    fallback_url = optional_url()
    fallback_method = method()
    fallback_username = credential()
    fallback_password = credential()

    HTTPS_RULES = (
        ("callback_url", "callbackUrl", ("username", "password")),
        ("fallback_url", "fallbackUrl", ("fallback_username", "fallback_password")),
    )

    def rules(self, data: Mapping[str, Any]) -> dict[str, list[str]]:
        return _https_errors(data, self.HTTPS_RULES)


class CreateCallSchema(CamelCaseSchema):
    """Body of ``POST /accounts/{accountId}/calls`` (``createCall``)."""

    to = destination(required=True)
    from_ = phone_number(required=True)
    privacy = Bool(allow_none=True)
    display_name = Text(max_length=MAX_DISPLAY_NAME, no_control=True, allow_none=True)
    uui = Uui(allow_none=True)
    application_id = Text(required=True, min_length=1, no_control=True)
    answer_url = HttpUrl(required=True)
    answer_method = method()
    username = credential()
    password = credential()
    answer_fallback_url = optional_url()
    answer_fallback_method = method()
    fallback_username = credential()
    fallback_password = credential()
    disconnect_url = optional_url()
    disconnect_method = method()
    call_timeout = Number(minimum=1, maximum=300, allow_none=True)
    callback_timeout = Number(minimum=1, maximum=25, allow_none=True)
    machine_detection = NestedSchema(MachineDetectionSchema, allow_none=True)
    priority = Number(minimum=1, maximum=5, integer=True, allow_none=True)
    tag = Text(max_length=MAX_TAG, allow_none=True)

    HTTPS_RULES = (
        ("answer_url", "answerUrl", ("username", "password")),
        ("disconnect_url", "disconnectUrl", ("username", "password")),
        ("answer_fallback_url", "answerFallbackUrl", ("fallback_username", "fallback_password")),
    )
    PRIVACY_ERROR = (
        "Must be one of Restricted, Anonymous, Private, Unavailable when privacy is true."
    )

    def rules(self, data: Mapping[str, Any]) -> dict[str, list[str]]:
        errors = _https_errors(data, self.HTTPS_RULES)
        name = data.get("display_name")
        if data.get("privacy") and name is not None and name not in PRIVATE_DISPLAY_NAMES:
            errors["displayName"] = [self.PRIVACY_ERROR]
        return errors


class UpdateCallSchema(CamelCaseSchema):
    """Body of ``POST /accounts/{accountId}/calls/{callId}`` (``updateCall``).

    ``state`` is ``active`` (the default: ``redirectUrl`` required) or ``completed`` (hang up:
    no redirect fields and no tag).  ``UpdateCallSchema(lenient=True)`` is for servers such as
    the sandbox: it also accepts, and drops, the ``redirectMethod``/``redirectFallbackMethod``
    that bandwidth-sdk 23.3.1 sends with ``state=completed``.
    """

    state = Choice({"active", "completed"}, load_default="active")
    redirect_url = optional_url()
    redirect_method = method()
    username = credential()
    password = credential()
    redirect_fallback_url = optional_url()
    redirect_fallback_method = method()
    fallback_username = credential()
    fallback_password = credential()
    tag = Text(max_length=MAX_TAG, allow_none=True)

    HTTPS_RULES = (
        ("redirect_url", "redirectUrl", ("username", "password")),
        (
            "redirect_fallback_url",
            "redirectFallbackUrl",
            ("fallback_username", "fallback_password"),
        ),
    )
    NOT_WHEN_COMPLETED = (
        "redirect_url",
        "redirect_method",
        "redirect_fallback_url",
        "redirect_fallback_method",
        "tag",
    )
    SDK_COMPLETED_DEFAULTS = frozenset({"redirect_method", "redirect_fallback_method"})

    def __init__(self, *, lenient: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lenient = lenient

    def rules(self, data: Mapping[str, Any]) -> dict[str, list[str]]:
        errors = _https_errors(data, self.HTTPS_RULES)
        if data["state"] == "active":
            if data.get("redirect_url") is None:
                errors["redirectUrl"] = ["Required when state is active."]
            return errors
        tolerated = self.SDK_COMPLETED_DEFAULTS if self.lenient else frozenset()
        for name in self.NOT_WHEN_COMPLETED:
            if data.get(name) is not None and name not in tolerated:
                errors[camelcase(name)] = ["Not allowed when state is completed."]
        return errors

    def ignored(self, data: Mapping[str, Any]) -> Iterable[str]:
        if self.lenient and data.get("state") == "completed":
            return self.SDK_COMPLETED_DEFAULTS
        return ()


##### WIRE HELPERS #####

_create_call_schema = CreateCallSchema()
_update_call_schema = UpdateCallSchema()
# Payloads come from load_kwargs: plain dicts, strs and numbers, never cyclic.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


def create_call_payload(**values: Any) -> dict[str, Any]:
    """Validate snake_case Create Call arguments and return the camelCase JSON dict.

    ``None`` means "not set" and is left out.  ``machine_detection`` may be a dict with
    snake_case or camelCase keys.  Raises :class:`marshmallow.ValidationError` keyed by the
    wire name of every bad field (an unknown keyword is keyed by its own name).
    """
    return _create_call_schema.load_kwargs(values)


def update_call_payload(**values: Any) -> dict[str, Any]:
    """Validate snake_case Update Call arguments and return the camelCase JSON dict."""
    return _update_call_schema.load_kwargs(values)


def to_json(payload: Mapping[str, Any]) -> str:
    """The compact JSON text of a payload (ASCII, no NaN/Infinity), as the client sends it."""
    return _encode(payload)
