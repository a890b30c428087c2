"""Login: every dashboard page and API needs it; the form, the session, HTTP Basic."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.dashboard.conftest import csrf_from, login, page_token

PAGES = [
    "/dashboard",
    "/dashboard?cause=busy",
    "/dashboard/disconnects.csv",
    "/dashboard/disconnects.json",
    "/dashboard/calls/c-1",
    "/dashboard/rejected",
]
API = ["/api/disconnects", "/api/calls/c-1/events"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_login(client, path):
    reply = client.get(path)
    assert reply.status_code == 302
    assert reply.headers["Location"].startswith("/dashboard/login?next=")


@pytest.mark.parametrize("path", API)
def test_api_needs_credentials(client, path):
    reply = client.get(path)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert reply.get_json() == {"error": "dashboard credentials required"}


@pytest.mark.parametrize("path", API)
def test_api_accepts_basic_and_the_session(client, path):
    assert client.get(path, headers=basic(DASHBOARD_USER, DASHBOARD_PASSWORD)).status_code == 200
    assert client.get(path, headers=basic(DASHBOARD_USER, "wrong")).status_code == 401
    assert client.get(path, headers=basic(DASHBOARD_USER, "pä")).status_code == 401
    login(client)
    assert client.get(path).status_code == 200


def test_dashboard_scripts_get_no_password_dialog(client):
    reply = client.get("/api/disconnects", headers={"X-Requested-With": "dashboard"})
    assert reply.status_code == 401
    assert "WWW-Authenticate" not in reply.headers


def test_basic_auth_does_not_open_the_pages(client):
    reply = client.get("/dashboard", headers=basic(DASHBOARD_USER, DASHBOARD_PASSWORD))
    assert reply.status_code == 302


def test_replay_needs_login_even_with_a_valid_csrf_token(client):
    token = page_token(client, "/click-to-call")
    reply = client.post("/dashboard/calls/c-1/replay/1", data={"csrf_token": token})
    assert reply.status_code == 302
    assert reply.headers["Location"].startswith("/dashboard/login")


def test_login_then_logout(client):
    reply = login(client)
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    token = page_token(client, "/dashboard")
    reply = client.post("/dashboard/logout", data={"csrf_token": token})
    assert reply.status_code == 303
    assert client.get("/dashboard").status_code == 302


def test_login_returns_to_the_page_asked_for(client):
    client.get("/dashboard/rejected")
    page = client.get("/dashboard/login?next=/dashboard/rejected")
    reply = client.post(
        "/dashboard/login?next=/dashboard/rejected",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "username": DASHBOARD_USER,
            "password": DASHBOARD_PASSWORD,
        },
    )
    assert reply.headers["Location"] == "/dashboard/rejected"


def _login_then_go_to(client, target: str):
    page = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        query_string={"next": target},
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "username": DASHBOARD_USER,
            "password": DASHBOARD_PASSWORD,
        },
    )


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_login_never_redirects_off_site(client, target):
    reply = _login_then_go_to(client, target)
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/dashboard"


CONTROL_TARGETS = ["/dashboard\r\nSet-Cookie: x=1", "/dashboard\nx", "/dash\x00board", "/a\x7f"]


@pytest.mark.parametrize("target", CONTROL_TARGETS)
def test_a_next_with_control_characters_goes_to_the_dashboard(client, target):
    assert client.get("/dashboard/login", query_string={"next": target}).status_code == 200
    reply = _login_then_go_to(client, target)
    assert (reply.status_code, reply.headers["Location"]) == (303, "/dashboard")
    # Already logged in: the login page sends the operator on, to the same safe place.
    reply = client.get("/dashboard/login", query_string={"next": target})
    assert (reply.status_code, reply.headers["Location"]) == (302, "/dashboard")


@pytest.mark.parametrize(
    ("username", "password"),
    [(DASHBOARD_USER, "wrong"), ("someone", DASHBOARD_PASSWORD), (DASHBOARD_USER, "pä"), ("", "")],
)
def test_wrong_credentials_get_one_generic_error(client, username, password):
    reply = login(client, username, password)
    assert reply.status_code == 401
    html = reply.get_data(as_text=True)
    assert "Wrong username or password." in html
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_login_without_a_valid_csrf_token_is_refused(client, token):
    client.get("/dashboard/login")
    data = {"username": DASHBOARD_USER, "password": DASHBOARD_PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    reply = client.post("/dashboard/login", data=data)
    assert reply.status_code == 400
    assert "This form has expired" in reply.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_csrf_token_of_another_session_is_refused(app, client):
    other = app.test_client()
    token = page_token(other, "/dashboard/login")
    client.get("/dashboard/login")
    reply = client.post(
        "/dashboard/login",
        data={"csrf_token": token, "username": DASHBOARD_USER, "password": DASHBOARD_PASSWORD},
    )
    assert reply.status_code == 400


def test_changing_the_password_ends_sessions(app, client):
    login(client)
    app.config["DASHBOARD_PASSWORD"] = "rotated"
    assert client.get("/dashboard").status_code == 302


def test_a_login_expires(app, client):
    app.config["DASHBOARD_SESSION_SECONDS"] = 0
    login(client)
    assert client.get("/dashboard").status_code == 302


def test_login_attempts_are_limited_per_address(app, client):
    app.config["DASHBOARD_LOGIN_RATE"] = "3/hour"
    statuses = [login(client, DASHBOARD_USER, "wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    reply = login(client)  # even the right password, once over the limit
    assert reply.status_code == 429
    assert "Too many login attempts" in reply.get_data(as_text=True)
    other = app.test_client()
    reply = other.get("/dashboard/login")
    reply = other.post(
        "/dashboard/login",
        data={
            "csrf_token": csrf_from(reply.get_data(as_text=True)),
            "username": DASHBOARD_USER,
            "password": DASHBOARD_PASSWORD,
        },
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert reply.status_code == 303
