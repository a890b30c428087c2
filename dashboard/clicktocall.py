"""Click-to-call: a public page where a visitor asks to be called and connected to an agent.

``GET  /click-to-call``                          the form (one field: the visitor's number)
``POST /click-to-call``                          place the call; 303 to its progress page
``GET  /click-to-call/calls/<token>``            the progress page (polls the endpoint below)
``GET  /click-to-call/calls/<token>/status``     ``{"state", "cause", "reached", "message",
                                                 "askAgainIn"}``, no numbers

The app calls the visitor (``calls.outbound.place_call`` with ``flow="click-to-call"`` and
state ``{"visitor": <token>}`` in the signed tag); on answer, ``dashboard.clicktocall_flow``
transfers them to CLICK_TO_CALL_AGENT.  Every URL Bandwidth gets comes from configuration
(PUBLIC_BASE_URL), never from the form; a form field other than the number (and the CSRF
token) is refused with 422 naming it.

Before a call is placed, in this order (see ``dashboard.phone`` and ``dashboard.limits``):
the CSRF token (400), the fields (422), the number policy (422), the per-address rate
(CLICK_TO_CALL_RATE_PER_ADDRESS, 429), the per-number cooldown
(CLICK_TO_CALL_DESTINATION_COOLDOWN, 429) and the total rate (CLICK_TO_CALL_RATE_TOTAL,
429).  Counters are in the store, shared by every worker and server.

The token is random (128 bits) and kept in the visitor's session, which maps it to the
outbound attempt; another session asking for it gets 404.  The state comes from the store:

``queued``     the attempt is recorded and Bandwidth accepted it (or has not answered yet);
               Bandwidth sends no callback while the phone rings, so "ringing" is not
               observable and the page says "calling your phone" for this whole stretch
``answered``   the visitor's ``answer`` callback arrived (they hear the connecting message)
``connected``  the agent leg's ``transferAnswer`` is stored (Bandwidth sends it with the
               agent leg's callId and the visitor's as ``parentCallId``), or a
               ``transferComplete`` under the visitor's callId
``ended``      the visitor's ``disconnect`` arrived; ``cause`` is its cause
``failed``     Bandwidth refused the call; ``cause`` is the attempt's outcome
``unknown``    the create-call request's outcome is unknown (timeout); the call may still come

The page shows only the steps the call reached (``reached``: a busy call was never answered)
and ends with a sentence for the visitor (:func:`visitor_message`), never a cause code,
that says when they can ask for another call (``askAgainIn``: seconds left of the number's
cooldown, 0 once they can; null while the call is not over).  "Ask for another call" is
offered only then.

Limits are spent when the call is asked for, and the per-address rate and the number's
cooldown are given back when the Voice API did not accept the call (unreachable, 4xx, 503,
refused by the schema): nobody was called.  A placement whose outcome is unknown (sent,
then no usable answer) keeps them, since the phone may ring.  The total rate is never
given back: it bounds the requests this app sends, which happened.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import StringField

import config
from calls import OutcomeUnknown, TemporaryFailure, VoiceApiError
from calls.outbound import place_call
from dashboard import limits, phone
from dashboard.settings import number, rates
from monitoring import count_click_to_call
from store import StoreUnavailable, get_store

bp = Blueprint("click_to_call", __name__, url_prefix="/click-to-call")
log = logging.getLogger(__name__)

FIELDS = frozenset({"number", "csrf_token"})
SESSION_KEY = "click_to_call"
KEEP_CALLS = 5  # progress pages a session can follow
FAILED_OUTCOMES = frozenset({"failed", "rejected", "rate_limited", "unavailable"})
FINAL_STATES = frozenset({"ended", "failed"})
RANK = {"queued": 0, "answered": 1, "connected": 2}


class ClickToCallForm(FlaskForm):
    number = StringField("Your phone number")


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(form: ClickToCallForm, status: int = 200, error: str | None = None, **extra: Any) -> Any:
    available = config.click_to_call_agent(current_app.config) is not None
    page = render_template(
        "click_to_call/form.html", form=form, error=error, available=available, **extra
    )
    response = Response(page, status)
    if "retry_after" in extra:
        response.headers["Retry-After"] = str(extra["retry_after"])
    return response


@bp.get("")
def form() -> Any:
    return _page(ClickToCallForm())


@bp.post("")
def request_call() -> Any:
    form = ClickToCallForm()
    unknown = sorted((set(request.form) | set(request.args) | set(request.files)) - FIELDS)
    if unknown:
        count_click_to_call("refusal", "fields")
        return _page(form, 422, f"Unknown field(s): {', '.join(unknown)}.")
    cfg = current_app.config
    agent = config.click_to_call_agent(cfg)
    if not agent:
        count_click_to_call("refusal", "unavailable")
        return _page(form, 503, "Click-to-call is not available right now.")
    try:
        api = config.voice_api(cfg)
        allowed = phone.regions(cfg.get("CLICK_TO_CALL_COUNTRIES") or "US,CA")
        to = phone.normalise(form.number.data, allowed, never=(agent, api["from_number"]))
    except phone.NumberRefused as exc:
        count_click_to_call("refusal", "number")
        return _page(form, 422, str(exc))
    except config.ConfigError:
        log.exception("click-to-call is not configured")
        count_click_to_call("refusal", "unavailable")
        return _page(form, 503, "Click-to-call is not available right now.")

    receipt: limits.Receipt = []
    try:
        refusal = _over_limit(to, receipt)
    except StoreUnavailable:
        count_click_to_call("refusal", "unavailable")
        return _page(form, 503, "Click-to-call is not available right now. Try again shortly.")
    if refusal is not None:
        message, retry_after = refusal
        return _page(form, 429, message, retry_after=retry_after)

    token = secrets.token_urlsafe(16)
    try:
        body = place_call(to=to, flow="click-to-call", state={"visitor": token})
        attempt = body["attemptId"]
        count_click_to_call("placement", "placed")
    except ValidationError:
        log.exception("click-to-call request refused by the create-call schema")
        count_click_to_call("placement", "invalid")
        _give_back(receipt)
        return _page(form, 422, "That number cannot be called.")
    except OutcomeUnknown as exc:
        # The call may exist: follow the attempt; a callback carrying its id settles it,
        # and until then the progress page says "unknown".
        attempt = getattr(exc, "attempt_id", None)
        log.warning("click-to-call outcome unknown: %s", exc)
        count_click_to_call("placement", "unknown")
    except TemporaryFailure as exc:
        log.warning("click-to-call not placed: %s", exc)
        count_click_to_call("placement", "temporary-failure")
        _give_back(receipt)
        return _page(form, 503, "We cannot place calls right now. Please try again in a minute.")
    except (VoiceApiError, StoreUnavailable, config.ConfigError) as exc:
        log.error("click-to-call not placed: %s", exc)
        count_click_to_call("placement", "failed")
        if not getattr(exc, "call_may_exist", False):
            _give_back(receipt)
        return _page(form, 503, "We could not place the call. Please try again later.")
    _remember(token, attempt)
    return redirect(url_for(".progress", token=token), code=303)


def _give_back(receipt: limits.Receipt) -> None:
    """The call was not placed: the visitor's and the number's limits are as before."""
    try:
        limits.refund(get_store(), receipt)
    except StoreUnavailable:
        log.warning("could not give back the click-to-call limits of a call not placed")


def _over_limit(to: str, receipt: limits.Receipt) -> tuple[str, int] | None:
    """A visitor-facing refusal and its Retry-After, or None when the call may be placed.
    ``receipt`` gets the hits that can be given back (per address, cooldown)."""
    store = get_store()
    per_address = rates("CLICK_TO_CALL_RATE_PER_ADDRESS")
    address = limits.client_key(request.remote_addr)
    if not limits.allow(store, f"c2c:address:{address}", per_address, receipt):
        count_click_to_call("refusal", "rate-per-address")
        return (
            "You have asked for too many calls. Please try again later.",
            limits.retry_after(per_address),
        )
    cooldown = number("CLICK_TO_CALL_DESTINATION_COOLDOWN")
    if not limits.cooldown(store, f"c2c:to:{to}", cooldown, receipt):
        count_click_to_call("refusal", "cooldown")
        return (
            "We called this number a moment ago. Please wait a few minutes before asking again.",
            cooldown,
        )
    total = rates("CLICK_TO_CALL_RATE_TOTAL")
    if not limits.allow(store, "c2c:total", total):
        count_click_to_call("refusal", "rate-total")
        limits.refund(store, receipt)  # refused: not asked for
        return (
            "We are handling too many call requests right now. Please try again later.",
            limits.retry_after(total),
        )
    return None


def _remember(token: str, attempt: str | None) -> None:
    """Keep [token, attempt id] pairs, newest last (a list: the session's JSON sorts keys)."""
    calls = [pair for pair in session.get(SESSION_KEY) or [] if isinstance(pair, list)]
    session[SESSION_KEY] = [*calls, [token, attempt]][-KEEP_CALLS:]


def _attempt_for(token: str) -> str | None:
    """The attempt id behind ``token`` if this session asked for that call; 404 otherwise."""
    for pair in session.get(SESSION_KEY) or []:
        if isinstance(pair, list) and len(pair) == 2 and pair[0] == token:
            return pair[1]  # type: ignore[no-any-return]
    abort(404)


def progress_of(store: Any, attempt_id: str | None) -> tuple[str, str | None]:
    """(state, cause) of a click-to-call attempt, from the store (see the module docstring)."""
    state, cause, _reached = progress_detail(store, attempt_id)
    return state, cause


def progress_detail(store: Any, attempt_id: str | None) -> tuple[str, str | None, str | None]:
    """(state, cause, the furthest step reached: queued, answered, connected or None)."""
    if attempt_id is None:
        return "unknown", None, None
    attempt = store.outbound_attempt(attempt_id)
    if attempt is None:
        return "queued", None, "queued"
    outcome = attempt.get("outcome")
    if outcome in FAILED_OUTCOMES:
        return "failed", str(outcome), None
    call_id = attempt.get("call_id")
    if not call_id:
        return ("unknown", None, None) if outcome == "unknown" else ("queued", None, "queued")
    reached = "queued"
    legs = [
        e for e in store.events_for_parent_call(call_id) if e.get("event_type") == "transferAnswer"
    ]
    ended: str | None = None
    for event in [*store.events_for_call(call_id), *legs]:
        kind = event.get("event_type")
        if kind == "disconnect":
            ended = event.get("cause") or "unknown"
            continue
        if kind == "answer":
            step = "answered"
        elif kind in ("transferAnswer", "transferComplete"):
            step = "connected"
        else:
            continue
        if RANK[step] > RANK[reached]:
            reached = step
    if ended is not None:
        return "ended", ended, reached
    return reached, None, reached


# What the visitor reads when the call is over, by cause (any other cause: our side failed).
# When they can ask again follows (:func:`ask_again`): the number's cooldown still runs.
ENDED_MESSAGES = {
    "busy": "Your line was busy, so the call did not go through.",
    "timeout": "Your phone rang but nobody answered.",
    "rejected": "Your phone declined the call.",
    "cancel": "The call was cancelled before you answered.",
    "account-limit": "We cannot place calls right now.",
    "node-capacity-exceeded": "We cannot place calls right now.",
}
FAILED_MESSAGES = {
    "rate_limited": "We are placing too many calls right now. Please try again in a few minutes.",
    "unavailable": "We cannot place calls right now. Please try again in a few minutes.",
}
OUR_FAULT = "Something went wrong on our side and the call ended. Sorry."


def visitor_message(
    state: str, cause: str | None, reached: str | None, wait: int | None = None
) -> str:
    """The sentence that tells the visitor where their call is, or how it ended (then, with
    ``wait``, when they can ask for another call).  The steps list already names each step:
    the sentence says what happens next, not the step again."""
    if state == "queued":
        return "Your phone should ring in a moment: answer it to talk to an agent."
    if state == "answered":
        return "Please hold: we are connecting you to an agent…"
    if state == "connected":
        return "You are on the line with our agent."
    if state == "failed":
        return FAILED_MESSAGES.get(
            cause or "", "We could not place the call. Please try again later."
        )
    if state == "ended":
        if cause == "hangup":
            if reached == "connected":
                text = "Your call with our agent has ended. Thank you for calling."
            elif reached == "answered":
                text = "The call ended before an agent joined."
            else:
                text = "The call ended before you answered."
        else:
            text = ENDED_MESSAGES.get(cause or "", OUR_FAULT)
        return f"{text} {ask_again(wait)}" if wait is not None else text
    return "We are not sure the call went through. If your phone rings, answer it."


def ask_again(wait: int) -> str:
    """When another call to the same number can be asked for."""
    if wait <= 0:
        return "You can ask for another call now."
    minutes = -(-wait // 60)
    return f"You can ask for another call in {minutes} minute{'s' if minutes != 1 else ''}."


def ask_again_in(store: Any, attempt_id: str | None, state: str) -> int | None:
    """Seconds until the number's cooldown lets the visitor ask again once the call is over
    (0: now), None while it is not.  A call not placed gave the cooldown back."""
    if state not in FINAL_STATES:
        return None
    if state == "failed" or attempt_id is None:
        return 0
    attempt = store.outbound_attempt(attempt_id)
    if attempt is None:
        return 0
    # The cooldown started just before the attempt was recorded: this errs long, never short.
    ends = float(attempt["created_at"]) + number("CLICK_TO_CALL_DESTINATION_COOLDOWN")
    return max(0, math.ceil(ends - time.time()))


def _progress(token: str) -> dict[str, Any]:
    attempt = _attempt_for(token)
    store = get_store()
    state, cause, reached = progress_detail(store, attempt)
    wait = ask_again_in(store, attempt, state)
    return {
        "state": state,
        "cause": cause,
        "reached": reached,
        "message": visitor_message(state, cause, reached, wait),
        "askAgainIn": wait,
    }


@bp.get("/calls/<token>")
def progress(token: str) -> Any:
    found = _progress(token)
    return render_template(
        "click_to_call/progress.html",
        state=found["state"],
        cause=found["cause"],
        reached=found["reached"],
        message=found["message"],
        ask_again_in=found["askAgainIn"],
        final=found["state"] in FINAL_STATES,
        status_url=url_for(".status", token=token),
    )


@bp.get("/calls/<token>/status")
def status(token: str) -> Response:
    return jsonify(_progress(token))
