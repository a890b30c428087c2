"""Security headers, cookie flags, and every callback field rendered escaped (B20)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markupsafe import escape

from app import create_app
from store import get_store
from tests.callbacks.helpers import answer_event, disconnect_event
from tests.dashboard.conftest import failed_call, login

XSS = [
    "<script>alert('x')</script>",
    '" onmouseover="alert(1)',
    "'><img src=x onerror=alert(1)>",
    "</pre><svg onload=alert(1)>",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def _no_active_content(html: str) -> None:
    """As a browser parses it: no inline script, no on* or style attribute, no <style>."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    assert parser.script_text == ""
    for tag, attrs in parser.tags:
        assert tag not in ("style", "iframe", "object", "embed"), tag
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        if tag == "img":
            raise AssertionError(f"unexpected <img> {attrs}")
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", (tag, attrs)
            assert not (value or "").lower().startswith("javascript:"), (tag, name, value)


@pytest.mark.parametrize(
    "path", ["/dashboard/login", "/click-to-call", "/dashboard", "/api/disconnects", "/nowhere"]
)
def test_security_headers_on_every_response(operator, path):
    reply = operator.get(path)
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "same-origin"


def test_private_pages_are_not_cached(operator):
    for path in ("/dashboard", "/api/disconnects", "/dashboard/rejected"):
        assert operator.get(path).headers["Cache-Control"] == "no-store"


def test_session_cookie_flags(client):
    reply = client.get("/dashboard/login")
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http in the tests


def test_session_cookie_is_secure_behind_https(app_config):
    app = create_app({**app_config, "PUBLIC_BASE_URL": "https://cb.example.com"})
    reply = app.test_client().get("/dashboard/login", base_url="https://localhost")
    assert "Secure" in reply.headers["Set-Cookie"]


@pytest.mark.parametrize("payload", XSS)
def test_callback_fields_are_escaped_everywhere(operator, bw, payload):
    cid = failed_call(bw, errorMessage=payload, tag=payload, errorId=payload)
    for path in ("/dashboard", f"/dashboard/calls/{cid}", f"/dashboard?tag={payload}"):
        reply = operator.get(path)
        assert reply.status_code == 200
        html = reply.get_data(as_text=True)
        assert payload not in html
        _no_active_content(html)
        assert str(escape(payload)) in html  # shown, as text


@pytest.mark.parametrize("payload", XSS)
def test_rejected_requests_are_escaped(operator, bw, payload):
    reply = bw.post("answer", {"eventType": payload, "callId": payload})
    assert reply.status_code in (400, 422)
    html = operator.get("/dashboard/rejected").get_data(as_text=True)
    assert payload not in html
    _no_active_content(html)


def test_xss_in_the_api_stays_data(operator, bw):
    failed_call(bw, errorMessage=XSS[0])
    reply = operator.get("/api/disconnects")
    assert reply.mimetype == "application/json"
    assert reply.get_json()["disconnects"][0]["errorMessage"] == XSS[0]


def test_pages_have_no_inline_script_or_style(operator, bw, app):
    cid = failed_call(bw, cause="invalid-bxml")
    with app.app_context():
        event_id = get_store().events_for_call(cid)[0]["id"]
    pages = ["/dashboard", f"/dashboard/calls/{cid}", "/dashboard/rejected", "/click-to-call"]
    for path in pages:
        _no_active_content(operator.get(path).get_data(as_text=True))
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', operator.get("/dashboard").get_data(as_text=True)
    )
    replay = operator.post(
        f"/dashboard/calls/{cid}/replay/{event_id}", data={"csrf_token": token.group(1)}
    )
    assert replay.status_code == 200
    _no_active_content(replay.get_data(as_text=True))


def test_banner_when_callbacks_are_open(app_config):
    app = create_app({**app_config, "CALLBACK_USERNAME": None, "CALLBACK_PASSWORD": None})
    client = app.test_client()
    login(client)
    assert 'id="callbacks-open"' in client.get("/dashboard").get_data(as_text=True)


def test_no_banner_with_callback_credentials(operator):
    assert 'id="callbacks-open"' not in operator.get("/dashboard").get_data(as_text=True)


def test_callbacks_and_api_need_no_csrf_token(client, bw):
    assert bw.post("answer", answer_event()).status_code == 200
    assert bw.post("disconnect", disconnect_event()).status_code == 204


def test_sandbox_blueprints_need_no_csrf_token(app_config):
    app = create_app({**app_config, "VOICE_BACKEND": "sandbox"})
    try:
        reply = app.test_client().post(
            "/sandbox/api/v2/accounts/9900000/calls", json={"to": "+12025550123"}
        )
        assert reply.status_code == 401  # the sandbox's own auth answers, not a CSRF 400
    finally:
        app.extensions["sandbox"].close(timeout=5.0)


def test_every_page_has_an_icon_and_favicon_ico_is_no_404(client, operator):
    """Browsers ask for /favicon.ico on every page they show without a linked icon."""
    reply = client.get("/favicon.ico")
    assert reply.status_code == 200
    assert reply.mimetype == "image/svg+xml" and reply.data.startswith(b"<svg")
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    for path in ("/", "/dashboard", "/dashboard/calls/c-none"):
        assert icon in client.get(path).get_data(as_text=True), path
    static = client.get("/static/favicon.svg")
    static.close()  # a file Flask streams
    assert static.status_code == 200
