"""One call's execution: ring the callee, send ``answer``, run the BXML, end with ``disconnect``.

A ``CallRunner`` runs in its own thread while its driver holds the call's lease.  It saves
where it is (``program``) before every verb, so a driver that takes over an expired lease
resumes at that verb (re-running it from its start).  Every write is conditional on the
lease, so a runner that lost its call stops before sending anything else.

Inputs (digits, the callee hanging up, Update Call, Update Call BXML) arrive in ``inbox``
in the order they were stored; simulated time passes in ``_wait``, which handles them.

Verbs simulated: SpeakSentence, PlayAudio, Pause, Ring, SendDtmf (they take time), Gather,
Redirect, Transfer (+ PhoneNumber/SipUri), Record, StartGather/StopGather, Tag, Hangup.
Every other verb is skipped and noted in the call's log.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import bxml
from sandbox import callee as callees
from sandbox.delivery import Delivery, Hook
from sandbox.payloads import (
    Leg,
    event,
    iso,
    iso_duration,
    new_call_id,
    new_error_id,
    new_recording_id,
)

if TYPE_CHECKING:
    from sandbox.driver import Driver

log = logging.getLogger(__name__)

FAILURE_CAUSES = frozenset(
    {"busy", "timeout", "rejected", "invalid-bxml", "callback-error", "error"}
)
SIP_CODES = {"busy": 486, "rejected": 603}
DEFAULT_MESSAGES = {
    "busy": "Callee is busy",
    "rejected": "Callee rejected the call",
    "timeout": "Call was not answered before callTimeout",
}
TIMED_VERBS = frozenset({"SpeakSentence", "PlayAudio", "Pause", "Ring", "SendDtmf"})
NOT_SIMULATED = frozenset(
    {
        "Bridge",
        "Conference",
        "Forward",
        "Refer",
        "StartRecording",
        "PauseRecording",
        "ResumeRecording",
        "StopRecording",
        "StartStream",
        "StopStream",
        "StartTranscription",
        "StopTranscription",
    }
)
_STOP = object()


class CallEnded(Exception):
    """A leg ends: ``cause`` as in the disconnect event."""

    def __init__(self, cause: str, call_id: str, message: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.call_id = call_id
        self.message = message


class Interrupt(Exception):
    """Update Call (redirect) or Update Call BXML replaces the A-leg's document."""

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.data = data


class Stopped(Exception):
    """The driver is stopping (``release``) or simulating a crash (``abandon``)."""


class LeaseLost(Exception):
    """Another driver holds this call now."""


@dataclass
class Document:
    """A document being executed on one leg: its text, the URL it came from, position."""

    text: str
    base: str
    pc: int = 0


