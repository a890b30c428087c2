"""App-wide browser security: CSRF, response headers, session cookie flags.

- Flask-WTF ``CSRFProtect`` checks every POST/PUT/PATCH/DELETE of the app, except the
  blueprints whose callers are machines that cannot send a token: ``callbacks`` (Bandwidth),
  ``api`` (scripts with HTTP Basic; GET only) and every blueprint whose name starts with
  ``sandbox`` (the sandbox's Voice API and its callbacks).  The exemptions are looked up by
  name at the first request, so they hold whatever the order the blueprints are registered
  in.  A failed check answers 400 with a page that says to reload the form.
- Every response gets (unless the view set its own): a Content-Security-Policy without
  inline scripts or styles (``default-src 'self'``; scripts and styles come from /static),
  ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``, ``X-Content-Type-Options:
  nosniff`` and ``Referrer-Policy: same-origin`` (same-origin, not no-referrer: Flask-WTF's
  HTTPS check needs the Referer of our own forms).
- The session cookie is HttpOnly, SameSite=Lax, and Secure when PUBLIC_BASE_URL is https.
- Callback replies (machine to machine, the hot path) get no page headers and no session,
  and the session cookie's signing serializer is built once per process instead of once
  per request.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

CSRF_EXEMPT = ("callbacks", "api")
CSRF_EXEMPT_PREFIX = "sandbox"
CALLBACK_PATH = "/callbacks/"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    cfg = app.config
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    if not cfg.get("SESSION_COOKIE_SAMESITE"):
        cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    if str(cfg.get("PUBLIC_BASE_URL") or "").lower().startswith("https://"):
        cfg["SESSION_COOKIE_SECURE"] = True

    exempted = False

    # Registered before CSRFProtect's own hook, so it runs first.
    @app.before_request
    def _exempt_machine_callers() -> None:
        nonlocal exempted
        if exempted:
            return
        for name, blueprint in list(app.blueprints.items()):
            if name in CSRF_EXEMPT or name.split(".")[0].startswith(CSRF_EXEMPT_PREFIX):
                csrf.exempt(blueprint)
        exempted = True

    app.session_interface = CachedSerializerSessionInterface()
    csrf.init_app(app)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.after_request(_security_headers)


class CachedSerializerSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the serializer made once instead of per request.

    Bandwidth's callbacks carry no cookie and their handlers have no use for a session:
    they get Flask's null session, so the hot path neither parses nor writes a cookie.
    """

    def open_session(self, app: Flask, request: Any) -> Any:
        if request.path.startswith(CALLBACK_PATH):
            return None  # Flask then uses make_null_session()
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> Any:
        serializer = app.extensions.get("session_serializer")
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            app.extensions["session_serializer"] = serializer
        return serializer


def _security_headers(response: Response) -> Response:
    if request.blueprint == "callbacks":
        return response
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    message = (
        "This form has expired or was not sent from this site. "
        "Go back, reload the page and try again."
    )
    return render_template("dashboard/error.html", title="Form expired", message=message), 400
