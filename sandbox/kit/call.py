"""One scripted call: act as the person on the phone, step by step, and check what they hear.

Every method is a numbered *step*.  Actions (``press``, ``say``, ``stay_silent``,
``advance``, ``hang_up``) change the call; expectations (``expect_heard``,
``expect_transfer_to``, ``expect_bridge``, ``expect_conference``, ``expect_callback``,
``expect_ended``) let the prompts play (simulated time moves on by itself through speech,
audio, pauses and rings) until what they expect happens, and stop, failing, as soon as the
call waits for the caller's input (a Gather or Record listening) or ends without it.
Expectations read the transcript in order: each one looks after what the previous one
matched.  A failure names the step and the last action, and shows the transcript so far.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox import heard
from sandbox.clock import ManualClock
from sandbox.core import Sandbox

Pattern = str | re.Pattern[str]

# How far expectations let simulated time run by themselves before giving up.
MAX_SECONDS = 600.0
HEARD_KINDS = ("speech", "audio")


class KitFailure(AssertionError):
    """An expectation of a scripted call was not met; the message names the step."""


@dataclass
class Callback:
    """One callback the sandbox sent for this call, and what the app answered."""

    event_type: str
    call_id: str  # the leg it was about (a Transfer's agent leg has its own)
    payload: dict[str, Any]
    status: int | None  # the app's HTTP status (None: no answer)
    reply: str  # the body the app answered: BXML for answer, gather, ...
    ok: bool
    error: str | None
    state: dict[str, Any] = field(default_factory=dict)  # the tag state the handler saw

    def __repr__(self) -> str:
        return f"<Callback {self.event_type} {self.status} {self.call_id}>"


@dataclass
class Step:
    number: int
    label: str  # "pressing 2", "expect to hear 'Goodbye'"
    tag_state: dict[str, Any]  # the call's tag state when the step ended


class Kit(Protocol):
    """What a scripted call needs of its ``sandbox.kit.harness.VoiceKit`` (which imports
    this module)."""

    sandbox: Sandbox
    clock: ManualClock

    def summary(self, call_id: str) -> dict[str, Any]: ...
    def callbacks_of(self, call_id: str) -> list[Callback]: ...
    def state_of(
        self, tag: str | None, call_id: str, parent: str | None = None
    ) -> dict[str, Any]: ...
    def leg_to(self, call_id: str, number: str) -> str | None: ...


class ScriptedCall:
    """A call the kit follows: the caller of a dial-in, the callee of a call the app
    placed, or a Transfer's agent leg (``expect_transfer_to`` returns one)."""

    def __init__(self, kit: Kit, call_id: str, how: str) -> None:
        self.kit = kit
        self.call_id = call_id
        self.steps: list[Step] = []
        self._last_action = how
        self._cursor = 0  # transcript entries already matched by expectations
        self._callbacks_seen = 0  # callbacks already matched by expect_callback
        self._checked_from = 0  # where the current expectation started looking
        self._record(how)

    def __repr__(self) -> str:
        return f"<ScriptedCall {self.call_id} {self.status}>"

    # --- reading ----------------------------------------------------------------------

    @property
    def transcript(self) -> list[dict[str, Any]]:
        """What the person on this leg heard, pressed and said (``sandbox.heard``)."""
        return list(self.kit.summary(self.call_id)["transcript"])

    @property
    def heard(self) -> list[str]:
        """The speech texts and audio URLs heard so far, in order."""
        return [e["text"] for e in self.transcript if e["kind"] in HEARD_KINDS]

    def _summary(self) -> dict[str, Any]:
        return self.kit.summary(self.call_id)

    @property
    def status(self) -> str:
        """``queued``, ``initiated``, ``answered`` or ``disconnected``."""
        return str(self._summary()["state"])

    @property
    def ended(self) -> bool:
        found = self._summary()
        return found["state"] == "disconnected" and not found["active"]

    @property
    def disconnect_cause(self) -> str | None:
        """The cause of the call's end (``hangup``, ``busy``, ``invalid-bxml``, ...)."""
        return self._summary()["disconnectCause"]  # type: ignore[no-any-return]

    @property
    def error_message(self) -> str | None:
        return self._summary()["errorMessage"]  # type: ignore[no-any-return]

    @property
    def callbacks(self) -> list[Callback]:
        """Every callback sent about this call (for an A-leg: its Transfer legs' too), in
        order, each with the app's reply and the tag state its handler saw."""
        return self.kit.callbacks_of(self.call_id)

    @property
    def replies(self) -> list[str]:
        """The BXML the app answered, one per BXML callback, in order."""
        return [c.reply for c in self.callbacks if c.reply.strip()]

    @property
    def recordings(self) -> list[dict[str, Any]]:
        """The recordings made on this leg, as the Recordings API lists them."""
        sandbox = self.kit.sandbox
        return sandbox.recordings.for_call(sandbox.settings.account_id, self.call_id)

    def tag_state(self, step: int | None = None) -> dict[str, Any]:
        """The call's tag state (your keys, as ``event.state`` shows them) at the end of
        ``step`` (numbered from 1, as failures name them), or now."""
        if step is None:
            return self.kit.state_of(self._summary().get("tag"), self.call_id)
        for recorded in self.steps:
            if recorded.number == step:
                return recorded.tag_state
        raise ValueError(f"no step {step}: this call has steps 1 to {len(self.steps)}")

    # --- actions ----------------------------------------------------------------------

    def press(self, digits: str) -> ScriptedCall:
        """The person presses ``digits`` (a Gather listening takes them; otherwise they
        wait for the next one)."""
        self._act(f"pressing {digits}", lambda: self.kit.sandbox.press(self.call_id, digits))
        return self

    def say(self, phrase: str) -> ScriptedCall:
        """The person says ``phrase``: a Record listening ends with it as what was said
        (its transcription); otherwise the next Record takes it."""
        self._act(f"saying {phrase!r}", lambda: self.kit.sandbox.say(self.call_id, phrase))
        return self

    def hang_up(self) -> ScriptedCall:
        """The person hangs up (while it rings: declines the call)."""
        self._act("hanging up", lambda: self.kit.sandbox.hang_up(self.call_id))
        return self

    def advance(self, seconds: float) -> ScriptedCall:
        """Let ``seconds`` of simulated time pass (a Gather waiting that long times out)."""
        self._act(f"{seconds:g} seconds passed", lambda: self.kit.sandbox.advance(seconds))
        return self

    def stay_silent(self) -> ScriptedCall:
        """The person does nothing: the prompts play and the input the call waits for times
        out (one Gather's or Record's wait)."""
        __tracebackhide__ = True
        number = self._begin()
        self._play(lambda: self._parked_listening() is not None)
        parked = self._parked_listening()
        if parked is None and not self.ended:
            self._fail(number, "expected the call to wait for the caller's input")
        if parked is not None:
            self.kit.sandbox.advance(parked.deadline - self.kit.clock.now)
        self._last_action = "staying silent"
        self._record("staying silent")
        return self

    def listen(self) -> list[str]:
        """Let the call play until it waits for the caller or ends; what was heard
        meanwhile (and not yet matched by an expectation)."""
        self._begin()
        self._play(lambda: False)
        new = self.transcript[self._cursor :]
        self._cursor += len(new)
        self._record("listening")
        return [e["text"] for e in new if e["kind"] in HEARD_KINDS]

    # --- expectations -----------------------------------------------------------------

    def expect_heard(self, expected: Pattern) -> str:
        """The person hears ``expected`` (a substring of a SpeakSentence, or of a PlayAudio
        URL; or a compiled regex) next; the text heard."""
        __tracebackhide__ = True
        return self._expect(
            f"to hear {_shown(expected)}",
            lambda e: e["kind"] in HEARD_KINDS and _matches(expected, e["text"]),
        )["text"]

    def expect_transfer_to(self, number: str) -> ScriptedCall:
        """The call is transferred to ``number`` (a Transfer starts ringing it); the agent's
        leg, as a scripted call of its own."""
        __tracebackhide__ = True
        self._expect(
            f"a transfer to {number}",
            lambda e: e["kind"] == "transfer" and e["text"] == number,
        )
        agent = self.kit.leg_to(self.call_id, number)
        if agent is None:
            raise KitFailure(f"the transfer to {number} has no leg in the sandbox")
        return ScriptedCall(self.kit, agent, f"the transfer to {number} from {self.call_id}")

    def expect_bridge(self, call_id: str | None = None) -> None:
        """The call is bridged (``<Bridge>``), with ``call_id`` when given."""
        __tracebackhide__ = True
        self._expect(
            "a bridge" + (f" with {call_id}" if call_id else ""),
            lambda e: e["kind"] == "bridge" and call_id in (None, e["text"]),
        )

    def expect_conference(self, name: str | None = None) -> None:
        """The call joins a conference (``<Conference>``), named ``name`` when given."""
        __tracebackhide__ = True
        self._expect(
            "to join a conference" + (f" named {name!r}" if name else ""),
            lambda e: e["kind"] == "conference" and name in (None, e["text"]),
        )

    def expect_callback(self, event_type: str) -> Callback:
        """The app gets a ``event_type`` callback about this call next (after those already
        expected); that callback."""
        __tracebackhide__ = True
        number = self._begin()
        got: list[Callback] = []

        def arrived() -> bool:
            start = self._callbacks_seen
            for index, found in enumerate(self.callbacks[start:], start=start):
                if found.event_type == event_type:
                    self._callbacks_seen = index + 1
                    got.append(found)
                    return True
            return False

        self._play(arrived)
        if not got:
            sent = ", ".join(c.event_type for c in self.callbacks) or "none"
            self._fail(number, f"expected a {event_type} callback; callbacks sent: {sent}")
        self._record(f"expect a {event_type} callback")
        return got[0]

    def expect_ended(self, cause: str | None = None) -> str:
        """The call ends, the person staying silent however many prompts time out (within
        ten simulated minutes); the disconnect cause, which must be ``cause`` if given."""
        __tracebackhide__ = True
        number = self._begin()
        self._play(lambda: self.ended, through_listening=True)
        if not self.ended:
            self._fail(number, f"expected the call to end within {MAX_SECONDS:g} s")
        found = self.disconnect_cause
        if cause is not None and found != cause:
            extra = f" ({self.error_message})" if self.error_message else ""
            self._fail(
                number, f"expected the call to end with {cause!r}, it ended with {found!r}{extra}"
            )
        self._record("expect the call to end")
        return str(found)

    # --- the machinery ----------------------------------------------------------------

    def _begin(self) -> int:
        """The number of the step about to run."""
        return len(self.steps) + 1

    def _record(self, label: str) -> None:
        tag = self._summary().get("tag")
        self.steps.append(Step(len(self.steps) + 1, label, self.kit.state_of(tag, self.call_id)))

    def _act(self, label: str, action: Callable[[], None]) -> None:
        __tracebackhide__ = True
        number = self._begin()
        try:
            action()
        except Exception as exc:  # an ended call, bad digits: the step's failure
            self._fail(number, f"could not do it ({label}): {exc}")
        self.kit.sandbox.settle()
        self._last_action = label
        self._record(label)

    def _expect(self, what: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        __tracebackhide__ = True
        number = self._begin()
        self._checked_from = self._cursor
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            for index, entry in enumerate(self.transcript[self._cursor :], start=self._cursor):
                if match(entry):
                    self._cursor = index + 1
                    found.append(entry)
                    return True
            return False

        self._play(seen)
        if not found:
            self._fail(number, f"expected {what}")
        if found[0]["kind"] in HEARD_KINDS:
            self._hear_out(found[0])
        self._record(f"expect {what}")
        return found[0]

    def _play(self, done: Callable[[], bool], *, through_listening: bool = False) -> None:
        """Move simulated time on, one event at a time, until ``done()``, the call ends,
        or (unless ``through_listening``) it waits for the caller's input."""
        sandbox, clock = self.kit.sandbox, self.kit.clock
        started = clock.now
        while True:
            sandbox.settle()
            if done() or self.ended:
                return
            # A Gather or Record listening on any leg (the agent's too) waits for a person.
            if not through_listening and self._parked_listening(any_leg=True) is not None:
                return
            due = clock.next_deadline()
            if due is None or due.deadline - started > MAX_SECONDS:
                return
            clock.move_to(due.deadline)

    def _hear_out(self, entry: dict[str, Any]) -> None:
        """Let a prompt that is still playing finish (the caller heard all of it), so the
        next step starts after it, as a person would act."""
        entries = [e for e in self.transcript if e["kind"] not in ("pressed", "said")]
        parked = self.kit.clock.parked_for(self.call_id)
        if entries and entries[-1] == entry and parked is not None and not parked.listening:
            self.kit.sandbox.advance(parked.deadline - self.kit.clock.now)

    def _parked_listening(self, *, any_leg: bool = False) -> Any:
        parked = self.kit.clock.parked_for(self.call_id, any_leg=any_leg)
        return parked if parked is not None and parked.listening else None

    def _fail(self, number: int, message: str) -> None:
        __tracebackhide__ = True
        raise KitFailure(self.explain(number, message))

    def explain(self, number: int, message: str) -> str:
        """A failure's message: the step, what was expected, what was heard since the
        expectation started looking, the call's state and its whole transcript."""
        entries = self.transcript
        since = [e for e in entries[self._checked_from :] if e["kind"] in HEARD_KINDS]
        lines = [f"step {number} (after {self._last_action}): {message}"]
        if message.startswith("expected to hear"):
            said = "; ".join(repr(e["text"]) for e in since) or "nothing new"
            lines[0] += f", the caller heard: {said}"
        found = self._summary()
        state = found.get("state", "unknown")
        if found.get("disconnectCause"):
            state += f", cause {found['disconnectCause']}"
            if found.get("errorMessage"):
                state += f": {found['errorMessage']}"
        elif self._parked_listening() is not None:
            state += ", waiting for the caller's input"
        elif self._parked_listening(any_leg=True) is not None:
            state += ", waiting for input on another leg"
        lines.append(f"The call {self.call_id} ({state}), what its caller heard so far:")
        lines.append(heard.render(entries, indent="  "))
        last = self.callbacks[-1:] if self.callbacks else []
        for callback in last:
            reply = " ".join(callback.reply.split())
            shown = reply if len(reply) <= 300 else reply[:300] + "..."
            lines.append(
                f"Last callback: {callback.event_type} -> {callback.status or callback.error}"
                + (f": {shown}" if shown else "")
            )
        return "\n".join(lines)


def _matches(expected: Pattern, text: str) -> bool:
    if isinstance(expected, re.Pattern):
        return expected.search(text) is not None
    return " ".join(expected.split()) in text


def _shown(expected: Pattern) -> str:
    return (
        f"re.compile({expected.pattern!r})" if isinstance(expected, re.Pattern) else repr(expected)
    )
