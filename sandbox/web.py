"""The sandbox's two HTTP faces, as blueprints mounted under one base URL:

``{base}/api/v2/...``            the Voice API subset (Bandwidth's paths, codes and bodies)
``{base}/sandbox-control/...``   the callee's controls: a page, digits, hang-up, scripts

Inside the app ``base`` is ``/sandbox``; standalone it is the server's root.  Both check
HTTP Basic against the sandbox's API credentials.  Errors are JSON ``{type, description,
id}`` with Bandwidth's status codes.  Control POSTs need a JSON body, so a cross-site form
cannot press buttons with a browser's cached credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.exceptions import HTTPException

from sandbox.core import ApiError, Sandbox, not_found
from sandbox.errors import RateLimited
from sandbox.transcribe import transcribe

api_bp = Blueprint("sandbox_api", __name__)
control_bp = Blueprint("sandbox_control", __name__)

REALM = 'Basic realm="Bandwidth sandbox", charset="UTF-8"'
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]  # type: ignore[no-any-return]


def _error(error: ApiError) -> Response:
    reply = Response(
        json.dumps(error.body()), error.status, content_type="application/json;charset=UTF-8"
    )
    if error.status == 401:
        reply.headers["WWW-Authenticate"] = REALM
    if isinstance(error, MethodNotAllowed):
        reply.headers["Allow"] = ", ".join(error.allowed)
    if isinstance(error, RateLimited):
        reply.headers["Retry-After"] = str(error.retry_after)
    return reply


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json;charset=UTF-8")


def _check_auth() -> None:
    header = request.headers.get("Authorization", "")
    # Inside the app, wrong credentials count against the dashboard's per-address limit.
    limit = current_app.extensions.get("attempt_limit")
    if not header:
        ok: bool | None = False
    elif limit is None:  # the standalone sandbox keeps no shared counters
        ok = _credentials_ok(header)
    else:
        ok = limit("sandbox-login", lambda: _credentials_ok(header))
    if ok is None:
        raise ApiError(429, "too-many-requests", "Too many wrong credentials from your address")
    if not ok:
        raise ApiError(401, "authentication-error", "The credentials provided were invalid")


def _credentials_ok(header: str) -> bool:
    settings = _sandbox().settings
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    user, sep, password = decoded.partition(b":")
    user_ok = hmac.compare_digest(user, settings.username.encode("utf-8"))
    password_ok = hmac.compare_digest(password, settings.password.encode("utf-8"))
    return bool(sep) and user_ok and password_ok


def _json_body() -> Any:
    if request.mimetype != "application/json":
        raise ApiError(
            415, "validation", f"Content type '{request.content_type or ''}' not supported"
        )
    try:
        return json.loads(request.get_data() or b"null")
    except (ValueError, RecursionError):
        raise ApiError(400, "validation", "The request body is not valid JSON") from None


class MethodNotAllowed(ApiError):
    """405, with the ``Allow`` header naming what the resource serves."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(405, "validation", "Method Not Allowed")
        self.allowed = allowed


# Each API route declares the methods it serves.  Any other method falls through to the
# catch-all route, which answers 405 with ``Allow`` when some route serves the path, 404
# otherwise.  OPTIONS is answered before routing: Flask's own answer would count the
# catch-all's methods too.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _methods_served(path: str) -> list[str]:
    """The methods that API routes other than the catch-all serve at ``path``, and OPTIONS
    (empty when none does)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    served = []
    for method in ALL_METHODS[:-1]:
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            continue
        if current_app.view_functions[endpoint] is not unknown:
            served.append(method)
    return [*served, "OPTIONS"] if served else []


# --- the Voice API ------------------------------------------------------------------------


@api_bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return _error(error)


@api_bp.before_request
def _api_auth() -> None:
    _check_auth()


@api_bp.before_request
def _api_options() -> Response | None:
    if request.method != "OPTIONS":
        return None
    served = _methods_served(request.path)
    if not served:
        raise ApiError(404, "validation", "Not Found")
    return Response(status=200, headers={"Allow": ", ".join(served)})


def _api_prefix() -> str:
    return url_for("sandbox_api.calls", account_id="x").rsplit("/accounts/", 1)[0]


def _api_url() -> str:
    return _sandbox().settings.public_api_url or (request.host_url.rstrip("/") + _api_prefix())


@api_bp.route("/accounts/<account_id>/calls", methods=["GET", "POST"])
def calls(account_id: str) -> Response:
    if request.method == "GET":
        return _list_calls(account_id)
    body = _json_body()
    created = _sandbox().create_call(account_id, body, _api_url())
    reply = _json(created, 201)
    reply.headers["Location"] = created["callUrl"]
    return reply


@api_bp.get("/accounts/<account_id>/calls/<call_id>")
def call(account_id: str, call_id: str) -> Response:
    return _json(_sandbox().get_call(account_id, call_id))


@api_bp.post("/accounts/<account_id>/calls/<call_id>")
def update_call(account_id: str, call_id: str) -> Response:
    body = _json_body()
    _sandbox().update_call(account_id, call_id, body)
    return Response(status=200)


@api_bp.put("/accounts/<account_id>/calls/<call_id>/recording")
def call_recording_state(account_id: str, call_id: str) -> Response:
    """updateCallRecordingState: pause or resume the call's recording."""
    _sandbox().update_recording_state(account_id, call_id, _json_body())
    return Response(status=200)


