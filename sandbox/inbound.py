"""Inbound calls: Voice applications, their numbers, and a caller dialling one of them.

A Voice application says where an inbound call's events go (Bandwidth's application
settings): ``initiate`` to ``callInitiatedCallbackUrl`` (``callInitiatedMethod``, falling back
to ``callInitiatedFallbackUrl`` with ``callInitiatedFallbackCreds``), ``disconnect`` to
``callStatusCallbackUrl`` (``callStatusMethod``; none when unset), both with
``callbackCreds`` as HTTP Basic.  A number belongs to one application.

Inside the app there is a default application, built from ``PUBLIC_BASE_URL`` and the
callback credentials, which takes every number no other application owns.

A dialled-in call sends ``initiate`` (no ``answer`` event, no ``tag``) and runs its reply as
the first document.  The call is unanswered until the first verb that answers it (speech,
audio, Gather, Record, Pause, ...; not Tag, Redirect or ``Ring answerCall="false"``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from marshmallow import fields

from calls.fields import (
    MAX_CREDENTIAL,
    Number,
    Text,
    choice,
    destination,
    method,
    optional_url,
    url,
    uui,
    whole_match,
)
from calls.schemas import CamelCaseSchema

# The verbs that do not answer an unanswered inbound call (every other one does).
NOT_ANSWERING = frozenset({"Tag", "Redirect", "Hangup", "Forward", "StopGather", "StartGather"})
CALLER_IDS = re.compile(r"\+[1-9][0-9]{1,14}|Private|Restricted|Unavailable|Anonymous")
SIP_HEADER = re.compile(r"[Xx]-[A-Za-z0-9\-]{1,62}")
DEFAULT_APPLICATION_ID = "sandbox-application"


class CredentialsSchema(CamelCaseSchema):
    user_id = Text(required=True, min_length=1, max_length=MAX_CREDENTIAL, no_control=True)
    password = Text(required=True, min_length=1, max_length=MAX_CREDENTIAL)


class ApplicationSchema(CamelCaseSchema):
    """Body of ``PUT .../sandbox-control/applications/{applicationId}``."""

    call_initiated_callback_url = url(required=True)
    call_initiated_method = method()
    call_initiated_fallback_url = optional_url()
    call_initiated_fallback_method = method()
    call_initiated_fallback_creds = fields.Nested(CredentialsSchema, allow_none=True)
    call_status_callback_url = optional_url()
    call_status_method = method()
    callback_creds = fields.Nested(CredentialsSchema, allow_none=True)
    callback_timeout = Number(between=(1, 25), allow_none=True)
    numbers = fields.List(destination(), allow_none=True)


class DiversionSchema(CamelCaseSchema):
    orig_to = Text(required=True, min_length=1, max_length=256, no_control=True)
    reason = Text(max_length=64, no_control=True, allow_none=True)
    privacy = choice(("off", "full"), allow_none=True)
    screen = choice(("no", "yes"), allow_none=True)
    counter = Text(validate=whole_match(r"[0-9]{1,3}", "Must be 1-3 digits."), allow_none=True)
    limit = Text(validate=whole_match(r"[0-9]{1,3}", "Must be 1-3 digits."), allow_none=True)
    unknown = Text(max_length=256, no_control=True, allow_none=True)


class StirShakenSchema(CamelCaseSchema):
    verstat = Text(max_length=64, no_control=True, allow_none=True)
    attestation_indicator = choice(("A", "B", "C"), allow_none=True)
    originating_id = Text(max_length=64, no_control=True, allow_none=True)


class DialInSchema(CamelCaseSchema):
    """Body of ``POST .../sandbox-control/inbound``: a caller dials ``to`` from ``from``."""

    to = destination(required=True)
    from_ = Text(
        required=True,
        validate=whole_match(
            CALLER_IDS.pattern,
            "Must be an E.164 number or Private, Restricted, Unavailable, Anonymous.",
        ),
    )
    diversion = fields.Nested(DiversionSchema, allow_none=True)
    stir_shaken = fields.Nested(StirShakenSchema, allow_none=True)
    uui = uui(allow_none=True)
    sip_headers = fields.Dict(
        keys=Text(validate=whole_match(SIP_HEADER.pattern, "Must be an X- header name.")),
        values=Text(max_length=1024, no_control=True),
        allow_none=True,
    )


def default_application(public_base_url: str, username: str | None, password: str | None) -> dict:
    """The in-app application: the app's own ``/callbacks/initiate`` and ``/disconnect``."""
    base = public_base_url.rstrip("/")
    config: dict[str, Any] = {
        "callInitiatedCallbackUrl": f"{base}/callbacks/initiate",
        "callStatusCallbackUrl": f"{base}/callbacks/disconnect",
    }
    if username and password:
        config["callbackCreds"] = {"userId": username, "password": password}
    return config


def call_request(application_id: str, config: dict[str, Any], body: dict[str, Any]) -> dict:
    """The saved request of an inbound call: where its callbacks go and what ``initiate``
    carries (in the same keys an outbound call's request uses, so its ending is shared)."""
    creds = config.get("callbackCreds") or {}
    fallback = config.get("callInitiatedFallbackCreds") or {}
    sip_headers = body.get("sipHeaders")
    initiate = {
        "diversion": body.get("diversion"),
        "stirShaken": body.get("stirShaken"),
        "uui": body.get("uui"),
        "sipCallId": f"{uuid.uuid4()}@sandbox.invalid",
        "sipHeaders": {k.lower(): v for k, v in sip_headers.items()} if sip_headers else None,
    }
    request = {
        "direction": "inbound",
        "applicationId": application_id,
        "to": body["to"],
        "from": body["from"],
        "initiateUrl": config["callInitiatedCallbackUrl"],
        "initiateMethod": config.get("callInitiatedMethod") or "POST",
        "initiateFallbackUrl": config.get("callInitiatedFallbackUrl"),
        "initiateFallbackMethod": config.get("callInitiatedFallbackMethod") or "POST",
        "fallbackUsername": fallback.get("userId"),
        "fallbackPassword": fallback.get("password"),
        "username": creds.get("userId"),
        "password": creds.get("password"),
        "disconnectUrl": config.get("callStatusCallbackUrl"),
        "disconnectMethod": config.get("callStatusMethod") or "POST",
        "callbackTimeout": config.get("callbackTimeout"),
        "initiate": {k: v for k, v in initiate.items() if v is not None},
    }
    return {k: v for k, v in request.items() if v is not None}


def answers(verb_name: str, attrs: dict[str, Any]) -> bool:
    """Whether running this verb answers an unanswered inbound call."""
    if verb_name == "Ring":
        return str(attrs.get("answerCall", "true")).lower() != "false"
    return verb_name not in NOT_ANSWERING
