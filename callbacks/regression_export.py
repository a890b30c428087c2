"""Writing a stored call as a regression test: ``flask voice export-test`` and the
dashboard's download both call ``recorded_call`` and ``source_of``.

The call is taken whole: from an agent's leg the call that transferred it, every leg its
``<Transfer>`` created, and the events of a conference it joined that name no call
(``conferenceCreated``...), merged in the order they arrived.  What goes
into the file (see ``callbacks.regression``): each callback's route and payload, with
signed tag state kept as the state it verifies to and credentials scrubbed (user names and
passwords in URLs, any configured secret), and the canonical form of the stored reply
(``callbacks.canonical``: no credentials, no signatures, no public URL).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Flask

import logsetup
from callbacks.canonical import (
    REDACTED,
    SIGNED,
    UNVERIFIED,
    Context,
    callback_bases,
    canonical,
    scrub,
)
from callbacks.regression import BOUND_TO, SIGNED_STATE, Callback, RecordedCall
from callbacks.tags import CALL_PREFIX, FLOW_KEY, PREFIX, bound_to, decode_state
from store import get_store

# A credential attribute in a canonical reply: the flows gave Bandwidth credentials.
CREDENTIAL_SHOWN = re.compile(r'(?i)(username|password)="\[redacted\]"')


class UnknownCall(LookupError):
    """Nothing is stored for that call id."""


def file_name(call_id: str) -> str:
    """``test_call_<id>.py``, the id reduced to characters a module name may have."""
    return "test_call_" + (re.sub(r"[^A-Za-z0-9]+", "_", call_id).strip("_") or "unknown") + ".py"


def call_rows(store: Any, call_id: str) -> tuple[str, list[dict[str, Any]]]:
    """(the call's first leg, every stored callback of it and its transfer legs, in order)."""
    rows = store.events_for_call(call_id)
    if not rows:
        raise UnknownCall(
            f"no stored callbacks for call {call_id!r} in this app's store (is DATABASE_URL "
            "the server's?)"
        )
    root = call_id
    parent = next((row["parent_call_id"] for row in rows if row.get("parent_call_id")), None)
    if parent and store.events_for_call(parent):
        root = parent
    merged = {row["id"]: row for row in store.events_for_call(root)}
    merged.update((row["id"], row) for row in store.events_for_parent_call(root))
    # A conference the call joined: its own events (created, completed...), not the other
    # members' (they belong to other calls).
    for conference in {row["conference_id"] for row in merged.values() if row["conference_id"]}:
        merged.update(
            (row["id"], row)
            for row in store.events_for_conference(conference)
            if not row.get("call_id")
        )
    ordered = sorted(merged.values(), key=lambda row: (row["received_at"], row["id"]))
    return root, ordered


def portable_tag(tag: str, secret: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A signed tag as ``{"signedState": state, "boundTo": field}``; None if it does not
    verify (it is then kept as it is: the app treats it as absent either way)."""
    ids = {"call_id": payload.get("callId"), "parent_call_id": payload.get("parentCallId")}
    state = decode_state(tag, secret, **ids, max_age=None)
    if not state:
        return None
    if not tag.startswith(CALL_PREFIX):
        return {SIGNED_STATE: state}
    bound = bound_to(tag, secret, ids.values())
    field_name = "callId" if bound == ids["call_id"] else "parentCallId"
    return {SIGNED_STATE: state, BOUND_TO: field_name}


def scrubbed(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (JSON) with every string scrubbed of credentials and configured secrets."""
    if isinstance(value, str):
        value = scrub(value)
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [scrubbed(item, secrets) for item in value]
    return value


def portable_payload(
    payload: dict[str, Any], secret: str, secrets: Sequence[str]
) -> dict[str, Any]:
    out = scrubbed(payload, secrets)
    tag = payload.get("tag")
    if isinstance(tag, str) and tag.startswith((PREFIX, CALL_PREFIX)):
        signed = portable_tag(tag, secret, payload)
        if signed is not None:
            out["tag"] = scrubbed(signed, secrets)
    return out  # type: ignore[no-any-return]


def flows_named(texts: Iterable[str | None], secret: str, payload: dict[str, Any]) -> list[str]:
    """The flows the signed tags in ``texts`` name (the framework keeps the flow there)."""
    found = []
    for text in texts:
        for token in SIGNED.findall(text or ""):
            state = decode_state(
                token,
                secret,
                call_id=payload.get("callId"),
                parent_call_id=payload.get("parentCallId"),
                max_age=None,
            )
            if isinstance(state.get(FLOW_KEY), str):
                found.append(state[FLOW_KEY])
    return found


def stored_error(row: dict[str, Any], secrets: Sequence[str]) -> str | None:
    """The last line of the handler's stored error (its exception), scrubbed."""
    detail = (row.get("error_detail") or "").strip()
    if not detail:
        return None
    return scrubbed(detail.splitlines()[-1], secrets)  # type: ignore[no-any-return]


def recorded_call(app: Flask, call_id: str) -> RecordedCall:
    """The stored call ``call_id`` (any of its legs) as a RecordedCall; UnknownCall if none."""
    cfg = app.config
    secret = cfg["SECRET_KEY"]
    secrets = sorted(set(logsetup.configured_secrets(cfg)), key=len, reverse=True)
    root, rows = call_rows(get_store(app), call_id)
    legs = list(dict.fromkeys(row["call_id"] for row in rows if row.get("call_id")))
    callbacks = []
    flows: list[str] = []
    for number, row in enumerate(rows, 1):
        payload = row.get("payload") if isinstance(row.get("payload"), dict) else {}
        context = Context(
            secret=secret,
            base_urls=(cfg.get("PUBLIC_BASE_URL") or "", *callback_bases(row.get("reply_body"))),
            call_id=payload.get("callId"),
            parent_call_id=payload.get("parentCallId"),
            calls=legs,
        )
        reply = canonical(row.get("reply_body"), context)
        flows += flows_named((payload.get("tag"), row.get("reply_body")), secret, payload)
        callbacks.append(
            Callback(
                number=number,
                route=row["route"],
                payload=portable_payload(payload, secret, secrets),
                reply=tuple(scrubbed(reply, secrets).splitlines()),
                error=stored_error(row, secrets),
            )
        )
    return RecordedCall(
        call_id=root,
        legs=tuple(legs),
        callbacks=tuple(callbacks),
        flows=tuple(dict.fromkeys(flows)),
        voice_flows=str(cfg.get("VOICE_FLOWS") or ""),
        credentials=any(
            CREDENTIAL_SHOWN.search(line) for callback in callbacks for line in callback.reply
        ),
        factory=f"{app.import_name}:create_app",
    )


def unverified_tags(call: RecordedCall) -> int:
    """How many signed tags of the call do not verify with the exporting app's SECRET_KEY
    (exported with another key than the server's, they cannot be compared by state)."""
    count = 0
    for callback in call.callbacks:
        tag = callback.payload.get("tag")
        count += isinstance(tag, str) and tag.startswith((PREFIX, CALL_PREFIX))
        count += sum(line.count(UNVERIFIED) for line in callback.reply)
    return count


# --- the file's text, laid out as ruff format / black would leave it -----------------

INDENT = "    "
LINE_LENGTH = 100  # this project's ruff line length (a user's project is a copy of it)


class _Source(str):
    """Source text placed in the file as it is (a nested constructor call)."""


def _string(text: str) -> str:
    """A Python string literal, double-quoted unless single quotes need fewer escapes."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for char in text:
        if char in (quote, "\\"):
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(repr(char)[1:-1])
    return quote + "".join(out) + quote


def _literal(value: Any, depth: int) -> str:
    """``value`` (JSON-like) as Python source, one item per line for non-empty containers."""
    pad = INDENT * (depth + 1)
    if isinstance(value, _Source):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = "".join(
            f"{pad}{_string(str(key))}: {_literal(item, depth + 1)},\n"
            for key, item in value.items()
        )
        return "{\n" + items + INDENT * depth + "}"
    if isinstance(value, list | tuple):
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        if not value:
            return opening + closing
        if isinstance(value, tuple) and len(value) == 1:
            return f"({_literal(value[0], depth)},)"
        items = "".join(f"{pad}{_literal(item, depth + 1)},\n" for item in value)
        return opening + "\n" + items + INDENT * depth + closing
    return repr(value)


def _argument(key: str, value: Any, depth: int) -> str:
    """One ``key=value,`` line of a call at ``depth``."""
    pad = INDENT * (depth + 1)
    literal = _literal(value, depth + 1)
    if isinstance(value, tuple) and len(value) == 1 and len(pad + key + literal) + 2 > LINE_LENGTH:
        # A one-item tuple too long for its line: the formatter puts its item on its own.
        literal = f"(\n{pad}{INDENT}{_literal(value[0], depth + 2)},\n{pad})"
    return f"{pad}{key}={literal},\n"


def _call(name: str, arguments: dict[str, Any], depth: int) -> str:
    lines = "".join(
        _argument(key, value, depth) for key, value in arguments.items() if value is not None
    )
    return f"{name}(\n{lines}{INDENT * depth})"


HEADER = '''"""Regression test: call {call_id}
as the app answered it ({when}).

Written by `flask voice export-test` (or the dashboard's call page). Each of the call's
{count} callbacks (every leg's, in the order they arrived) is answered again by the app's
flows as they are now, without side effects (no call placed, nothing stored), and the
reply must equal the BXML the app answered then: compared canonically (layout, attribute
order, tag signatures, the public URL, credentials, timestamps and call ids left out).
A changed reply fails with a diff naming the callback.

Run it like any test, from your project's directory:
    python -m pytest {file_name}
The app under test is your test suite's `app` fixture when it has one; otherwise
`{factory}` with the settings in your environment, a temporary database, and
VOICE_FLOWS={voice_flows} unless the environment names flows. When a change is intended,
export the call again (or edit the expected lines of that callback's `reply`).
"""

import pytest

from callbacks.regression import Callback, RecordedCall, app_under_test

'''

FOOTER = """

@pytest.fixture
def voice_app(request, tmp_path):
    return app_under_test(request, tmp_path, CALL)


@pytest.mark.parametrize("callback", CALL.callbacks, ids=CALL.labels())
def test_reply_is_unchanged(voice_app, callback):
    CALL.check(voice_app, callback)
"""


def source_of(call: RecordedCall, file: str) -> str:
    """The text of the pytest file for ``call``."""
    callbacks = tuple(
        _Source(
            _call(
                "Callback",
                {
                    "number": callback.number,
                    "route": callback.route,
                    "payload": callback.payload,
                    "reply": tuple(callback.reply),
                    "error": callback.error,
                },
                2,
            )
        )
        for callback in call.callbacks
    )
    body = _call(
        "RecordedCall",
        {
            "call_id": call.call_id,
            "legs": tuple(call.legs),
            "flows": tuple(call.flows),
            "voice_flows": call.voice_flows,
            "credentials": call.credentials,
            "factory": call.factory,
            "callbacks": callbacks,
        },
        0,
    )
    header = HEADER.format(
        call_id=call.call_id,
        when=time.strftime("exported %Y-%m-%d %H:%M UTC", time.gmtime()),
        count=len(call.callbacks),
        file_name=file,
        factory=call.factory,
        voice_flows=call.voice_flows or "(none)",
    )
    return f"{header}CALL = {body}\n{FOOTER}"


def export_file(app: Flask, call_id: str) -> tuple[str, str]:
    """(file name, file text) of the regression test for stored call ``call_id``."""
    name = file_name(call_id)
    return name, source_of(recorded_call(app, call_id), name)
