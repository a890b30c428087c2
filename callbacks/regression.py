"""Regression tests from stored calls: what each exported test file imports.

``flask voice export-test CALL_ID`` (or *Download as a regression test* on the dashboard's
call page) writes a pytest file holding a ``RecordedCall``: every callback of the call and
of its transfer legs, in the order they arrived, each with the canonical form of the BXML
the app answered (``callbacks.canonical``).  Its one test, parametrized per callback, asks
the app's flows as they are *now* for their reply (``callbacks.dryrun``: nothing stored,
no call placed) and fails with a unified diff naming the callback when it changed.

The app under test is the test suite's own ``app`` fixture when it has one; otherwise the
file's ``FACTORY`` (``app:create_app``) is called with the settings in the environment
(as ``flask`` and gunicorn read them), a temporary SQLite database and spool, and the
``VOICE_FLOWS`` the call was recorded with when the environment names none (and
stand-in callback credentials, when the call had some and the environment has none).

Payloads are kept as stored, except that signed tag state is kept as the state it says
(``{"signedState": {...}, "boundTo": "callId"}``) and signed again with the app's own
``SECRET_KEY`` when the test runs, so the file holds no signature and works with any key.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from flask import Flask

import config
from callbacks.canonical import Context, canonical, line_diff
from callbacks.dryrun import dry_run
from callbacks.tags import encode_state

if TYPE_CHECKING:
    import pytest

SIGNED_STATE = "signedState"  # a payload's ``tag`` kept as the state it verified to
BOUND_TO = "boundTo"  # the payload field naming the call the state was bound to


def fail(message: str) -> NoReturn:
    """Fail the running test with ``message`` alone (no traceback of this module).  pytest
    is imported here: the app imports this module for exports, and runs without pytest."""
    import pytest

    pytest.fail(message, pytrace=False)


@dataclass(frozen=True)
class Callback:
    """One recorded callback: where it arrived, what it said, what the app answered."""

    number: int
    route: str
    payload: dict[str, Any]
    reply: Sequence[str]  # the stored reply's canonical form (callbacks.canonical), by line
    error: str | None = None  # the handler's error when it was recorded, if it failed

    @property
    def event_type(self) -> str:
        return str(self.payload.get("eventType") or self.route)

    @property
    def label(self) -> str:
        return f"{self.number:02d}-{self.event_type}"

    def payload_for(self, secret: str) -> dict[str, Any]:
        """The payload with its tag state signed with ``secret``."""
        payload = dict(self.payload)
        tag = payload.get("tag")
        if isinstance(tag, dict) and SIGNED_STATE in tag:
            bound_to = tag.get(BOUND_TO)
            call_id = payload.get(bound_to) if bound_to else None
            payload["tag"] = encode_state(tag[SIGNED_STATE], secret, call_id=call_id)
        return payload


@dataclass(frozen=True)
class RecordedCall:
    """A stored call's callbacks (every leg's), in order, as an exported file keeps them."""

    call_id: str
    legs: Sequence[str]  # the call and its transfer legs, in order of appearance
    callbacks: Sequence[Callback]
    flows: Sequence[str] = ()  # names of the flows that answered it
    voice_flows: str = ""  # VOICE_FLOWS of the app that answered it
    credentials: bool = False  # whether it had callback credentials (CALLBACK_USERNAME)
    factory: str = "app:create_app"

    def labels(self) -> list[str]:
        return [callback.label for callback in self.callbacks]

    def where(self, callback: Callback) -> str:
        leg = (
            f"call {self.legs.index(callback.payload.get('callId')) + 1}"
            if callback.payload.get("callId") in self.legs
            else "the call"
        )
        return (
            f"callback {callback.number} of {len(self.callbacks)} "
            f"({callback.event_type} at /callbacks/{callback.route}, {leg})"
        )

    def check(self, app: Flask, callback: Callback) -> None:
        """Fail (with a diff) unless ``app`` answers ``callback`` as it did when recorded."""
        self._check_flows(app)
        secret = app.config["SECRET_KEY"]
        payload = callback.payload_for(secret)
        result = dry_run(app, payload, callback.route)
        where = self.where(callback)
        refused = "".join(f"\n  refused in the dry run: {item}" for item in result.refused)
        if result.error is not None:
            then = (
                f"\nIt failed when it was recorded too: {callback.error}" if callback.error else ""
            )
            detail = f"\n{result.error_detail}" if result.error_detail else ""
            fail(
                f"{where}: the app fails to answer it now: {result.error}{refused}{then}{detail}",
            )
        context = Context(
            secret=secret,
            base_urls=(app.config.get("PUBLIC_BASE_URL") or "",),
            call_id=payload.get("callId"),
            parent_call_id=payload.get("parentCallId"),
            calls=self.legs,
        )
        now = canonical(result.reply, context)
        expected = "\n".join(callback.reply)
        if now != expected:
            diff = line_diff(expected, now, before="recorded reply", after="reply now")
            hint = ""
            if self.credentials and not app.extensions["callbacks"].credentials:
                hint = (
                    "\nThe call was answered with callback credentials and the app under "
                    "test has none: set CALLBACK_USERNAME and CALLBACK_PASSWORD."
                )
            if callback.error:
                hint += (
                    f"\nWhen it was recorded the app failed to answer it ({callback.error}) "
                    "and the recorded reply is what it answers then."
                )
            fail(
                f"{where}: the reply changed{refused}{hint}\n{diff}\n\n"
                "If the change is intended, export the call again or edit the expected reply "
                f"of callback {callback.number} in this file.",
            )

    def _check_flows(self, app: Flask) -> None:
        registry = app.extensions.get("flows")
        if registry is None:
            fail("the app under test has no call flows (callbacks.init_app)")
        missing = [name for name in self.flows if name not in registry.flows]
        if missing:
            fail(
                f"the call was answered by flow {', '.join(map(repr, missing))}, which the app "
                f"under test does not have (its flows: {', '.join(sorted(registry.flows))}); "
                f"run the tests with the flows it ran with (VOICE_FLOWS={self.voice_flows})",
            )


def app_under_test(request: pytest.FixtureRequest, tmp_path: Any, call: RecordedCall) -> Flask:
    """The test suite's ``app`` fixture, else ``factory_app`` (disposed after the test)."""
    import pytest

    try:
        app: Flask = request.getfixturevalue("app")
        return app
    except pytest.FixtureLookupError:
        pass
    app = factory_app(call, tmp_path)

    def dispose() -> None:
        from store import get_store

        sandbox = app.extensions.get("sandbox")
        if sandbox is not None:
            sandbox.close()
        get_store(app).dispose()

    request.addfinalizer(dispose)
    return app


def factory_app(call: RecordedCall, tmp_path: Any) -> Flask:
    """``call.factory`` with the environment's settings over a temporary database (see the
    module's notes)."""
    module_name, _, factory_name = call.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name or "create_app")
    except (ImportError, AttributeError) as exc:
        fail(
            f"the tests have no `app` fixture and the app factory {call.factory} cannot be "
            f"loaded ({exc}): run pytest from your project's directory, or define an `app` "
            "fixture that returns your Flask app",
        )
    settings: dict[str, Any] = {
        "VOICE_FLOWS": call.voice_flows or None,
        # Fixed stand-ins, so creating the app writes no generated secret to instance/.
        "SECRET_KEY": "regression-test",
        "DASHBOARD_PASSWORD": "regression-test",
        **(
            {"CALLBACK_USERNAME": "regression-test", "CALLBACK_PASSWORD": "regression-test"}
            if call.credentials
            else {}
        ),
        **config.from_environ(os.environ),
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "SPOOL_PATH": str(tmp_path / "spool.jsonl"),
    }
    app: Flask = factory({k: v for k, v in settings.items() if v is not None})
    return app
