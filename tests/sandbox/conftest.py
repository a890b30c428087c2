"""Fixtures: a standalone sandbox (the plugin's fixture), a scripted receiver, the real app."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask

from sandbox.core import Sandbox
from sandbox.pytest_plugin import (  # noqa: F401 (the fixture, and the hook adding its marker)
    SandboxHandle,
    bandwidth_sandbox,
    pytest_configure,
)
from sandbox.standalone import standalone_settings
from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER
from tests.sandbox.receiver import Receiver
from tests.servers import listening_socket, port_of, serve_on

TO = "+12025550123"
FROM = "+12025550100"
# The keys every call event starts with, in the spec's order.
CALL_EVENT_KEYS = (
    "eventType eventTime accountId applicationId from to direction callId callUrl".split()
)


def basic_credentials(received) -> tuple[str, str] | None:
    """The (user, password) a callback carried as HTTP Basic, or None."""
    if not received.authorization:
        return None
    user, _, password = base64.b64decode(received.authorization.split()[1]).decode().partition(":")
    return user, password


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as app:
        yield app


class Api:
    """The sandbox's Voice API over real HTTP, with its credentials."""

    def __init__(self, api_url: str, account_id: str, auth: tuple[str, str]) -> None:
        self.api_url = api_url
        self.account_id = account_id
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.auth = auth

    @property
    def calls_url(self) -> str:
        return f"{self.api_url}/accounts/{self.account_id}/calls"

    def create(self, **body: Any) -> requests.Response:
        return self.session.post(self.calls_url, json=body, timeout=10)

    def create_ok(self, **body: Any) -> str:
        reply = self.create(**body)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["callId"])

    def state(self, call_id: str) -> requests.Response:
        return self.session.get(f"{self.calls_url}/{call_id}", timeout=10)

    def update(self, call_id: str, **body: Any) -> requests.Response:
        return self.session.post(f"{self.calls_url}/{call_id}", json=body, timeout=10)

    def put_bxml(
        self, call_id: str, document: str, content_type: str = "application/xml"
    ) -> requests.Response:
        return self.session.put(
            f"{self.calls_url}/{call_id}/bxml",
            data=document.encode(),
            headers={"Content-Type": content_type},
            timeout=10,
        )

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def sandbox(bandwidth_sandbox: SandboxHandle) -> SandboxHandle:  # noqa: F811
    return bandwidth_sandbox


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[Api]:
    client = Api(sandbox.api_url, sandbox.account_id, (sandbox.username, sandbox.password))
    yield client
    client.close()


@pytest.fixture
def call_body(receiver: Receiver):
    """A create-call body pointed at the receiver; keyword overrides."""

    def make(**overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "to": TO,
            "from": FROM,
            "applicationId": "app-1",
            "answerUrl": receiver.url("/answer"),
            "disconnectUrl": receiver.url("/disconnect"),
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    return make


@dataclass
class LiveApp:
    app: Flask
    base_url: str

    def events(self, call_id: str) -> list[str]:
        from store import get_store

        return [row["event_type"] for row in get_store(self.app).events_for_call(call_id)]


@pytest.fixture
def live_app(app_config: dict[str, Any]) -> Iterator[LiveApp]:
    """The real app (``create_app``, temp SQLite) served threaded on a free 127.0.0.1 port."""
    from app import create_app
    from store import get_store

    sock = listening_socket()
    base = f"http://127.0.0.1:{port_of(sock)}"
    app_config["PUBLIC_BASE_URL"] = base
    app_config["SANDBOX_TIME_SCALE"] = 0.01  # the in-app sandbox, when a test uses it
    application = create_app(app_config)
    server = serve_on(sock, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield LiveApp(application, base)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        in_app = application.extensions.get("sandbox")
        if in_app is not None:
            in_app.close()
        get_store(application).dispose()


@pytest.fixture
def app_callback_auth() -> dict[str, str]:
    """The call's username/password for the app's callback routes."""
    return {"username": CALLBACK_USER, "password": CALLBACK_PASSWORD}


@pytest.fixture
def app_call(live_app, app_callback_auth):
    """A create-call body aimed at the live app's callback routes; keyword overrides (None
    leaves a field out)."""

    def make(**overrides: Any) -> dict[str, Any]:
        body = {
            "to": TO,
            "from": FROM,
            "applicationId": "app-1",
            "answerUrl": live_app.base_url + "/callbacks/answer",
            "disconnectUrl": live_app.base_url + "/callbacks/disconnect",
            **app_callback_auth,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """One database shared by every sandbox of the test: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    from tests.pg import fresh_postgres_url

    with fresh_postgres_url() as url:
        yield url


@pytest.fixture
def make_sandbox(database_url):
    made: list[Sandbox] = []
    url = database_url

    def make(**changes) -> Sandbox:
        settings, _ = standalone_settings(
            database_url=url,
            environ={"BW_PASSWORD": "pw"},
            time_scale=0.01,
            poll_interval=0.01,
            idle_poll=0.01,
            calls_per_second=0,  # these tests create calls faster than Bandwidth's 5 a second
            concurrent_calls=0,
        )
        instance = Sandbox(settings.with_(**changes))
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()


@pytest.fixture
def db_server(make_sandbox):
    """A standalone sandbox over HTTP on ``database_url`` (SQLite, then PostgreSQL).  60 s of
    simulated time take 6 s: long enough for a test's input to arrive before a timeout."""
    from sandbox.standalone import Server

    running = Server(make_sandbox(time_scale=0.1)).start()
    yield running
    running.stop()


@pytest.fixture
def db_api(db_server):
    settings = db_server.sandbox.settings
    client = Api(db_server.api_url, settings.account_id, (settings.username, settings.password))
    yield client
    client.close()
