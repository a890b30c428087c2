"""Dashboard login: a session for people, HTTP Basic for scripts on the JSON API.

One operator account, ``DASHBOARD_USERNAME``/``DASHBOARD_PASSWORD``.  Both ways compare the
credentials with ``callbacks.auth.verify_basic``: bytes, constant time, both halves always
compared.  A failed login says only that the username or password is wrong.

The session holds the username, a fingerprint of the configured credentials (changing the
password ends every session) and the login time (a login lasts DASHBOARD_SESSION_SECONDS).
Login attempts are limited per client address (DASHBOARD_LOGIN_RATE), in the store so that
every worker and server shares the count.

Routes: ``GET/POST /dashboard/login``, ``POST /dashboard/logout``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
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
from dashboard.settings import number, rates
from store import StoreUnavailable, get_store

bp = Blueprint("dashboard_auth", __name__, url_prefix="/dashboard")

SESSION_KEYS = ("operator", "operator_key", "login_at")


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


def logged_in() -> bool:
    """True when the session belongs to a current login."""
    key = session.get("operator_key")
    login_at = session.get("login_at")
    if not isinstance(key, str) or not isinstance(login_at, int | float):
        return False
    if time.time() - login_at > number("DASHBOARD_SESSION_SECONDS"):
        return False
    return hmac.compare_digest(key, _fingerprint())


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
        if not _login_allowed():
            message = "Too many login attempts from your address. Wait a few minutes."
            return render_template("dashboard/login.html", form=form, error=message), 429
        if form.validate_on_submit() and credentials_ok(form.username.data, form.password.data):
            session.clear()
            session["operator"] = form.username.data
            session["operator_key"] = _fingerprint()
            session["login_at"] = time.time()
            return redirect(_safe_next(request.args.get("next")), code=303)
        error = "Wrong username or password."
        return render_template("dashboard/login.html", form=form, error=error), 401
    if logged_in():
        return redirect(_safe_next(request.args.get("next")))
    return render_template("dashboard/login.html", form=form, error=None)


def _login_allowed() -> bool:
    key = "login:" + limits.client_key(request.remote_addr)
    try:
        return limits.allow(get_store(), key, rates("DASHBOARD_LOGIN_RATE"))
    except StoreUnavailable:
        return True  # the store is down: do not lock operators out of the dashboard


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("dashboard_auth.login"), code=303)
