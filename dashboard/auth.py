"""Dashboard login: a session for people, HTTP Basic for scripts on the JSON API.

One operator account, ``DASHBOARD_USERNAME``/``DASHBOARD_PASSWORD``.  Both ways compare the
credentials with ``callbacks.auth.verify_basic``: bytes, constant time, both halves always
compared.  A failed login says only that the username or password is wrong.

The session holds the username, a fingerprint of the configured credentials (changing the
password ends every session), the login time (a login lasts DASHBOARD_SESSION_SECONDS) and a
random login id.  The store keeps a row per login id (``operator_sessions``): logging out
revokes it, so a copy of the cookie taken before stops working at once; "log out
everywhere" revokes every login.

Credential checks are limited per client address (DASHBOARD_LOGIN_RATE), in the store so
that every worker and server shares the count: every wrong try counts, on the login form
(a form that does not validate included) and as HTTP Basic on the API.  Once an address is
over the limit, its requests get 429 before any password is compared, the right one
included.  Right tries do not count: operators may log in and scripts may poll as often as
they like.  (Wrong tries sent at the same instant can pass the check together, so a burst
gets at most a few more tries than the limit: about one per thread.)

Routes: ``GET/POST /dashboard/login``, ``POST /dashboard/logout``,
``POST /dashboard/logout-everywhere``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from callbacks.auth import CredentialError, encode_pairs, verify_basic
from dashboard import limits
from dashboard.limits import TooManyAttempts
from dashboard.settings import number, rates
from store import StoreUnavailable, get_store

bp = Blueprint("dashboard_auth", __name__, url_prefix="/dashboard")

SESSION_KEYS = ("operator", "operator_key", "login_at", "login_id")


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired(), Length(max=200)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1000)])


def _pairs() -> list[tuple[bytes, bytes]]:
    cfg = current_app.config
    return encode_pairs([(cfg["DASHBOARD_USERNAME"], cfg["DASHBOARD_PASSWORD"])])


def basic_auth_ok(header: str | None) -> bool:
    """True when ``header`` carries the dashboard credentials (HTTP Basic)."""
    try:
        verify_basic(header, _pairs())
    except CredentialError:
        return False
    return True


def credentials_ok(username: str, password: str) -> bool:
    """The login form's check: the same comparison as the API's Basic check."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return basic_auth_ok(f"Basic {token}")


def _fingerprint() -> str:
    """Changes when the username, password or secret key changes (ending old sessions)."""
    cfg = current_app.config
    message = f"{cfg['DASHBOARD_USERNAME']}\x00{cfg['DASHBOARD_PASSWORD']}".encode()
    return hmac.new(str(cfg["SECRET_KEY"]).encode(), message, hashlib.sha256).hexdigest()


def _login_hash(login_id: str) -> str:
    """What the store keeps of a login id: a copy of the table opens no session."""
    return hashlib.sha256(login_id.encode()).hexdigest()


def logged_in() -> bool:
    """True when the session belongs to a current, unrevoked login.

    Raises StoreUnavailable when the store cannot say (the callers answer 503).
    """
    key = session.get("operator_key")
    login_at = session.get("login_at")
    login_id = session.get("login_id")
    if not isinstance(key, str) or not isinstance(login_at, int | float):
        return False
    if not isinstance(login_id, str):
        return False
    if time.time() - login_at > number("DASHBOARD_SESSION_SECONDS"):
        return False
    if not hmac.compare_digest(key, _fingerprint()):
        return False
    return get_store().session_active(_login_hash(login_id))


def limit_attempts(scope: str, check: Callable[[], bool]) -> bool | None:
    """Run a credential ``check`` under the per-address limit of DASHBOARD_LOGIN_RATE.

    True for right credentials, False for wrong ones, None when the address is over the
    limit (then nothing is compared) or this wrong try took it over.  ``scope`` names the
    count ("login" is the dashboard's: the form and the API's HTTP Basic).  The app hands
    this to other parts as ``app.extensions["attempt_limit"]`` (the in-app sandbox).
    """
    key = f"{scope}:" + limits.client_key(request.remote_addr)
    try:
        return limits.limited_check(
            get_store(),
            key,
            rates("DASHBOARD_LOGIN_RATE"),
            check,
            unavailable=(StoreUnavailable,),  # as the login form: an outage locks nobody out
        )
    except TooManyAttempts:
        return None


def check_basic(header: str) -> bool | None:
    """The API's HTTP Basic check, counted with the login form's tries (see limit_attempts)."""
    return limit_attempts("login", lambda: basic_auth_ok(header))


def attempts_retry_after() -> int:
    """Seconds until an address over DASHBOARD_LOGIN_RATE may try again."""
    return limits.retry_after(rates("DASHBOARD_LOGIN_RATE"))


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //evil.example)."""
    default = url_for("dashboard.disconnects")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return default  # a control character cannot go in a Location header
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "POST":
        valid = form.validate_on_submit()
        right = limit_attempts(
            "login", lambda: valid and credentials_ok(form.username.data, form.password.data)
        )
        if right is None:
            message = "Too many login attempts from your address. Wait a few minutes."
            return render_template("dashboard/login.html", form=form, error=message), 429
        if right:
            login_id = secrets.token_urlsafe(32)
            now = time.time()
            expires_at = now + number("DASHBOARD_SESSION_SECONDS")
            get_store().start_session(_login_hash(login_id), form.username.data, expires_at)
            session.clear()
            session["operator"] = form.username.data
            session["operator_key"] = _fingerprint()
            session["login_at"] = now
            session["login_id"] = login_id
            return redirect(_safe_next(request.args.get("next")), code=303)
        error = "Wrong username or password."
        return render_template("dashboard/login.html", form=form, error=error), 401
    if logged_in():
        return redirect(_safe_next(request.args.get("next")))
    return render_template("dashboard/login.html", form=form, error=None)


@bp.errorhandler(StoreUnavailable)
def _store_down(_error: StoreUnavailable) -> tuple[str, int]:
    form = LoginForm()
    message = "The event store is unavailable right now, so nobody can log in. Try again shortly."
    return render_template("dashboard/login.html", form=form, error=message), 503


@bp.post("/logout")
def logout() -> Response:
    login_id = session.get("login_id")
    session.clear()
    if isinstance(login_id, str):
        get_store().revoke_sessions(_login_hash(login_id))
    flash("You are logged out.")
    return redirect(url_for("dashboard_auth.login"), code=303)


@bp.post("/logout-everywhere")
def logout_everywhere() -> Response:
    """End every login of the dashboard, on every browser (e.g. after a lost laptop)."""
    if not logged_in():
        return redirect(url_for("dashboard_auth.login"), code=303)
    count = get_store().revoke_sessions()
    session.clear()
    flash(f"You are logged out everywhere ({count} login{'s' if count != 1 else ''} ended).")
    return redirect(url_for("dashboard_auth.login"), code=303)