@api_bp.put("/accounts/<account_id>/calls/<call_id>/bxml")
def call_bxml(account_id: str, call_id: str) -> Response:
    if request.mimetype not in ("application/xml", "text/xml"):
        raise ApiError(
            415, "validation", f"Content type '{request.content_type or ''}' not supported"
        )
    _sandbox().replace_bxml(account_id, call_id, request.get_data())
    return Response(status=204)


def _list_calls(account_id: str) -> Response:
    """listCalls; a next page is linked in ``Link: <url>; rel="next"``."""
    found, token = _sandbox().list_calls(account_id, request.args.to_dict())
    return _paged(found, token, f"/accounts/{account_id}/calls")


def _paged(found: list[dict[str, Any]], token: str | None, path: str) -> Response:
    """A page of a list, the next one (if any) linked in ``Link: <url>; rel="next"``."""
    reply = _json(found)
    if token is not None:
        query = {**request.args.to_dict(), "pageToken": token}
        reply.headers["Link"] = f'<{_api_url()}{path}?{urlencode(query)}>; rel="next"'
    return reply


# --- recordings ---------------------------------------------------------------------------

RECORDING = "/accounts/<account_id>/calls/<call_id>/recordings/<recording_id>"


@api_bp.get("/accounts/<account_id>/recordings")
def account_recordings(account_id: str) -> Response:
    return _json(_sandbox().recordings.for_account(account_id, request.args.to_dict()))


@api_bp.get("/accounts/<account_id>/calls/<call_id>/recordings")
def call_recordings(account_id: str, call_id: str) -> Response:
    return _json(_sandbox().recordings.for_call(account_id, call_id))


def _read_or_delete(read: Callable[[], Response], remove: Callable[[], None]) -> Response:
    if request.method == "DELETE":
        remove()
        return Response(status=204)
    return read()


@api_bp.route(RECORDING, methods=["GET", "DELETE"])
def recording(account_id: str, call_id: str, recording_id: str) -> Response:
    """getCallRecording, deleteRecording."""
    ids = (account_id, call_id, recording_id)
    recordings = _sandbox().recordings
    return _read_or_delete(lambda: _json(recordings.get(*ids)), lambda: recordings.delete(*ids))


@api_bp.route(RECORDING + "/media", methods=["GET", "DELETE"])
def recording_media(account_id: str, call_id: str, recording_id: str) -> Response:
    """downloadCallRecording, deleteRecordingMedia."""
    ids = (account_id, call_id, recording_id)
    recordings = _sandbox().recordings

    def download() -> Response:
        chunks, size, content_type = recordings.download(*ids)
        reply = Response(stream_with_context(chunks), 200, content_type=content_type)
        reply.headers["Content-Length"] = str(size)
        return reply

    return _read_or_delete(download, lambda: recordings.delete_media(*ids))


@api_bp.route(RECORDING + "/transcription", methods=["GET", "POST", "DELETE"])
def recording_transcription(account_id: str, call_id: str, recording_id: str) -> Response:
    """getRecordingTranscription, transcribeCallRecording, deleteRecordingTranscription."""
    ids = (account_id, call_id, recording_id)
    recordings = _sandbox().recordings
    if request.method == "POST":
        transcribe(_sandbox(), *ids, _json_body())
        return Response(status=204)
    return _read_or_delete(
        lambda: _json(recordings.transcription(*ids)),
        lambda: recordings.delete_transcription(*ids),
    )


# --- real-time transcriptions --------------------------------------------------------------


@api_bp.get("/accounts/<account_id>/calls/<call_id>/transcriptions")
def call_transcriptions(account_id: str, call_id: str) -> Response:
    """listRealTimeTranscriptions."""
    call_url = f"{_api_url()}/accounts/{account_id}/calls/{call_id}"
    return _json(_sandbox().transcriptions.for_call(account_id, call_id, call_url))


