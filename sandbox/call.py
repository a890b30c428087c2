"""One call as its runner and the verb units see it: state, saving, simulated time, inputs
and callbacks.

A ``Call`` never reaches into its driver: it uses the ``Host`` below, which the driver
satisfies, so the driver depends on the runner and never the other way round.

Inputs (digits, the callee hanging up, Update Call, Update Call BXML) arrive in ``inbox`` in
the order they were stored; simulated time passes in ``wait``, which handles them.  With the
manual clock (``sandbox.clock``) a wait parks the call there instead of sleeping: deadlines
are then simulated seconds on that clock.  What the far end heard, pressed and said is kept
in order by ``sandbox.heard``.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any, Protocol
from urllib.parse import urljoin

import bxml
from sandbox import amd, heard, recorder
from sandbox import callee as callees
from sandbox.clock import ManualClock
from sandbox.db import SandboxDB
from sandbox.delivery import Deliverer, Delivery, Hook
from sandbox.execution import (
    SPOKE,
    CallEnded,
    ConferenceChanged,
    Document,
    DocumentRunner,
    Interrupt,
    LeaseLost,
    PeerLeft,
    Stopped,
)
from sandbox.faults import Faults
from sandbox.payloads import Leg, event
from sandbox.settings import Settings
from sandbox.simtime import SimulatedTime

log = logging.getLogger(__name__)

STOP = object()  # put in the inbox to wake a waiting call (stop, lease lost)


class Host(Protocol):
    """What a call needs from the driver that runs it."""

    settings: Settings
    db: SandboxDB
    deliverer: Deliverer
    owner: str
    clock: ManualClock | None  # the manual clock, or None: simulated time runs by itself

    def changed(self, call_id: str, state: str) -> None: ...
    def ensure_lease(self, call: Call) -> None: ...
    def save(self, call: Call) -> bool: ...
    def add_leg(self, call: Call, leg: Leg, request: dict[str, Any]) -> None: ...
    def save_leg(self, leg: Leg) -> None: ...
    def finish_leg(self, leg: Leg, fields: dict[str, Any]) -> None: ...
    def finish(self, call: Call, program: dict[str, Any]) -> None: ...
    def runner_done(self, call: Call) -> None: ...
    def delivered(self, call: Call, payload: dict[str, Any], result: Delivery) -> None: ...


class Call(SimulatedTime):
    """The state of one A-leg (and its Transfer's B-leg) while a driver executes it."""

    interpreter: DocumentRunner  # set by the runner

    def __init__(self, driver: Host, row: dict[str, Any]) -> None:
        self.driver = driver
        self.settings = driver.settings
        self.db = driver.db
        self.call_id: str = row["call_id"]
        self.request: dict[str, Any] = row["request"]
        self.leg = Leg.from_dict(row["leg"])
        self.program: dict[str, Any] = row["program"] or {"phase": "queued"}
        self.log_lines: list[list[Any]] = row["log"] or []
        self.input_seen: int = int(row["input_seen"] or 0)
        self.seen_ids: set[int] = set()
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.stop_mode: str | None = None
        self.lost = False
        self.b_leg: Leg | None = None
        self.current = self.call_id  # the leg whose BXML runs (B-leg during transferAnswer)
        self.gathering: str | None = None  # the leg whose Gather/Record takes digits now
        self.start_gather: dict[str, dict[str, Any]] = self.program.get("startGather") or {}
        self.buffers: dict[str, str] = self.program.get("buffers") or {}
        self.hangup_at: float | None = self.program.get("hangupAt")
        # The person at the far end: the callee of an outbound call, the caller of an inbound one.
        self.callee = self.callee_for(self.leg.from_ if self.inbound else self.leg.to)
        self.timeout = float(self.request.get("callbackTimeout") or 15)
        self.activity = "queued"
        self.faults = Faults.of(self.settings, self.callee.delivery_faults)
        self.streams: dict[str, Any] = {}  # name -> live stream (its socket is in this process)
        self.wait_end_clock = self.clock  # where the wait in progress ends (streamed audio)
        self._parsed: tuple[str, bxml.Root] | None = None
        self.manual = driver.clock
        self._waiting_since: float | None = None  # timeline() when the current wait began
        self._listening = False  # the current wait listens for the caller (Gather, Record)
        self._speech = False  # ... and a phrase said ends it (Record)
        self._saved_entry: Any = None  # the newest transcript entry when last saved

    # --- legs and callee scripts --------------------------------------------------------

    @property
    def inbound(self) -> bool:
        return self.leg.direction == "inbound"

    def answer(self, activity: str) -> None:
        """The call is answered now (outbound: the callee picked up; inbound: the app's
        first verb that answers)."""
        self.leg.answer_time = time.time()
        self.leg.state = "answered"
        if self.callee.hangup_after is not None and not self.inbound:
            self.hangup_at = self.later(self.callee.hangup_after)
        heard.add(self, self.leg, "answered", "the call is answered")
        self.save(activity)
        self.driver.changed(self.call_id, "answered")

    def leg_by_id(self, call_id: str) -> Leg | None:
        if call_id == self.call_id:
            return self.leg
        if self.b_leg is not None and self.b_leg.call_id == call_id:
            return self.b_leg
        return None

    def leg_ids(self) -> list[str]:
        ids = [self.call_id]
        if self.b_leg is not None:
            ids.append(self.b_leg.call_id)
        return ids

    def callee_for(self, number: str) -> callees.Callee:
        try:
            script = self.db.get_callee(number)
        except Exception:
            script = None
        if script is not None:
            try:
                return callees.from_json(script)
            except callees.ScriptError:
                pass
        return callees.by_number(number)

    def script_of(self, leg: Leg) -> callees.Callee:
        """The callee script of the phone at the far end of ``leg``."""
        return self.callee if leg is self.leg else self.callee_for(leg.to)

    # --- persistence ------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.log_lines.append([round(time.time(), 3), text])
        if len(self.log_lines) > 400:
            del self.log_lines[:100]

    def save(self, activity: str) -> None:
        self.activity = activity
        self._saved_entry = heard.newest(self.program)
        self.program["startGather"] = self.start_gather
        self.program["buffers"] = self.buffers
        self.program["hangupAt"] = self.hangup_at
        if not self.driver.save(self):
            self.lost = True
            raise LeaseLost()

    def save_quietly(self) -> None:
        try:
            self.driver.save(self)
        except Exception:
            log.warning("could not save %s before stopping", self.call_id, exc_info=True)

    def row_values(self) -> dict[str, Any]:
        return {
            "state": self.leg.state,
            "leg": self.leg.to_dict(),
            "program": self.program,
            "log": self.log_lines,
            "activity": self.activity,
            "input_seen": self.input_seen,
        }

    # --- documents and callbacks ------------------------------------------------------

    def document(self) -> Document:
        """The A-leg's saved document and position."""
        p = self.program
        return Document(p.get("doc") or "", p.get("base") or self.first_url, p["pc"])

    @property
    def first_url(self) -> str:
        """Where the first document came from: ``answerUrl`` or the ``initiate`` URL."""
        return str(self.request.get("answerUrl") or self.request.get("initiateUrl") or "")

    def set_document(self, doc: Document) -> None:
        """The A-leg continues with ``doc`` from its first verb."""
        self.program.update(doc=doc.text, base=doc.base, pc=0)

    def parse(self, text: str) -> bxml.Root:
        cached = self._parsed
        if cached is not None and cached[0] is text:
            return cached[1]
        root = bxml.parse(text) if text.strip() else bxml.Response()
        self._parsed = (text, root)
        return root

    @staticmethod
    def hook(attrs: dict[str, Any], base: str, prefix: str) -> Hook:
        """The ``{prefix}Url`` of a verb (relative to its document) with its credentials, or
        of a request (Create Call's ``answerUrl``, Update Call's ``redirectUrl``, ...)."""
        fallback = attrs.get(f"{prefix}FallbackUrl")
        return Hook(
            url=urljoin(base, str(attrs[f"{prefix}Url"])),
            method=str(attrs.get(f"{prefix}Method") or "POST"),
            username=attrs.get("username"),
            password=attrs.get("password"),
            fallback_url=urljoin(base, str(fallback)) if fallback else None,
            fallback_method=str(attrs.get(f"{prefix}FallbackMethod") or "POST"),
            fallback_username=attrs.get("fallbackUsername"),
            fallback_password=attrs.get("fallbackPassword"),
        )

    def callback(
        self, leg: Leg, hook: Hook, event_type: str, fields: dict[str, Any], *, bxml_reply: bool
    ) -> Delivery:
        self.check()
        self.driver.ensure_lease(self)
        payload = event(event_type, leg, **fields)
        result = self.faults.deliver(
            self.driver.deliverer,
            hook,
            payload,
            self.timeout,
            bxml=bxml_reply,
            note=self.note,
            scaled=self.settings.scaled,
        )
        self.driver.delivered(self, payload, result)
        for attempt in result.attempts:
            self.note(f"{event_type}: {attempt}")
        return result

    def bxml_callback(
        self, leg: Leg, hook: Hook, event_type: str, fields: dict[str, Any]
    ) -> Document:
        """Send a callback whose reply is BXML; the checked reply, or the leg ends."""
        result = self.callback(leg, hook, event_type, fields, bxml_reply=True)
        if not result.ok:
            raise CallEnded(
                "callback-error",
                leg.call_id,
                f"The {event_type} callback failed: {result.summary or result.error}. "
                f"Detail: {result.error}",
            )
        try:
            text = result.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CallEnded(
                "invalid-bxml",
                leg.call_id,
                f"Invalid BXML in the reply to {event_type} from {result.url}: not UTF-8",
            ) from None
        try:
            root = self.parse(text)
            bxml.check_reply(root, event_type)
        except bxml.BxmlError as exc:
            where = f" (line {exc.line})" if exc.line else ""
            raise CallEnded(
                "invalid-bxml",
                leg.call_id,
                f"Invalid BXML in the reply to {event_type} from {result.url}{where}: {exc}",
            ) from None
        return Document(text, result.url or hook.url)

    def async_callback(self, leg: Leg, hook: Hook, event_type: str, **fields: Any) -> None:
        result = self.callback(leg, hook, event_type, fields, bxml_reply=False)
        if not result.ok:
            self.note(f"{event_type} was not delivered: {result.error}")

    # --- time and inputs --------------------------------------------------------------

    def stop(self, mode: str) -> None:
        self.stop_mode = mode
        self._post(STOP)

    def lose(self) -> None:
        self.lost = True
        self._post(STOP)

    def deliver_input(self, item: dict[str, Any]) -> None:
        self._post(item)

    def _post(self, item: Any) -> None:
        if self.manual is not None:
            self.manual.post(self, self.inbox, item)
        else:
            self.inbox.put(item)

    def check(self) -> None:
        if self.stop_mode is not None:
            raise Stopped()
        if self.lost:
            raise LeaseLost()

    def wait(
        self, seconds: float, *, digits: bool = False, ringing: bool = False, playing: bool = False
    ) -> str | None:
        """Let ``seconds`` of simulated time pass, handling inputs meanwhile.

        With ``digits`` it returns as soon as digits are pressed on the gathering leg.
        """
        return self.wait_until(
            self.deadline(seconds),
            digits=digits,
            ringing=ringing,
            length=float(seconds),
            playing=playing,
        )

    def wait_until(
        self,
        deadline: float,
        *,
        digits: bool = False,
        ringing: bool = False,
        length: float | None = None,
        speech: bool = False,
        playing: bool = False,
    ) -> str | None:
        """Wait until ``deadline`` (``timeline()``), handling inputs; see ``wait``.  With
        ``speech`` a phrase the callee says on the gathering leg returns ``SPOKE``;
        ``playing`` says prompts still play (the manual clock does not count the wait as
        listening for the caller)."""
        if heard.newest(self.program) is not self._saved_entry:
            self.save(self.activity)  # what was heard is readable while the call waits
        started = self.timeline()
        self._waiting_since = started
        self._listening = (digits or speech) and not playing
        self._speech = speech
        finished = False
        # Where this wait ends on the call's clock (a stream paces its frames up to it).
        span = length if length is not None else max(0.0, -self.simulated_since(deadline))
        self.wait_end_clock = self.clock + span
        try:
            pressed = self._wait(deadline, digits=digits, ringing=ringing)
            finished = pressed is None
            return pressed
        finally:
            # The call's simulated clock: a wait of ``length`` that ran its course adds
            # exactly that (however slow the machine); any other adds the time it took.
            self._waiting_since = None
            self._listening = self._speech = False
            if length is not None and (finished or not self.settings.time_scale):
                passed = length
            else:
                passed = self.simulated_since(started)
                passed = passed if length is None else min(length, passed)
            self.program["clock"] = self.clock + max(0.0, passed)
            self.wait_end_clock = self.clock

    def _wait(self, deadline: float, *, digits: bool, ringing: bool) -> str | None:
        while True:
            self.check()
            timeout = deadline - self.timeline()
            if self.hangup_at is not None and not ringing:
                until_hangup = self.until(self.hangup_at)
                if until_hangup <= 0:
                    self.note("the callee hung up (script)")
                    heard.add(self, self.leg, "hangup", "hung up (script)")
                    raise CallEnded("hangup", self.call_id)
                timeout = min(timeout, until_hangup)
            detection = self.program.get("amd")  # an async machine detection result pending
            if detection is not None and not ringing:
                until_detected = self.until(detection["at"])
                if until_detected <= 0:
                    self._send_detection()
                    continue
                timeout = min(timeout, until_detected)
            item = self._next_input(timeout, listening=self._listening)
            if item is None:
                if deadline - self.timeline() <= 0:
                    return None
                continue
            if item is STOP:
                continue
            pressed = self._handle(item, ringing=ringing, digits=digits)
            if pressed:
                return pressed

    def _next_input(self, timeout: float, *, listening: bool) -> Any:
        """The next input within ``timeout`` (wait-timeline seconds), or None."""
        if self.manual is not None:
            return self.manual.park(self, self.inbox, timeout, listening)
        try:
            if timeout > 0:
                return self.inbox.get(timeout=timeout)
            return self.inbox.get_nowait()
        except queue.Empty:
            return None

    def _send_detection(self) -> None:
        pending = self.program.pop("amd")
        config = self.request.get("machineDetection") or {}
        result = amd.result(pending["value"], pending["seconds"])
        self.async_callback(
            self.leg, amd.hook(config), "machineDetectionComplete", machineDetectionResult=result
        )

    def _handle(self, item: dict[str, Any], *, ringing: bool, digits: bool) -> str | None:
        input_id = int(item.get("id") or 0)
        if input_id:
            if input_id in self.seen_ids:
                return None
            self.seen_ids.add(input_id)
            self.input_seen = max(self.input_seen, input_id)
        kind, data, target = item["kind"], item["data"], item["call_id"]
        is_a = target == self.call_id
        if kind in ("hangup", "complete"):
            if is_a:
                if ringing:
                    cause = "cancel" if kind == "complete" else "rejected"
                elif self.inbound and self.leg.answer_time is None:
                    # Unanswered inbound: the caller gave up, or the app rejected the call.
                    cause = "rejected" if kind == "complete" else "cancel"
                else:
                    cause = "hangup"
                self.note(
                    "Update Call: state completed" if kind == "complete" else "the callee hung up"
                )
                if kind == "hangup":
                    heard.add(self, self.leg, "hangup", "hung up")
                raise CallEnded(cause, self.call_id)
            if self.b_leg is not None and target == self.b_leg.call_id:
                self.note(f"the transfer target hung up ({kind})")
                heard.add(self, self.b_leg, "hangup", "hung up")
                raise CallEnded("hangup", target)
            return None
        if kind == "recording":  # Update Call Recording State
            changed = (recorder.pause if data["state"] == "paused" else recorder.resume)(
                self.program, self.clock
            )
            self.note(f"Update Recording: {data['state']}" + ("" if changed else " (no change)"))
            return None
        if kind == "bridge":  # another call's Bridge cancels this call's document
            if is_a and not ringing:
                raise Interrupt(kind, data)
            return None
        if kind == "unbridged":
            bridged = self.program.get("bridge") or {}
            if is_a and bridged.get("peer") == data.get("peer"):
                raise PeerLeft(str(data["peer"]))
            return None
        if kind == "conference":  # the conference this call is in changed
            if is_a and not ringing and self.program.get("conference"):
                raise ConferenceChanged(data)
            return None
        if kind in ("redirect", "bxml"):
            if is_a and not ringing:
                raise Interrupt(kind, data)
            return None
        if kind == "speech":  # the callee says a phrase (control API, the kit's say())
            said_on = self.leg_by_id(target)
            if said_on is None:
                return None
            text = str(data.get("text", ""))
            heard.add(self, said_on, "said", text)
            self.program.setdefault("spoken", {})[target] = text
            if self._speech and self.gathering == target and not ringing:
                self.program[f"spoke:{target}"] = True
                return SPOKE
            return None
        if kind == "digits":
            pressed = str(data.get("digits", ""))
            if ringing:
                return None
            pressed_on = self.leg_by_id(target)
            if pressed_on is not None:
                heard.add(self, pressed_on, "pressed", pressed)
            if digits and self.gathering == target:
                return pressed
            hook = self.start_gather.get(target)
            leg = self.leg_by_id(target)
            if hook is not None and leg is not None:
                for digit in pressed:
                    self.async_callback(leg, Hook(**hook), "dtmf", digit=digit)
                return None
            self.buffers[target] = (self.buffers.get(target, "") + pressed)[-50:]
            return None
        return None
