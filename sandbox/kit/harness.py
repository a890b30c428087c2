"""``VoiceKit``: the app under test, its in-app sandbox on the manual clock, and the calls a
test makes or expects (``ScriptedCall``).  The ``voice_call`` fixture yields one."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from sandbox.clock import ManualClock
from sandbox.core import Sandbox
from sandbox.delivery import Delivery
from sandbox.kit.call import Callback, KitFailure, ScriptedCall

SCRIPT_KEYS = {
    "answer": "answer",
    "ring_seconds": "ringSeconds",
    "gather_digits": "gatherDigits",
    "hangup_after": "hangupAfter",
    "bridge_seconds": "bridgeSeconds",
    "record_seconds": "recordSeconds",
    "transcript": "transcript",
    "machine_detection": "machineDetection",
    "greeting_seconds": "greetingSeconds",
}


class VoiceKit:
    """Drive the app's calls as the people on the phone.

    ``dial(to, from_=...)`` rings the app (inbound); ``place_call(to=..., flow=...)`` has
    the app place a call, and ``expect_call(to=...)`` picks up a call the app placed some
    other way (a form, a handler).  ``script(number, ...)`` says how a phone behaves before
    it is called (busy, a machine, ...).  ``app`` and ``client`` are the app under test (in
    process; None for a server reached by URL).
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        base_url: str,
        api_url: str,
        secret: str | None,
        app: Flask | None = None,
    ) -> None:
        if sandbox.clock is None:
            raise RuntimeError("voice_call needs a sandbox on the manual clock")
        self.app = app
        self.base_url = base_url  # the app's
        self.sandbox = sandbox
        self.clock: ManualClock = sandbox.clock
        self.secret = secret  # SECRET_KEY, to read tag state (None: not read)
        self.api_url = api_url  # the sandbox's Voice API
        self.calls: list[ScriptedCall] = []
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[Callback]] = {}
        self._summaries: dict[str, tuple[int, dict[str, Any]]] = {}
        self.sandbox.driver.add_callback_listener(self._delivered)

    @classmethod
    def in_process(cls, app: Flask, base_url: str) -> VoiceKit:
        """The kit of an app served in this process, driving its in-app sandbox."""
        found = app.extensions.get("sandbox")
        if not isinstance(found, Sandbox):
            raise RuntimeError("voice_call needs the in-app sandbox (VOICE_BACKEND=sandbox)")
        secret = str(app.config["SECRET_KEY"])
        return cls(
            found, base_url=base_url, api_url=base_url + "/sandbox/api/v2", secret=secret, app=app
        )

    def _in_process(self, what: str) -> Flask:
        if self.app is None:
            raise RuntimeError(
                f"{what} needs the app in this process; the kit drives {self.base_url} by URL: "
                "have the app place the call (its page or API), then voice_call.expect_call()"
            )
        return self.app

    @property
    def client(self) -> FlaskClient:
        """A Flask test client of the app (pages, forms such as click-to-call)."""
        return self._in_process("voice_call.client").test_client()

    # --- making and finding calls -----------------------------------------------------

    def dial(self, to: str, from_: str = "+12025550100", **extras: Any) -> ScriptedCall:
        """A caller at ``from_`` dials ``to`` (one of a flow's numbers): the app gets
        ``initiate``.  ``extras``: ``diversion``, ``stirShaken``, ``uui``, ``sipHeaders``."""
        created = self.sandbox.dial_in({"to": to, "from": from_, **extras}, self.api_url)
        self.sandbox.settle()
        return self._follow(str(created["callId"]), f"dialling {to}")

    def place_call(self, *, to: str, **options: Any) -> ScriptedCall:
        """The app places a call (``calls.outbound.place_call(to=..., flow=..., state=...,
        ...)`` in the app's context); the call, ringing ``to``."""
        from calls.outbound import place_call

        with self._in_process("voice_call.place_call").app_context():
            created = place_call(to=to, **options)
        self.sandbox.settle()
        return self._follow(str(created["callId"]), f"the app called {to}")

    def expect_call(self, to: str | None = None) -> ScriptedCall:
        """The call the app placed last (to ``to``, when given) that no step follows yet."""
        __tracebackhide__ = True
        self.sandbox.settle()
        followed = {call.call_id for call in self.calls}
        for found in self.sandbox.calls(limit=200):  # newest first
            if found["parentCallId"] or found["callId"] in followed:
                continue
            if found["direction"] == "outbound" and to in (None, found["to"]):
                return self._follow(found["callId"], f"the app called {found['to']}")
        placed = [c["to"] for c in self.sandbox.calls(limit=200) if not c["parentCallId"]]
        raise KitFailure(
            f"expected the app to have placed a call{f' to {to}' if to else ''}; "
            f"calls in the sandbox: {', '.join(placed) or 'none'}"
        )

    def script(self, number: str, **script: Any) -> None:
        """How the phone at ``number`` behaves when called (or, for a dial-in, the caller
        dialling from it): ``answer="busy"|"no-answer"|"reject"``, ``ring_seconds``,
        ``machine_detection="machine"``, ``greeting_seconds``, ``gather_digits``, ... (the
        callee script of sandbox/README.md, snake_case or camelCase)."""
        self.sandbox.script(number, {SCRIPT_KEYS.get(key, key): v for key, v in script.items()})

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass for every call."""
        self.sandbox.advance(seconds)

    def _follow(self, call_id: str, how: str) -> ScriptedCall:
        call = ScriptedCall(self, call_id, how)
        self.calls.append(call)
        return call

    # --- what the calls read ----------------------------------------------------------

    def summary(self, call_id: str) -> dict[str, Any]:
        """The sandbox's view of a call (state, tag, transcript), read once per change:
        while the calls are settled nothing changes it."""
        generation = self.clock.generation
        cached = self._summaries.get(call_id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        found = self.sandbox.call(call_id, log=False)
        if found is None:
            raise KitFailure(f"call {call_id} is unknown to the sandbox")
        if self.clock.settled() and self.clock.generation == generation:
            self._summaries[call_id] = (generation, found)
        return found

    def leg_to(self, call_id: str, number: str) -> str | None:
        """The newest leg of ``call_id`` (a Transfer's) ringing ``number``."""
        for found in reversed(self.sandbox.legs(call_id)):
            if found["to"] == number:
                return str(found["callId"])
        return None

    def callbacks_of(self, call_id: str) -> list[Callback]:
        with self._lock:
            if call_id in self._callbacks:
                return list(self._callbacks[call_id])
            return [c for sent in self._callbacks.values() for c in sent if c.call_id == call_id]

    def state_of(self, tag: str | None, call_id: str, parent: str | None = None) -> dict[str, Any]:
        """The signed tag state in ``tag`` as a handler of ``call_id`` reads it (your keys
        only); ``{}`` for none, a plain-text tag or one that does not verify."""
        from callbacks.tags import decode_state, split_state

        if not tag or self.secret is None:
            return {}
        if parent is None:
            found = self.sandbox.call(call_id)
            parent = found["parentCallId"] if found else None
        state = decode_state(tag, self.secret, call_id=call_id, parent_call_id=parent)
        return split_state(state)[0]

    def _delivered(self, a_leg: str, payload: dict[str, Any], result: Delivery) -> None:
        leg = str(payload.get("callId") or a_leg)
        callback = Callback(
            event_type=str(payload.get("eventType")),
            call_id=leg,
            payload=payload,
            status=result.status,
            reply=result.body.decode("utf-8", "replace"),
            ok=result.ok,
            error=result.error,
            state=self.state_of(payload.get("tag"), leg, payload.get("parentCallId") or ""),
        )
        with self._lock:
            self._callbacks.setdefault(a_leg, []).append(callback)
