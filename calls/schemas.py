"""Request schemas for the Bandwidth Voice API: Create Call and Update Call.

Python names are snake_case (``from_``, ``answer_url``); the JSON on the wire is camelCase
(``from``, ``answerUrl``), set by :class:`CamelCaseSchema`.  Every error is keyed by the wire
name, and the same schemas validate incoming JSON on a server::

    data = CreateCallSchema().load(json_body)        # -> snake_case dict
    wire = create_call_payload(to="+12025550123", from_="+12025550199",
                               application_id="abc", answer_url="https://cb.example/answer")

Constraints come from Bandwidth's OpenAPI spec (``createCall``, ``machineDetectionConfiguration``,
``updateCall``) plus the rules it states only in prose: E.164 numbers, http(s) URLs that must be
https when they carry credentials (loopback hosts excepted, for local development and the
sandbox), ``displayName`` values under ``privacy``, and the ``uui`` list format.

Strict in what we send, tolerant in what we accept.  By default a schema is strict: it is
what :class:`calls.VoiceClient` sends, so an unknown key (a misspelt argument), a null
``state`` or a negative machine-detection duration is an error.  A server receiving other
clients' requests (the sandbox) uses ``lenient=True``, which accepts everything the spec
allows: unknown keys are ignored, ``state: null`` means the default ``active``, the
machine-detection durations take any finite number, and the redirect methods that
bandwidth-sdk sends with ``state=completed`` are accepted and dropped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from calls.fields import (
    CONTROL,
    E164,
    HTTP_URL,
    MAX_CREDENTIAL,
    MAX_DISPLAY_NAME,
    MAX_TAG,
    MAX_URL,
    MAX_UUI,
    SIP_URI,
    Bool,
    Number,
    Text,
    camelcase,
    choice,
    credential,
    destination,
    method,
    optional_url,
    phone_number,
    url,
    uui,
)
from voice_rules import is_loopback

__all__ = [
    "CONTROL",
    "E164",
    "HTTP_URL",
    "MAX_CREDENTIAL",
    "MAX_DISPLAY_NAME",
    "MAX_TAG",
    "MAX_URL",
    "MAX_UUI",
    "SIP_URI",
    "CamelCaseSchema",
    "CreateCallPayload",
    "CreateCallSchema",
    "MachineDetectionSchema",
    "UpdateCallSchema",
    "camelcase",
    "create_call_payload",
    "to_json",
    "update_call_payload",
]

NOT_NEGATIVE = validate.Range(min=0)
PRIVATE_DISPLAY_NAMES = frozenset({"Restricted", "Anonymous", "Private", "Unavailable"})


class CamelCaseSchema(Schema):
    """Snake_case attributes, camelCase JSON keys; unknown keys are an error unless lenient.

    Two ways in, one set of fields and rules, the same messages keyed by wire name:

    - ``load(json_body)``: a server validating camelCase JSON; returns snake_case data.
    - ``load_kwargs(values)``: a client validating snake_case keyword arguments; returns the
      camelCase dict to send (``None`` means "not set" and is left out).

    Cross-field rules live in :meth:`rules`; they run once every field is valid on its own.
    """

    class Meta:
        unknown = RAISE

    def __init__(self, *, lenient: bool = False, **kwargs: Any) -> None:
        self.lenient = lenient  # read by on_bind_field, during Schema.__init__
        if lenient:
            kwargs.setdefault("unknown", EXCLUDE)
        super().__init__(**kwargs)
        self.wire_keys = {name: str(field.data_key) for name, field in self.load_fields.items()}

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)
        nested = getattr(field_obj, "nested", None)
        if self.lenient and isinstance(nested, type) and issubclass(nested, CamelCaseSchema):
            # A lenient request is lenient all the way down.
            field_obj.nested = functools.partial(nested, lenient=True)  # type: ignore[attr-defined]

    def rules(self, data: Mapping[str, Any]) -> dict[str, list[str]]:
        """Cross-field errors ``{wireName: [message]}`` for loaded snake_case ``data``."""
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
        own name), as :meth:`load` would for the same data.
        """
        unknown = {
            name: [self.error_messages["unknown"]] for name in values if name not in self.wire_keys
        }
        body = {
            self.wire_keys[name]: self._wire_value(name, value)
            for name, value in values.items()
            if name in self.wire_keys and not (value is None and self.fields[name].allow_none)
        }
        try:
            data = self.load(body)
        except ValidationError as error:
            raise ValidationError({**error.messages_dict, **unknown}) from None
        if unknown:
            raise ValidationError(unknown)
        return self.to_wire(data)

    def to_wire(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Loaded snake_case ``data`` as camelCase JSON (what ``dump`` gives, without its
        per-field machinery: no field here changes a value on the way out)."""
        wire = {}
        for name, value in data.items():
            field = self.fields[name]
            if isinstance(field, fields.Nested):
                value = field.schema.to_wire(value)  # type: ignore[attr-defined]
            wire[self.wire_keys[name]] = value
        return wire

    def _wire_value(self, name: str, value: Any) -> Any:
        """A nested object's keys as wire names (either spelling accepted), nulls left out
        (every field of a nested object here is optional)."""
        field = self.fields[name]
        if not isinstance(field, fields.Nested) or not isinstance(value, Mapping):
            return value
        keys: dict[str, str] = field.schema.wire_keys  # type: ignore[attr-defined]
        return {keys.get(key, key): item for key, item in value.items() if item is not None}


def _https_errors(
    data: Mapping[str, Any], pairs: Iterable[tuple[str, str, tuple[str, str]]]
) -> dict[str, list[str]]:
    """``{wireName: [message]}`` for each URL that carries credentials over plain http.

    ``pairs`` holds (url attribute, url wire name, credential attributes).  Loopback hosts
    (127.0.0.0/8, ::1, localhost) are exempt: local development and the sandbox use http.
    """
    errors: dict[str, list[str]] = {}
    for attr, key, (user, password) in pairs:
        address = data.get(attr)
        if address is None or address[:6].lower() == "https:":
            continue
        if (data.get(user) or data.get(password)) and not is_loopback(address):
            errors[key] = [f"Must use https when {camelcase(user)}/{camelcase(password)} is set."]
    return errors


class MachineDetectionSchema(CamelCaseSchema):
    """``machineDetection`` of Create Call (``machineDetectionConfiguration``)."""

    mode = choice({"sync", "async"}, allow_none=True)
    detection_timeout = Number(allow_none=True)
    silence_timeout = Number(allow_none=True)
    speech_threshold = Number(allow_none=True)
    speech_end_threshold = Number(allow_none=True)
    machine_speech_end_threshold = Number(allow_none=True)
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

    @validates(
        "detection_timeout",
        "silence_timeout",
        "speech_threshold",
        "speech_end_threshold",
        "machine_speech_end_threshold",
    )
    def _no_negative_duration(self, value: float | None, data_key: str) -> None:
        # The spec sets no minimum; a negative duration is a mistake we do not send.
        if value is not None and not self.lenient:
            NOT_NEGATIVE(value)

    def rules(self, data: Mapping[str, Any]) -> dict[str, list[str]]:
        return _https_errors(data, self.HTTPS_RULES)


class CreateCallSchema(CamelCaseSchema):
    """Body of ``POST /accounts/{accountId}/calls`` (``createCall``)."""

    to = destination(required=True)
    from_ = phone_number(required=True)
    privacy = Bool(allow_none=True)
    display_name = Text(max_length=MAX_DISPLAY_NAME, no_control=True, allow_none=True)
    uui = uui(allow_none=True)
    application_id = Text(required=True, min_length=1, no_control=True)
    answer_url = url(required=True)
    answer_method = method()
    username = credential()
    password = credential()
    answer_fallback_url = optional_url()
    answer_fallback_method = method()
    fallback_username = credential()
    fallback_password = credential()
    disconnect_url = optional_url()
    disconnect_method = method()
    call_timeout = Number(between=(1, 300), allow_none=True)
    callback_timeout = Number(between=(1, 25), allow_none=True)
    machine_detection = fields.Nested(MachineDetectionSchema, allow_none=True)
    priority = Number(between=(1, 5), integer=True, allow_none=True)
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
    no redirect fields and no tag).  Lenient, it also accepts ``state: null`` (the default)
    and drops the ``redirectMethod``/``redirectFallbackMethod`` that bandwidth-sdk 23.3.1
    sends with ``state=completed``.
    """

    state = choice({"active", "completed"}, load_default="active")
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

    @pre_load
    def _null_state_is_the_default(self, data: Any, **kwargs: Any) -> Any:
        if self.lenient and isinstance(data, Mapping) and data.get("state", "") is None:
            return {key: value for key, value in data.items() if key != "state"}
        return data

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


class CreateCallPayload(dict[str, Any]):
    """A Create Call body that :func:`create_call_payload` validated (camelCase keys).

    :meth:`calls.VoiceClient.send_create_call` takes only this type, so a payload built and
    recorded once is sent without validating it a second time.
    """


_create_call_schema = CreateCallSchema()
_update_call_schema = UpdateCallSchema()
# Payloads come from load_kwargs: plain dicts, strs and numbers, never cyclic.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


def create_call_payload(**values: Any) -> CreateCallPayload:
    """Validate snake_case Create Call arguments and return the camelCase JSON dict.

    ``None`` means "not set" and is left out.  ``machine_detection`` may be a dict with
    snake_case or camelCase keys.  Raises :class:`marshmallow.ValidationError` keyed by the
    wire name of every bad field (an unknown keyword is keyed by its own name).
    """
    return CreateCallPayload(_create_call_schema.load_kwargs(values))


def update_call_payload(**values: Any) -> dict[str, Any]:
    """Validate snake_case Update Call arguments and return the camelCase JSON dict."""
    return _update_call_schema.load_kwargs(values)


def to_json(payload: Mapping[str, Any]) -> str:
    """The compact JSON text of a payload (ASCII, no NaN/Infinity), as the client sends it."""
    return _encode(payload)