@api_bp.route(
    "/accounts/<account_id>/calls/<call_id>/transcriptions/<transcription_id>",
    methods=["GET", "DELETE"],
)
def call_transcription(account_id: str, call_id: str, transcription_id: str) -> Response:
    """getRealTimeTranscription; deleteRealTimeTranscription answers 200 with no body."""
    ids = (account_id, call_id, transcription_id)
    transcriptions = _sandbox().transcriptions
    if request.method == "DELETE":
        transcriptions.delete(*ids)
        return Response(status=200)
    return _json(transcriptions.get(*ids))


@api_bp.route("/", defaults={"rest": ""}, methods=ALL_METHODS, provide_automatic_options=False)
@api_bp.route("/<path:rest>", methods=ALL_METHODS, provide_automatic_options=False)
def unknown(rest: str) -> Response:
    served = _methods_served(request.path)
    if served:
        raise MethodNotAllowed(served)
    raise ApiError(404, "validation", "Not Found")


# --- the callee's controls ----------------------------------------------------------------


@control_bp.errorhandler(ApiError)
def _control_error(error: ApiError) -> Response:
    return _error(error)


@control_bp.before_request
def _control_auth() -> None:
    _check_auth()


@control_bp.get("/")
def page() -> Response:
    sandbox = _sandbox()
    html = render_template(
        "sandbox/index.html",
        calls=sandbox.calls(limit=30),
        calls_url=url_for("sandbox_control.list_calls"),
        inbound_url=url_for("sandbox_control.dial_in"),
        control_url=url_for("sandbox_control.page"),
        api_url=_api_url(),
        account_id=sandbox.settings.account_id,
        settings=sandbox.settings,
    )
    reply = Response(html, 200, content_type="text/html; charset=utf-8")
    reply.headers["Content-Security-Policy"] = PAGE_CSP
    reply.headers["X-Content-Type-Options"] = "nosniff"
    reply.headers["Cache-Control"] = "no-store"
    return reply


@control_bp.get("/calls")
def list_calls() -> Response:
    limit = min(max(request.args.get("limit", 30, type=int) or 30, 1), 500)
    return _json({"calls": _sandbox().calls(limit=limit)})


@control_bp.get("/calls/<call_id>")
def one_call(call_id: str) -> Response:
    found = _sandbox().call(call_id)
    if found is None:
        raise not_found(call_id)
    return _json(found)


@control_bp.get("/calls/<call_id>/transcript")
def transcript(call_id: str) -> Response:
    """What the far end of this leg heard, pressed and said, in order."""
    return _json({"callId": call_id, "transcript": _sandbox().transcript(call_id)})


@control_bp.post("/calls/<call_id>/digits")
def press(call_id: str) -> Response:
    body = _json_body()
    digits = body.get("digits") if isinstance(body, dict) else None
    _sandbox().press(call_id, digits)  # type: ignore[arg-type]
    return _json({"callId": call_id, "digits": digits}, 202)


@control_bp.post("/calls/<call_id>/speech")
def say(call_id: str) -> Response:
    body = _json_body()
    text = body.get("text") if isinstance(body, dict) else None
    _sandbox().say(call_id, text)  # type: ignore[arg-type]
    return _json({"callId": call_id, "text": text}, 202)


@control_bp.post("/calls/<call_id>/hangup")
def hang_up(call_id: str) -> Response:
    _json_body()
    _sandbox().hang_up(call_id)
    return _json({"callId": call_id, "hungUp": True}, 202)


@control_bp.route("/callees/<path:number>", methods=["PUT", "DELETE"])
def callee(number: str) -> Response:
    if request.method == "DELETE":
        _sandbox().script(number, None)
        return Response(status=204)
    _sandbox().script(number, _json_body())
    return Response(status=204)


@control_bp.post("/inbound")
def dial_in() -> Response:
    """A caller dials one of the applications' numbers: ``{"to", "from", ...}``."""
    created = _sandbox().dial_in(_json_body(), _api_url())
    return _json(created, 201)


@control_bp.get("/applications")
def list_applications() -> Response:
    return _json({"applications": _sandbox().applications()})


@control_bp.route("/applications/<application_id>", methods=["PUT", "DELETE"])
def application(application_id: str) -> Response:
    if request.method == "DELETE":
        _sandbox().delete_application(application_id)
        return Response(status=204)
    _sandbox().set_application(application_id, _json_body())
    return Response(status=204)
