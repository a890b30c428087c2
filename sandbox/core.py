"""``Sandbox``: the Voice API operations and the callee controls, over the database.

Both HTTP faces (the API blueprint, the control blueprint) and the pytest plugin call these
methods.  Each one validates, writes a row and returns: no callback is sent from here.  The
calls are executed by a ``Driver`` in background threads (this process's, or any other's
sharing the database).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from marshmallow import ValidationError

import bxml
from calls.schemas import CreateCallSchema, UpdateCallSchema
from sandbox import callee as callees
from sandbox import heard, inbound
from sandbox.catalog import Catalog
from sandbox.clock import ManualClock
from sandbox.conference_api import Conferences
from sandbox.conference_store import ConferenceStore
from sandbox.db import SandboxDB
from sandbox.delivery import Deliverer, Stats, UrlPolicy
from sandbox.driver import Driver
from sandbox.errors import ApiError, RateLimited, conflict, describe, not_found
from sandbox.listing import call_state, list_calls, summary
from sandbox.payloads import Leg, iso, new_call_id
from sandbox.recordings import Recordings, Transcriptions
from sandbox.settings import Settings

log = logging.getLogger(__name__)

URL_FIELDS = ("answerUrl", "answerFallbackUrl", "disconnectUrl")
DIGITS = re.compile(r"[0-9*#A-Da-d]{1,50}")
MASK = "*****"
STATES = ("queued", "initiated", "answered", "disconnected")


class Sandbox:
    """One sandbox: its settings, database, callback sender and (lazily) its driver."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = SandboxDB(settings.database_url)
        self.catalog = Catalog(self.db)
        self.recordings = Recordings(self.catalog, settings.account_id)
        self.transcriptions = Transcriptions(self.catalog, settings.account_id)
        self.stats = Stats()
        self.policy = UrlPolicy(settings.allowed_origins)
        self.conferences = Conferences(
            ConferenceStore(self.db), self.recordings, settings.account_id, self.policy, self._input
        )
        self._driver: Driver | None = None
        # SANDBOX_CLOCK=manual: simulated time passes only when a test advances it.
        self.clock = ManualClock() if settings.clock == "manual" else None
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._create_schema = CreateCallSchema(lenient=True)
        self._update_schema = UpdateCallSchema(lenient=True)
        self._application_schema = inbound.ApplicationSchema()
        self._dial_in_schema = inbound.DialInSchema()

    # --- the driver -------------------------------------------------------------------

    @property
    def driver(self) -> Driver:
        with self._lock:
            if self._driver is None:
                deliverer = Deliverer(
                    self.policy, challenge=self.settings.challenge, stats=self.stats
                )
                self._driver = Driver(self.settings, self.db, deliverer, self.clock)
                self._driver.add_listener(self._notify_waiters)
            return self._driver

    def start_driver(self) -> Driver | None:
        """Start executing calls in this process (unless SANDBOX_DRIVER is off)."""
        if self.settings.driver == "off":
            return None
        driver = self.driver
        driver.start()
        return driver

    def close(self, *, timeout: float = 10.0) -> None:
        """Stop the driver (leases released) and close connections."""
        with self._lock:
            driver, self._driver = self._driver, None
        if driver is not None:
            driver.stop(timeout=timeout)
            driver.deliverer.close()
        self.db.dispose()

    def _notify_waiters(self, call_id: str, state: str) -> None:
        with self._changed:
            self._changed.notify_all()

    def _poke(self) -> None:
        if self._driver is not None:
            self._driver.notify()

    # --- Voice API --------------------------------------------------------------------

    def create_call(self, account_id: str, body: Any, api_url: str) -> dict[str, Any]:
        """Validate and queue a call; the 201 body (section 1.4)."""
        self._check_account(account_id)
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "The request body must be a JSON object")
        try:
            self._create_schema.load(body)
        except ValidationError as error:
            raise ApiError(400, "validation", describe(error)) from None
        for name in URL_FIELDS:
            if body.get(name):
                problem = self.policy.problem(body[name])
                if problem:
                    raise ApiError(400, "validation", f"Invalid {name}: {problem}")
        call_id = new_call_id()
        call_url = f"{api_url.rstrip('/')}/accounts/{account_id}/calls/{call_id}"
        leg = Leg(
            call_id=call_id,
            account_id=account_id,
            application_id=body["applicationId"],
            from_=body["from"],
            to=body["to"],
            call_url=call_url,
            enqueued_time=time.time(),
            tag=body.get("tag") or None,
        )
        self._queue(leg, body, "created (queued)")
        return self._created_body(body, leg)

    def _queue(self, leg: Leg, request: dict[str, Any], note: str) -> None:
        """Store a new call for a driver to run, and wake this process's driver."""
        if self.clock is not None and self.settings.driver != "off":
            self.clock.queued(leg.call_id)
        now = time.time()
        limited = self.db.insert_call_within_limits(
            {
                "call_id": leg.call_id,
                "account_id": leg.account_id,
                "parent_call_id": None,
                "created_at": now,
                "updated_at": now,
                "state": "queued",
                "active": 1,
                "to_number": leg.to,
                "from_number": leg.from_,
                "request": request,
                "leg": leg.to_dict(),
                "activity": "queued",
                "log": [[round(now, 3), note]],
                "program": {"phase": "queued"},
                "input_seen": 0,
            },
            per_second=self.settings.calls_per_second,
            concurrent=self.settings.concurrent_calls,
        )
        if limited is not None:
            if self.clock is not None:
                self.clock.not_queued(leg.call_id)
            raise RateLimited(
                RateLimited.CPS if limited == "per-second" else RateLimited.CONCURRENT
            )
        if self.settings.driver != "off":
            self.start_driver()
            self._poke()

    # --- inbound calls ----------------------------------------------------------------

    def set_application(self, application_id: str, body: Any) -> None:
        """Create or replace a Voice application (where inbound calls' events go)."""
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "The request body must be a JSON object")
        if not application_id or len(application_id) > 128:
            raise ApiError(400, "validation", "Invalid applicationId: 1-128 characters")
        try:
            self._application_schema.load(body)
        except ValidationError as error:
            raise ApiError(400, "validation", describe(error, required=())) from None
        for name in (
            "callInitiatedCallbackUrl",
            "callInitiatedFallbackUrl",
            "callStatusCallbackUrl",
        ):
            if body.get(name):
                problem = self.policy.problem(body[name])
                if problem:
                    raise ApiError(400, "validation", f"Invalid {name}: {problem}")
        config = {k: v for k, v in body.items() if k != "numbers" and v is not None}
        self.catalog.set_application(
            application_id, config, list(dict.fromkeys(body.get("numbers") or []))
        )

    def applications(self) -> list[dict[str, Any]]:
        """Every application with its numbers (passwords masked)."""
        found = []
        for application_id, config, owned in self.catalog.list_applications():
            shown = dict(config)
            for key in ("callbackCreds", "callInitiatedFallbackCreds"):
                if isinstance(shown.get(key), dict):
                    shown[key] = {**shown[key], "password": MASK}
            found.append({"applicationId": application_id, **shown, "numbers": owned})
        return found

    def delete_application(self, application_id: str) -> None:
        if not self.catalog.delete_application(application_id):
            raise ApiError(404, "validation", f"Application [{application_id}] not found")

    def dial_in(self, body: Any, api_url: str) -> dict[str, Any]:
        """A caller dials ``to``: the call goes to the application owning that number (or
        the default one) and starts with ``initiate``; 201 body: its callId and where."""
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "The request body must be a JSON object")
        try:
            self._dial_in_schema.load(body)
        except ValidationError as error:
            raise ApiError(400, "validation", describe(error, required=())) from None
        found = self.catalog.application_for(body["to"])
        if found is None and self.settings.default_application is not None:
            found = (self.settings.default_application_id, self.settings.default_application)
        if found is None:
            raise ApiError(
                404,
                "validation",
                f"No Voice application has the number {body['to']}: "
                "PUT .../sandbox-control/applications/{applicationId} with its numbers",
            )
        application_id, config = found
        request = inbound.call_request(application_id, config, body)
        account_id = self.settings.account_id
        call_id = new_call_id()
        leg = Leg(
            call_id=call_id,
            account_id=account_id,
            application_id=application_id,
            from_=body["from"],
            to=body["to"],
            call_url=f"{api_url.rstrip('/')}/accounts/{account_id}/calls/{call_id}",
            direction="inbound",
        )
        self._queue(leg, request, f"inbound call from {leg.from_} (queued)")
        return {
            "callId": call_id,
            "applicationId": application_id,
            "to": leg.to,
            "from": leg.from_,
            "direction": "inbound",
            "callUrl": leg.call_url,
            "callInitiatedCallbackUrl": request["initiateUrl"],
        }

    @staticmethod
    def _created_body(body: dict[str, Any], leg: Leg) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "applicationId": leg.application_id,
            "accountId": leg.account_id,
            "callId": leg.call_id,
            "to": leg.to,
            "from": leg.from_,
            "enqueuedTime": iso(leg.enqueued_time),
            "callUrl": leg.call_url,
            "callTimeout": body.get("callTimeout", 30),
            "callbackTimeout": body.get("callbackTimeout", 15),
            "tag": body.get("tag"),
            "answerMethod": body.get("answerMethod") or "POST",
            "answerUrl": body["answerUrl"],
            "answerFallbackMethod": body.get("answerFallbackMethod") or "POST",
            "answerFallbackUrl": body.get("answerFallbackUrl"),
            "disconnectMethod": body.get("disconnectMethod") or "POST",
            "disconnectUrl": body.get("disconnectUrl"),
            "username": body.get("username"),
            "password": MASK if body.get("password") else None,
            "fallbackUsername": body.get("fallbackUsername"),
            "fallbackPassword": MASK if body.get("fallbackPassword") else None,
            "priority": body.get("priority", 5),
        }
        return {key: value for key, value in reply.items() if value is not None}

    def get_call(self, account_id: str, call_id: str) -> dict[str, Any]:
        """Get Call State (section 1.6)."""
        self._check_account(account_id)
        row = self._row(account_id, call_id)
        return call_state(row)

    def list_calls(self, account_id: str, args: dict[str, str]) -> tuple[list[dict], str | None]:
        """listCalls: a page of the account's calls and the next page's token, if any."""
        self._check_account(account_id)
        return list_calls(self.catalog, account_id, args)

    def update_call(self, account_id: str, call_id: str, body: Any) -> None:
        """Update Call: hang up / cancel, or redirect (with an optional new tag)."""
        self._check_account(account_id)
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "The request body must be a JSON object")
        try:
            data = self._update_schema.load(body)
        except ValidationError as error:
            raise ApiError(400, "validation", describe(error)) from None
        row = self._row(account_id, call_id)
        if not row["active"] or row["state"] == "disconnected":
            raise conflict(call_id)
        if str(row["activity"] or "").startswith("Forward"):
            # The app gave up control of a forwarded call.
            raise conflict(call_id)
        if data["state"] == "completed":
            self._input(call_id, "complete", {})
            return
        if row["state"] != "answered" or row["parent_call_id"]:
            # Unanswered calls cannot be redirected; B-legs are driven by their Transfer.
            raise conflict(call_id)
        for name in ("redirectUrl", "redirectFallbackUrl"):
            if body.get(name):
                problem = self.policy.problem(body[name])
                if problem:
                    raise ApiError(400, "validation", f"Invalid {name}: {problem}")
        redirect = {k: v for k, v in body.items() if k != "state" and v is not None}
        if "tag" in body:
            redirect["tag"] = body["tag"] or ""
        self._input(call_id, "redirect", redirect)

    def update_recording_state(self, account_id: str, call_id: str, body: Any) -> None:
        """Update Call Recording State: ``{"state": "paused"|"recording"}`` pauses or resumes
        the call's StartRecording (nothing happens when none is running)."""
        self._check_account(account_id)
        state = body.get("state") if isinstance(body, dict) else None
        if state not in ("paused", "recording") or set(body) != {"state"}:
            raise ApiError(400, "validation", "Invalid state: must be paused or recording")
        row = self._row(account_id, call_id)
        if not row["active"] or row["state"] != "answered":
            raise conflict(call_id)
        self._input(call_id, "recording", {"state": state})

    def replace_bxml(self, account_id: str, call_id: str, document: bytes) -> None:
        """Update Call BXML: ``<Bxml>`` or ``<Response>`` replaces what the call runs."""
        self._check_account(account_id)
        row = self._row(account_id, call_id)
        if not row["active"] or row["state"] != "answered" or row["parent_call_id"]:
            raise conflict(call_id)
        try:
            text = document.decode("utf-8-sig")
            bxml.parse(text)
        except UnicodeDecodeError:
            raise ApiError(400, "validation", "The BXML document is not UTF-8") from None
        except bxml.BxmlError as exc:
            raise ApiError(400, "validation", f"Invalid BXML: {exc}") from None
        self._input(call_id, "bxml", {"bxml": text})

    def _check_account(self, account_id: str) -> None:
        if account_id != self.settings.account_id:
            raise ApiError(403, "authorization-error", "Access is denied")

    def _row(self, account_id: str, call_id: str) -> dict[str, Any]:
        row = self.db.get_call(call_id) if len(call_id) <= 128 else None
        if row is None or row["account_id"] != account_id:
            raise not_found(call_id)
        return row

    def _input(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        input_id = self.db.add_input(call_id, kind, data)
        if self.clock is not None and self._driver is not None:
            # The manual clock's one driver runs here: the call takes it at once (the
            # driver's own pass over the table hands it over again, and it is ignored).
            self._driver.hand_over({"id": input_id, "call_id": call_id, "kind": kind, "data": data})
        self._poke()

    # --- the callee -------------------------------------------------------------------

    def press(self, call_id: str, digits: str) -> None:
        """The callee presses ``digits`` (0-9, *, #, A-D) on an active call."""
        if not isinstance(digits, str) or not DIGITS.fullmatch(digits):
            raise ApiError(400, "validation", "digits must be 1-50 of 0-9, *, #, A-D")
        row = self.db.get_call(call_id)
        if row is None:
            raise not_found(call_id)
        if not row["active"]:
            raise conflict(call_id)
        self._input(call_id, "digits", {"digits": digits})

    def say(self, call_id: str, text: str) -> None:
        """The callee says ``text``: a Record listening now ends with it as what was said
        (and transcribed); otherwise it is kept for the next Record of that leg."""
        if not isinstance(text, str) or not 1 <= len(text) <= 4096 or not text.strip():
            raise ApiError(400, "validation", "text must be 1-4096 characters")
        row = self.db.get_call(call_id)
        if row is None:
            raise not_found(call_id)
        if not row["active"]:
            raise conflict(call_id)
        self._input(call_id, "speech", {"text": text})

    def hang_up(self, call_id: str) -> None:
        """The callee hangs up (declines, while it rings)."""
        row = self.db.get_call(call_id)
        if row is None:
            raise not_found(call_id)
        if not row["active"]:
            raise conflict(call_id)
        self._input(call_id, "hangup", {})

    def script(self, number: str, script: dict[str, Any] | None) -> None:
        """Register (or with None remove) the callee script of one number."""
        if script is None:
            self.db.delete_callee(number)
            return
        try:
            callees.from_json(script)
        except callees.ScriptError as exc:
            raise ApiError(400, "validation", str(exc)) from None
        self.db.set_callee(number, script)

    # --- reading ----------------------------------------------------------------------

    def calls(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent calls (both legs), newest first, with their log and transcript."""
        rows = self.db.list_calls(limit=limit)
        programs = {row["call_id"]: row["program"] for row in rows}
        return [summary(row, self._transcript(row, programs)) for row in rows]

    def call(self, call_id: str, *, log: bool = True) -> dict[str, Any] | None:
        """One call's summary (``log=False``: without its log, cheaper to read often)."""
        row = self.db.get_call(call_id)
        return None if row is None else summary(row, self._transcript(row), log=log)

    def legs(self, call_id: str) -> list[dict[str, Any]]:
        """The other legs of call ``call_id`` (a Transfer's), oldest first, without logs."""
        rows = self.db.legs_of(call_id)
        return [summary(row, [], log=False) for row in rows]

    def transcript(self, call_id: str) -> list[dict[str, Any]]:
        """What the far end of leg ``call_id`` heard, pressed and said, in order (see
        ``sandbox.heard``); raises ApiError 404 for an unknown call."""
        row = self.db.get_call(call_id) if len(call_id) <= 128 else None
        if row is None:
            raise not_found(call_id)
        return self._transcript(row)

    def _transcript(
        self, row: dict[str, Any], programs: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """A leg's entries: kept in its own row (an A-leg) or its A-leg's (a B-leg)."""
        parent = row["parent_call_id"]
        if not parent:
            return heard.transcript_of(row["program"], row["call_id"])
        if programs is not None and parent in programs:
            return heard.transcript_of(programs[parent], row["call_id"])
        parent_row = self.db.get_call(parent)
        program = parent_row["program"] if parent_row is not None else None
        return heard.transcript_of(program, row["call_id"])

    # --- the manual clock (SANDBOX_CLOCK=manual) ---------------------------------------

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every call this process runs waits for an input or the clock (none
        is sending a callback or running a verb) and no input or new call is pending."""
        clock = self._manual_clock()

        def nothing_pending() -> bool:
            driver = self._driver
            if driver is None or not driver.undelivered(self.db.max_input_id()):
                return True
            self._poke()
            return False

        clock.wait_settled(timeout, nothing_pending)

    def advance(self, seconds: float, *, timeout: float = 30.0) -> None:
        """Let ``seconds`` of simulated time pass, one deadline at a time: the calls due
        at each moment run (callbacks, next verbs) before time moves on."""
        self._manual_clock().advance(seconds, lambda: self.settle(timeout))

    def _manual_clock(self) -> ManualClock:
        if self.clock is None:
            raise RuntimeError("the sandbox runs on the real clock (set SANDBOX_CLOCK=manual)")
        return self.clock

    def wait_for(self, call_id: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the call reaches ``state`` (or a later one); its summary."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        deadline = time.monotonic() + timeout
        wanted = STATES.index(state)
        while True:
            found = self.call(call_id)
            if found is not None and STATES.index(found["state"]) >= wanted:
                if state != "disconnected" or not found["active"]:
                    return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                now = found["state"] if found else "unknown"
                raise TimeoutError(f"call {call_id} did not reach {state!r} (it is {now!r})")
            with self._changed:
                self._changed.wait(min(remaining, 0.1))
