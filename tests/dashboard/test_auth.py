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


def test_right_logins_do_not_use_up_the_wrong_password_allowance(app, client):
    app.config["DASHBOARD_LOGIN_RATE"] = "3/hour"
    for _ in range(5):  # an operator who logs in often
        assert login(client).status_code == 303
        client.post("/dashboard/logout", data={"csrf_token": page_token(client, "/dashboard")})
    wrong = basic(DASHBOARD_USER, "guess")
    statuses = [client.get("/api/disconnects", headers=wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


# --- revocable sessions -------------------------------------------------------------------


def _copy_session(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_logout_ends_the_session_for_every_copy_of_the_cookie(app, client):
    assert login(client).status_code == 303
    thief = _copy_session(app, client)
    assert thief.get("/dashboard").status_code == 200
    assert thief.get("/api/disconnects").status_code == 200
    client.post("/dashboard/logout", data={"csrf_token": page_token(client, "/dashboard")})
    assert thief.get("/dashboard").status_code == 302
    assert thief.get("/api/disconnects").status_code == 401


def test_log_out_everywhere_ends_every_login(app, client):
    others = [app.test_client() for _ in range(2)]
    for browser in [client, *others]:
        assert login(browser).status_code == 303
    copy = _copy_session(app, others[0])
    reply = client.post(
        "/dashboard/logout-everywhere", data={"csrf_token": page_token(client, "/dashboard")}
    )
    assert reply.status_code == 303
    assert "3 logins ended" in client.get(reply.headers["Location"]).get_data(as_text=True)
    for browser in [client, *others, copy]:
        assert browser.get("/dashboard").status_code == 302
    assert login(client).status_code == 303  # a new login works again
    assert client.get("/dashboard").status_code == 200


def test_log_out_everywhere_needs_a_login_and_csrf(app, client):
    other = app.test_client()
    assert login(other).status_code == 303
    token = page_token(client, "/dashboard/login")
    assert (
        client.post("/dashboard/logout-everywhere", data={"csrf_token": token}).status_code == 303
    )
    assert client.post("/dashboard/logout-everywhere").status_code == 400  # no CSRF token
    assert other.get("/dashboard").status_code == 200


def test_the_page_offers_log_out_everywhere(operator):
    html = operator.get("/dashboard").get_data(as_text=True)
    assert 'formaction="/dashboard/logout-everywhere"' in html


def test_a_session_cookie_without_a_login_id_is_refused(app, client):
    """A cookie signed before logins were recorded (or forged without the store) is no login."""
    login(client)
    with client.session_transaction() as sess:
        del sess["login_id"]
    assert client.get("/dashboard").status_code == 302


# --- attempt limits on every credential check ---------------------------------------------


def test_wrong_basic_passwords_are_limited_per_address(app, client):
    app.config["DASHBOARD_LOGIN_RATE"] = "3/hour"
    right = basic(DASHBOARD_USER, DASHBOARD_PASSWORD)
    # Right passwords do not count: a script may poll the API.
    assert [client.get("/api/disconnects", headers=right).status_code for _ in range(5)] == [
        200
    ] * 5
    wrong = basic(DASHBOARD_USER, "guess")
    statuses = [client.get("/api/disconnects", headers=wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    reply = client.get("/api/disconnects", headers=right)  # even the right one, now
    assert reply.status_code == 429
    assert reply.get_json()["error"].startswith("too many wrong passwords")
    assert 0 < int(reply.headers["Retry-After"]) <= 3600
    # The login form shares the count, and other addresses are not affected.
    assert login(client).status_code == 429
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get("/api/disconnects", headers=right, environ_base=other).status_code == 200


def test_the_login_form_and_basic_share_one_count(app, client):
    app.config["DASHBOARD_LOGIN_RATE"] = "2/hour"
    assert login(client, DASHBOARD_USER, "wrong").status_code == 401
    assert login(client, DASHBOARD_USER, "wrong").status_code == 401
    reply = client.get("/api/disconnects", headers=basic(DASHBOARD_USER, DASHBOARD_PASSWORD))
    assert reply.status_code == 429


def test_the_count_is_shared_by_every_server_on_the_store(app_config):
    """Two app instances (two workers or servers) on one database share the count."""
    from app import create_app

    app_config["DASHBOARD_LOGIN_RATE"] = "4/hour"
    servers = [create_app(dict(app_config)).test_client() for _ in range(2)]
    wrong = basic(DASHBOARD_USER, "guess")
    statuses = [servers[i % 2].get("/api/disconnects", headers=wrong).status_code for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    right = basic(DASHBOARD_USER, DASHBOARD_PASSWORD)
    assert [s.get("/api/disconnects", headers=right).status_code for s in servers] == [429, 429]


def test_requests_without_credentials_are_not_attempts(app, client):
    app.config["DASHBOARD_LOGIN_RATE"] = "1/hour"
    for _ in range(3):
        assert client.get("/api/disconnects").status_code == 401
    right = basic(DASHBOARD_USER, DASHBOARD_PASSWORD)
    assert client.get("/api/disconnects", headers=right).status_code == 200
