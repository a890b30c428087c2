"""One call's execution: ring the callee, send ``answer``, run the BXML, end with ``disconnect``.

A ``CallRunner`` runs in its own thread while its driver holds the call's lease.  It saves
where it is (``program``) before every verb, so a driver that takes over an expired lease
resumes at that verb (re-running it from its start).  Every write is conditional on the
lease, so a runner that lost its call stops before sending anything else.

The parts: ``sandbox.call`` (state, simulated time, inputs, callbacks), ``sandbox.interpreter``
(walks a document), ``sandbox.verbs`` (one unit per verb).  This module is the thread and the
call's phases; the driver imports it, and nothing here imports the driver.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sandbox import amd, heard
from sandbox.call import Call, Host
from sandbox.delivery import Hook
from sandbox.execution import (
    SIP_CODES,
    CallEnded,
    Document,
    Interrupt,
    LeaseLost,
    Stopped,
)
from sandbox.interpreter import Interpreter
from sandbox.verbs.bridge import bridged_target
from sandbox.verbs.recording import finish as finish_recording
from sandbox.verbs.stream import finish_all as finish_streams
from sandbox.verbs.transcription import finish_all as finish_transcriptions
from sandbox.verbs.transfer import end_abandoned_transfer

log = logging.getLogger(__name__)

__all__ = ["CallEnded", "CallRunner", "Document", "Interrupt"]


class CallRunner(Call):
    def __init__(self, driver: Host, row: dict[str, Any]) -> None:
        super().__init__(driver, row)
        self.interpreter = Interpreter(self)
        self.thread: threading.Thread | None = None

    # --- thread -----------------------------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(
            target=self.run, name=f"sandbox-call-{self.call_id[:11]}", daemon=True
        )
        thread.start()
        # Published only once started: a driver stopping meanwhile joins only what runs.
        self.thread = thread

    def run(self) -> None:
        try:
            self._main()
        except Stopped:
            if self.stop_mode == "release":
                self.save_quietly()
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
        for item in self.db.inputs_for(self.leg_ids(), self.input_seen):
            self.inbox.put(item)
        if self.program.get("transfer"):
            end_abandoned_transfer(self)
        try:
            phase = self.program["phase"]
            if phase == "ending":
                raise CallEnded(
                    self.program["cause"], self.call_id, self.program.get("errorMessage")
                )
            if phase == "queued":
                self._initiate()
            if self.program["phase"] == "initiating":
                self._send_initiate()
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
        self.program["phase"] = "initiating" if self.inbound else "ringing"
        if self.inbound and self.callee.hangup_after is not None:
            # The caller's script: hang up this long after dialling.
            self.hangup_at = self.later(self.callee.hangup_after)
        self.save(self.program["phase"])
        self.driver.changed(self.call_id, "initiated")

    def _send_initiate(self) -> None:
        """Inbound: ``initiate`` to the application; its reply is the first document."""
        req = self.request
        hook = self.hook(req, req["initiateUrl"], "initiate")
        self.note(f"{self.leg.from_} dials {self.leg.to} (caller script: {self.callee.answer})")
        doc = self.bxml_callback(self.leg, hook, "initiate", dict(req.get("initiate") or {}))
        self.set_document(doc)
        self.program["phase"] = "running"

    def _ring(self) -> None:
        callee = self.callee
        call_timeout = float(self.request.get("callTimeout") or 30)
        ring = self.settings.ring_seconds if callee.ring_seconds is None else callee.ring_seconds
        self.note(f"ringing {self.leg.to} (callee script: {callee.answer})")
        try:
            if callee.answer == "busy":
                raise CallEnded("busy", self.call_id)
            if callee.answer == "no-answer" or ring > call_timeout:
                self.wait(call_timeout, ringing=True)
                raise CallEnded("timeout", self.call_id)
            self.wait(ring, ringing=True)
            if callee.answer == "reject":
                raise CallEnded("rejected", self.call_id)
        except CallEnded as end:
            if end.cause == "hangup":  # the callee declined while it rang
                raise CallEnded("rejected", self.call_id) from None
            raise
        self.program["phase"] = "answering"
        self.answer("answering")

    def _answer(self) -> None:
        req = self.request
        hook = self.hook(req, req["answerUrl"], "answer")
        fields: dict[str, Any] = {}
        if req.get("machineDetection") is not None:
            detected = self._detect_machine(req["machineDetection"])
            if detected is not None:
                fields["machineDetectionResult"] = detected
        doc = self.bxml_callback(self.leg, hook, "answer", fields)
        self.set_document(doc)
        self.program["phase"] = "running"

    def _detect_machine(self, config: dict[str, Any]) -> dict[str, str] | None:
        """The result to send with ``answer`` (sync), or None after scheduling
        ``machineDetectionComplete`` (async; sent while the document runs)."""
        value, seconds = amd.detect(config, self.callee)
        mode = config.get("mode") or "async"
        self.note(f"machine detection ({mode}): {value} after {seconds:g} s")
        if mode == "sync":
            self.wait(seconds)
            return amd.result(value, seconds)
        if config.get("callbackUrl"):
            due = self.later(seconds)
            self.program["amd"] = {"at": due, "value": value, "seconds": seconds}
        else:
            self.note("machine detection: no callbackUrl, machineDetectionComplete is not sent")
        return None

    def _run_program(self) -> None:
        while True:
            try:
                self.interpreter.run(self.leg, self.document())
                raise CallEnded("hangup", self.call_id)  # the end of the document
            except Interrupt as interrupt:
                pending: Interrupt | None = interrupt
                while pending is not None:  # handling one (a bridge) may bring another
                    try:
                        self._interrupted(pending)
                        pending = None
                    except Interrupt as again:
                        pending = again

    def _interrupted(self, interrupt: Interrupt) -> None:
        data = interrupt.data
        if interrupt.kind == "bridge":
            replacement = bridged_target(self, data)
            if replacement is not None:
                self.set_document(replacement)
            return
        if interrupt.kind == "bxml":
            self.note("the call's BXML was replaced (PUT .../bxml)")
            base = self.program.get("base") or self.first_url
            self.set_document(Document(data["bxml"], base))
            return
        if "tag" in data:
            self.leg.tag = data["tag"] or None
        hook = self.hook(data, data["redirectUrl"], "redirect")
        self.note("Update Call: redirect")
        self.set_document(self.bxml_callback(self.leg, hook, "redirect", {}))

    # --- the end ----------------------------------------------------------------------

    def _end(self, end: CallEnded) -> None:
        p = self.program
        if p.get("phase") != "ending":
            self.leg.end_time = time.time()
            p.update(phase="ending", **end.fields())
            self.note(f"call ended: {end.cause}" + (f" ({end.message})" if end.message else ""))
            heard.add(self, self.leg, "ended", end.cause)
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
            self.async_callback(self.leg, hook, "disconnect", **fields)
        else:
            self.note("no disconnectUrl: the disconnect event is not sent")
        finish_recording(self)  # a StartRecording still running ends with the call
        finish_transcriptions(self)
        finish_streams(self)
        self.leg.state = "disconnected"
        self.activity = "ended"
        self.driver.finish(self, p)