class CallRunner:
    def __init__(self, driver: Driver, row: dict[str, Any]) -> None:
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
        self.thread: threading.Thread | None = None
        self.b_leg: Leg | None = None
        self.current = self.call_id  # the leg whose BXML runs (B-leg during transferAnswer)
        self.gathering: str | None = None  # the leg whose Gather/Record takes digits now
        self.start_gather: dict[str, dict[str, Any]] = self.program.get("startGather") or {}
        self.buffers: dict[str, str] = self.program.get("buffers") or {}
        self.hangup_at: float | None = self.program.get("hangupAt")
        self.callee = self._callee(self.leg.to)
        self.timeout = float(self.request.get("callbackTimeout") or 15)
        self.activity = "queued"
        self._parsed: tuple[str, bxml.Root] | None = None

    # --- thread -----------------------------------------------------------------------

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.run, name=f"sandbox-call-{self.call_id[:11]}", daemon=True
        )
        self.thread.start()

    def stop(self, mode: str) -> None:
        self.stop_mode = mode
        self.inbox.put(_STOP)

    def lose(self) -> None:
        self.lost = True
        self.inbox.put(_STOP)

    def deliver_input(self, item: dict[str, Any]) -> None:
        self.inbox.put(item)

    def run(self) -> None:
        try:
            self._main()
        except Stopped:
            if self.stop_mode == "release":
                self._save_quietly()
                try:
                    self.db.release(self.driver.owner, [self.call_id])
                except Exception:
                    log.warning("could not release %s", self.call_id, exc_info=True)
        except LeaseLost:
            log.warning("sandbox call %s: lease lost; another driver has it", self.call_id)
        except Exception as exc:  # a bug: end the call rather than leave it hanging
            log.exception("sandbox call %s failed", self.call_id)
            try:
                self._end(CallEnded("error", self.call_id, f"sandbox internal error: {exc}"))
            except Exception:
                log.exception("sandbox call %s could not be ended", self.call_id)
        finally:
            self.driver.runner_done(self)

    # --- phases -----------------------------------------------------------------------

    def _main(self) -> None:
        self.note(f"driver {self.driver.owner} runs the call from phase {self.program['phase']}")
        for item in self.db.inputs_for(self._leg_ids(), self.input_seen):
            self.inbox.put(item)
        if self.program.get("transfer"):
            self._abandoned_transfer()
        try:
            phase = self.program["phase"]
            if phase == "ending":
                raise CallEnded(
                    self.program["cause"], self.call_id, self.program.get("errorMessage")
                )
            if phase == "queued":
                self._initiate()
            if self.program["phase"] == "ringing":
                self._ring()
            if self.program["phase"] == "answering":
                self._answer()
            self._run_program()
        except CallEnded as end:
            self._end(end)

    def _initiate(self) -> None:
        self.leg.start_time = time.time()
        self.leg.state = "initiated"
        self.program["phase"] = "ringing"
        self.save("ringing")
        self.driver.changed(self.call_id, "initiated")

    def _ring(self) -> None:
        callee = self.callee
        call_timeout = float(self.request.get("callTimeout") or 30)
        ring = self.settings.ring_seconds if callee.ring_seconds is None else callee.ring_seconds
        self.note(f"ringing {self.leg.to} (callee script: {callee.answer})")
        try:
            if callee.answer == "busy":
                raise CallEnded("busy", self.call_id)
            if callee.answer == "no-answer" or ring > call_timeout:
                self._wait(call_timeout, ringing=True)
                raise CallEnded("timeout", self.call_id)
            self._wait(ring, ringing=True)
            if callee.answer == "reject":
                raise CallEnded("rejected", self.call_id)
        except CallEnded as end:
            if end.cause == "hangup":  # the callee declined while it rang
                raise CallEnded("rejected", self.call_id) from None
            raise
        self.leg.answer_time = time.time()
        self.leg.state = "answered"
        if callee.hangup_after is not None:
            self.hangup_at = time.time() + self.settings.scaled(callee.hangup_after)
        self.program["phase"] = "answering"
        self.save("answering")
        self.driver.changed(self.call_id, "answered")

    def _answer(self) -> None:
        req = self.request
        hook = Hook(
            url=req["answerUrl"],
            method=req.get("answerMethod") or "POST",
            username=req.get("username"),
            password=req.get("password"),
            fallback_url=req.get("answerFallbackUrl"),
            fallback_method=req.get("answerFallbackMethod") or "POST",
            fallback_username=req.get("fallbackUsername"),
            fallback_password=req.get("fallbackPassword"),
        )
        doc = self._bxml_callback(self.leg, hook, "answer", {})
        self._set_document(doc)
        self.program["phase"] = "running"

    def _run_program(self) -> None:
        while True:
            try:
                self._run(self.leg, self._document())
                raise CallEnded("hangup", self.call_id)  # the end of the document
            except Interrupt as interrupt:
                self._interrupted(interrupt)

    def _interrupted(self, interrupt: Interrupt) -> None:
        data = interrupt.data
        if interrupt.kind == "bxml":
            self.note("the call's BXML was replaced (PUT .../bxml)")
            base = self.program.get("base") or self.request["answerUrl"]
            self._set_document(Document(data["bxml"], base))
            return
        if "tag" in data:
            self.leg.tag = data["tag"] or None
        hook = Hook(
            url=data["redirectUrl"],
            method=data.get("redirectMethod") or "POST",
            username=data.get("username"),
            password=data.get("password"),
            fallback_url=data.get("redirectFallbackUrl"),
            fallback_method=data.get("redirectFallbackMethod") or "POST",
            fallback_username=data.get("fallbackUsername"),
            fallback_password=data.get("fallbackPassword"),
        )
        self.note("Update Call: redirect")
        self._set_document(self._bxml_callback(self.leg, hook, "redirect", {}))

    # --- documents --------------------------------------------------------------------

    def _document(self) -> Document:
        p = self.program
        return Document(p.get("doc") or "", p.get("base") or self.request["answerUrl"], p["pc"])

    def _set_document(self, doc: Document) -> None:
        self.program.update(doc=doc.text, base=doc.base, pc=0)

    def _parse(self, text: str) -> bxml.Root:
        cached = self._parsed
        if cached is not None and cached[0] is text:
            return cached[1]
        root = bxml.parse(text) if text.strip() else bxml.Response()
        self._parsed = (text, root)
        return root

    def _run(self, leg: Leg, doc: Document) -> None:
        """Execute ``doc`` on ``leg`` until its end (returns) or the leg ends (raises)."""
        a_leg = leg is self.leg
        while True:
            root = self._parse(doc.text)
            if doc.pc >= len(root):
                return
            verb = root[doc.pc]
            if a_leg:
                self.program["pc"] = doc.pc
                self.save(verb.name)
            else:
                self.activity = f"B-leg {verb.name}"
            replacement = self._verb(leg, verb, doc.base)
            if replacement is None:
                doc.pc += 1
            else:
                doc.text, doc.base, doc.pc = replacement.text, replacement.base, 0
                if a_leg:
                    self._set_document(replacement)

    def _verb(self, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
        name = verb.name
        attrs = verb.attrs
        if name in TIMED_VERBS:
            self._wait(self._duration(verb))
            return None
        if name == "Tag":
            leg.tag = (verb.text or "").strip() or None
            self.note(f"Tag: {'cleared' if leg.tag is None else repr(leg.tag)}")
            return None
        if name == "Hangup":
            raise CallEnded("hangup", leg.call_id)
        if name in NOT_SIMULATED:
            self.note(f"{name} is not simulated by the sandbox; skipped")
            return None
        if "tag" in attrs:
            leg.tag = str(attrs["tag"]) or None
        if name == "Gather":
            return self._gather(leg, verb, base)
        if name == "Redirect":
            return self._bxml_callback(leg, self._hook(attrs, base, "redirect"), "redirect", {})
        if name == "StartGather":
            hook = self._hook(attrs, base, "dtmf")
            self.start_gather[leg.call_id] = hook.__dict__
            self.program["startGather"] = self.start_gather
            self.note("StartGather: each digit pressed is sent as dtmf")
            return None
        if name == "StopGather":
            self.start_gather.pop(leg.call_id, None)
            return None
        if name == "Record":
            return self._record(leg, verb, base)
        if name == "Transfer":
            return self._transfer(leg, verb, base)
        self.note(f"{name} is not simulated by the sandbox; skipped")
        return None

    def _duration(self, verb: bxml.Verb) -> float:
        attrs = verb.attrs
        name = verb.name
        if name == "SpeakSentence":
            return len(verb.text or "") * self.settings.speech_seconds_per_char
        if name == "PlayAudio":
            return self.settings.audio_seconds
        if name == "Pause":
            return float(attrs.get("duration", 1))  # type: ignore[arg-type]
        if name == "Ring":
            return float(attrs.get("duration", 5))  # type: ignore[arg-type]
        if name == "SendDtmf":
            tone = float(attrs.get("toneDuration", 200)) + float(attrs.get("toneInterval", 400))  # type: ignore[arg-type]
            total = 0.0
            for char in verb.text or "":
                total += 0.5 if char in "w," else 1.0 if char == "W" else tone / 1000.0
            return total
        return 0.0

    @staticmethod
    def _hook(attrs: dict[str, Any], base: str, prefix: str) -> Hook:
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

    # --- callbacks --------------------------------------------------------------------

    def _callback(
        self, leg: Leg, hook: Hook, event_type: str, fields: dict[str, Any], *, bxml_reply: bool
    ) -> Delivery:
        self._check()
        self.driver.ensure_lease(self)
        payload = event(event_type, leg, **fields)
        result = self.driver.deliverer.send(hook, payload, self.timeout, bxml=bxml_reply)
        for attempt in result.attempts:
            self.note(f"{event_type}: {attempt}")
        return result

    def _bxml_callback(
        self, leg: Leg, hook: Hook, event_type: str, fields: dict[str, Any]
    ) -> Document:
        """Send a callback whose reply is BXML; the checked reply, or the leg ends."""
        result = self._callback(leg, hook, event_type, fields, bxml_reply=True)
        if not result.ok:
            raise CallEnded(
                "callback-error", leg.call_id, f"{event_type} callback failed: {result.error}"
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
            root = self._parse(text)
            bxml.check_reply(root, event_type)
        except bxml.BxmlError as exc:
            where = f" (line {exc.line})" if exc.line else ""
            raise CallEnded(
                "invalid-bxml",
                leg.call_id,
                f"Invalid BXML in the reply to {event_type} from {result.url}{where}: {exc}",
            ) from None
        return Document(text, result.url or hook.url)

    def _async_callback(self, leg: Leg, hook: Hook, event_type: str, **fields: Any) -> None:
        result = self._callback(leg, hook, event_type, fields, bxml_reply=False)
        if not result.ok:
            self.note(f"{event_type} was not delivered: {result.error}")

    # --- time and inputs --------------------------------------------------------------

    def _check(self) -> None:
        if self.stop_mode is not None:
            raise Stopped()
        if self.lost:
            raise LeaseLost()

    def _wait(self, seconds: float, *, digits: bool = False, ringing: bool = False) -> str | None:
        """Let ``seconds`` of simulated time pass, handling inputs meanwhile.

        With ``digits`` it returns as soon as digits are pressed on the gathering leg.
        """
        deadline = time.monotonic() + self.settings.scaled(seconds)
        return self._wait_until(deadline, digits=digits, ringing=ringing)

    def _wait_until(
        self, deadline: float, *, digits: bool = False, ringing: bool = False
    ) -> str | None:
        while True:
            self._check()
            timeout = deadline - time.monotonic()
            if self.hangup_at is not None and not ringing:
                until_hangup = self.hangup_at - time.time()
                if until_hangup <= 0:
                    self.note("the callee hung up (script)")
                    raise CallEnded("hangup", self.call_id)
                timeout = min(timeout, until_hangup)
            try:
                if timeout > 0:
                    item = self.inbox.get(timeout=timeout)
                else:
                    item = self.inbox.get_nowait()
            except queue.Empty:
                if deadline - time.monotonic() <= 0:
                    return None
                continue
            if item is _STOP:
                continue
            pressed = self._handle(item, ringing=ringing, digits=digits)
            if pressed:
                return pressed

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
                else:
                    cause = "hangup"
                self.note(
                    "Update Call: state completed" if kind == "complete" else "the callee hung up"
                )
                raise CallEnded(cause, self.call_id)
            if self.b_leg is not None and target == self.b_leg.call_id:
                self.note(f"the transfer target hung up ({kind})")
                raise CallEnded("hangup", target)
            return None
        if kind in ("redirect", "bxml"):
            if is_a and not ringing:
                raise Interrupt(kind, data)
            return None
        if kind == "digits":
            pressed = str(data.get("digits", ""))
            if ringing:
                return None
            if digits and self.gathering == target:
                return pressed
            hook = self.start_gather.get(target)
            leg = self._leg(target)
            if hook is not None and leg is not None:
                for digit in pressed:
                    self._async_callback(leg, Hook(**hook), "dtmf", digit=digit)
                return None
            self.buffers[target] = (self.buffers.get(target, "") + pressed)[-50:]
            return None
        return None

    def _leg(self, call_id: str) -> Leg | None:
        if call_id == self.call_id:
            return self.leg
        if self.b_leg is not None and self.b_leg.call_id == call_id:
            return self.b_leg
        return None

    def _leg_ids(self) -> list[str]:
        ids = [self.call_id]
        if self.b_leg is not None:
            ids.append(self.b_leg.call_id)
        return ids

    def _callee(self, number: str) -> callees.Callee:
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

    # --- Gather -----------------------------------------------------------------------

    def _gather(self, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
        attrs = verb.attrs
        terminators = str(attrs.get("terminatingDigits", ""))
        max_digits = int(attrs.get("maxDigits", 50))  # type: ignore[call-overload]
        inter = float(attrs.get("interDigitTimeout", 5))  # type: ignore[arg-type]
        first = float(attrs.get("firstDigitTimeout", 5))  # type: ignore[arg-type]
        repeat = int(attrs.get("repeatCount", 1))  # type: ignore[call-overload]
        collected: list[str] = []
        state = {"terminator": "", "done": False}

        def feed(pressed: str) -> bool:
            for digit in pressed:
                if digit in terminators:
                    state["terminator"] = digit
                    return True
                collected.append(digit)
                if len(collected) >= max_digits:
                    return True
            return False

        pending = self.buffers.pop(leg.call_id, "") + self._scripted_digits(leg)
        done = feed(pending) if pending else False
        self.gathering = leg.call_id
        try:
            if not done and not collected:
                prompts = verb.children * repeat
                for prompt in prompts:
                    pressed = self._wait(self._duration(prompt), digits=True)
                    if pressed:
                        done = feed(pressed)
                        break
            while not done:
                pressed = self._wait(inter if collected else first, digits=True)
                if not pressed:
                    break
                done = feed(pressed)
        finally:
            self.gathering = None
        digits = "".join(collected)
        self.note(f"Gather: digits {digits!r}, terminatingDigit {state['terminator']!r}")
        if "gatherUrl" not in attrs:
            return None
        return self._bxml_callback(
            leg,
            self._hook(attrs, base, "gather"),
            "gather",
            {"digits": digits, "terminatingDigit": state["terminator"]},
        )

    def _scripted_digits(self, leg: Leg) -> str:
        script = self.callee if leg is self.leg else self._callee(leg.to)
        key = f"gatherCursor:{leg.call_id}"
        cursor = int(self.program.get(key, 0))
        if cursor >= len(script.gather_digits):
            return ""
        self.program[key] = cursor + 1
        return script.gather_digits[cursor]

    # --- Record -----------------------------------------------------------------------

    def _record(self, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
        attrs = verb.attrs
        terminators = str(attrs.get("terminatingDigits", "#"))
        max_duration = float(attrs.get("maxDuration", 60))  # type: ignore[arg-type]
        silence = float(attrs.get("silenceTimeout", 0))  # type: ignore[arg-type]
        script = self.callee if leg is self.leg else self._callee(leg.to)
        speech = (
            self.settings.record_seconds if script.record_seconds is None else script.record_seconds
        )
        limit = min(max_duration, speech + silence) if silence > 0 else max_duration
        started = time.time()
        real_started = time.monotonic()
        recording_id = new_recording_id()
        file_format = str(attrs.get("fileFormat", "wav"))
        fields = {
            "recordingId": recording_id,
            "mediaUrl": f"{leg.call_url}/recordings/{recording_id}/media",
        }

        def recorded() -> dict[str, Any]:
            elapsed = time.monotonic() - real_started
            simulated = elapsed / self.settings.time_scale if self.settings.time_scale else limit
            return {
                **fields,
                "startTime": iso(started),
                "endTime": iso(time.time()),
                "duration": iso_duration(min(simulated, limit)),
                "fileFormat": file_format,
                "channels": 1,
            }

        available = None
        if "recordingAvailableUrl" in attrs:
            available = Hook(
                url=urljoin(base, str(attrs["recordingAvailableUrl"])),
                method=str(attrs.get("recordingAvailableMethod") or "POST"),
                username=attrs.get("username"),
                password=attrs.get("password"),
            )
        self.gathering = leg.call_id
        try:
            deadline = time.monotonic() + self.settings.scaled(limit)
            while True:
                pressed = self._wait_until(deadline, digits=True)
                if not pressed or any(d in terminators for d in pressed):
                    break
        except CallEnded:
            if available is not None:  # the recording still becomes available
                self._async_callback(
                    leg, available, "recordingAvailable", **recorded(), status="complete"
                )
            raise
        finally:
            self.gathering = None
        result = recorded()
        self.note(f"Record: {result['duration']}")
        replacement = None
        if "recordCompleteUrl" in attrs:
            replacement = self._bxml_callback(
                leg, self._hook(attrs, base, "recordComplete"), "recordComplete", result
            )
        if available is not None:
            self._async_callback(leg, available, "recordingAvailable", **result, status="complete")
        return replacement

    # --- Transfer ---------------------------------------------------------------------

    def _transfer(self, a_leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
        attrs = verb.attrs
        target = verb.children[0]
        t_attrs = target.attrs
        now = time.time()
        b = Leg(
            call_id=new_call_id(),
            account_id=a_leg.account_id,
            application_id=a_leg.application_id,
            from_=str(attrs.get("transferCallerId") or a_leg.to),
            to=str(target.text),
            call_url="",
            enqueued_time=now,
            start_time=now,
            tag=(str(t_attrs["tag"]) or None) if "tag" in t_attrs else a_leg.tag,
            parent_call_id=a_leg.call_id,
            state="initiated",
        )
        b.call_url = a_leg.call_url.rsplit("/", 1)[0] + "/" + b.call_id
        b.transfer_caller_id = b.from_
        b.transfer_to = b.to
        self.b_leg = b
        self.program["transfer"] = {"bLeg": b.call_id}
        self.driver.add_leg(self, b, dict(self.request, to=b.to, **{"from": b.from_}))
        self.note(f"Transfer: B-leg {b.call_id} rings {b.to}")
        script = self._callee(b.to)
        disconnect_hook = None
        if "transferDisconnectUrl" in t_attrs:
            disconnect_hook = self._hook(t_attrs, base, "transferDisconnect")
        end: CallEnded | None = None
        try:
            end = self._run_b_leg(b, target, base, script, float(attrs.get("callTimeout", 30)))  # type: ignore[arg-type]
        except (CallEnded, Interrupt):
            # The A-leg ends or is redirected: the B-leg goes with it.
            self._end_b_leg(b, CallEnded("hangup", b.call_id), disconnect_hook)
            self.b_leg = None
            self.program.pop("transfer", None)
            raise
        self._end_b_leg(b, end, disconnect_hook)
        self.b_leg = None
        self.program.pop("transfer", None)
        self.current = self.call_id
        fields: dict[str, Any] = {
            "transferCallerId": b.transfer_caller_id,
            "transferTo": b.transfer_to,
            "cause": end.cause,
        }
        if end.cause in FAILURE_CAUSES:
            fields["errorMessage"] = end.message or DEFAULT_MESSAGES.get(end.cause, end.cause)
            fields["errorId"] = new_error_id()
        if "transferCompleteUrl" not in attrs:
            return None
        return self._bxml_callback(
            a_leg, self._hook(attrs, base, "transferComplete"), "transferComplete", fields
        )

    def _run_b_leg(
        self, b: Leg, target: bxml.Verb, base: str, script: callees.Callee, call_timeout: float
    ) -> CallEnded:
        """Ring, answer and bridge the B-leg; return how it ended (A-leg ends raise)."""
        ring = self.settings.ring_seconds if script.ring_seconds is None else script.ring_seconds
        try:
            if script.answer == "busy":
                return CallEnded("busy", b.call_id)
            if script.answer == "no-answer" or ring > call_timeout:
                self._wait(call_timeout)
                return CallEnded("timeout", b.call_id)
            self._wait(ring)
            if script.answer == "reject":
                return CallEnded("rejected", b.call_id)
            b.answer_time = time.time()
            b.state = "answered"
            self.driver.save_leg(b)
            t_attrs = target.attrs
            if "transferAnswerUrl" in t_attrs:
                self.current = b.call_id
                doc = self._bxml_callback(
                    b, self._hook(t_attrs, base, "transferAnswer"), "transferAnswer", {}
                )
                self._run(b, doc)
                self.current = self.call_id
            self.activity = "Transfer (bridged)"
            self.note(f"Transfer: bridged with {b.call_id}")
            bridge = (
                self.settings.bridge_seconds
                if script.bridge_seconds is None
                else script.bridge_seconds
            )
            self._wait(bridge)
            self.note("Transfer: the transfer target hung up")
            return CallEnded("hangup", b.call_id)
        except CallEnded as end:
            if end.call_id != b.call_id:
                raise
            if end.cause == "hangup" and b.answer_time is None:
                return CallEnded("rejected", b.call_id)
            return end
        finally:
            self.current = self.call_id

    def _end_b_leg(self, b: Leg, end: CallEnded, hook: Hook | None) -> None:
        b.end_time = time.time()
        b.state = "disconnected"
        fields: dict[str, Any] = {"cause": end.cause}
        if end.cause in FAILURE_CAUSES:
            fields["errorMessage"] = end.message or DEFAULT_MESSAGES.get(end.cause, end.cause)
            fields["errorId"] = new_error_id()
        self.driver.finish_leg(b, fields)
        self.start_gather.pop(b.call_id, None)
        if hook is not None:
            try:
                self._async_callback(b, hook, "transferDisconnect", **fields)
            except (Stopped, LeaseLost):
                pass

    def _abandoned_transfer(self) -> None:
        """Resumed in the middle of a Transfer whose driver died: that B-leg is gone."""
        b_id = self.program["transfer"].get("bLeg")
        row = self.db.get_call(b_id) if b_id else None
        if row is not None and row["active"]:
            b = Leg.from_dict(row["leg"])
            b.end_time = time.time()
            b.state = "disconnected"
            self.driver.finish_leg(b, {"cause": "hangup"})
            self.note(f"Transfer: B-leg {b_id} ended when its driver stopped")
        self.program.pop("transfer", None)

    # --- the end ----------------------------------------------------------------------

    def _end(self, end: CallEnded) -> None:
        p = self.program
        if p.get("phase") != "ending":
            self.leg.end_time = time.time()
            p.update(phase="ending", cause=end.cause)
            if end.cause in FAILURE_CAUSES:
                p["errorMessage"] = end.message or DEFAULT_MESSAGES.get(end.cause, end.cause)
                p["errorId"] = new_error_id()
            self.note(f"call ended: {end.cause}" + (f" ({end.message})" if end.message else ""))
            self.save("ending")
        fields: dict[str, Any] = {
            "cause": p["cause"],
            "errorMessage": p.get("errorMessage"),
            "errorId": p.get("errorId"),
        }
        if p["cause"] in SIP_CODES:
            fields["sipResponseCode"] = SIP_CODES[p["cause"]]
        url = self.request.get("disconnectUrl")
        if url:
            hook = Hook(
                url=url,
                method=self.request.get("disconnectMethod") or "POST",
                username=self.request.get("username"),
                password=self.request.get("password"),
            )
            self._async_callback(self.leg, hook, "disconnect", **fields)
        else:
            self.note("no disconnectUrl: the disconnect event is not sent")
        self.leg.state = "disconnected"
        self.activity = "ended"
        self.driver.finish(self, p)

    # --- persistence ------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.log_lines.append([round(time.time(), 3), text])
        if len(self.log_lines) > 400:
            del self.log_lines[:100]

    def save(self, activity: str) -> None:
        self.activity = activity
        self.program["startGather"] = self.start_gather
        self.program["buffers"] = self.buffers
        self.program["hangupAt"] = self.hangup_at
        if not self.driver.save(self):
            self.lost = True
            raise LeaseLost()

    def _save_quietly(self) -> None:
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
