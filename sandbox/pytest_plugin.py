"""pytest fixtures for your own tests: ``voice_call`` (scripted calls against your app, on a
test clock; see ``sandbox.kit``) and ``bandwidth_sandbox`` (a standalone sandbox on a free
127.0.0.1 port, for an app that is not built on this framework).

Enable it with ``pytest -p sandbox.pytest_plugin`` or, in a conftest.py,
``pytest_plugins = ["sandbox.pytest_plugin"]``.  Then::

    def test_my_flow(bandwidth_sandbox, my_app_url):
        client = VoiceClient(account_id=bandwidth_sandbox.account_id,
                             username=bandwidth_sandbox.username,
                             password=bandwidth_sandbox.password,
                             base_url=bandwidth_sandbox.api_url)
        call = client.create_call(to="+12025550123", from_="+12025550100",
                                  application_id="app", answer_url=my_app_url + "/answer")
        bandwidth_sandbox.wait_for(call["callId"], "answered")
        bandwidth_sandbox.press(call["callId"], "1#")
        bandwidth_sandbox.wait_for(call["callId"], "disconnected")

    def test_my_ivr(bandwidth_sandbox, my_app_url):
        bandwidth_sandbox.application("my-app", callInitiatedCallbackUrl=my_app_url + "/initiate",
                                      callStatusCallbackUrl=my_app_url + "/status",
                                      numbers=["+12025550199"])
        call_id = bandwidth_sandbox.dial_in("+12025550199", "+12025550100")
        bandwidth_sandbox.wait_for(call_id, "disconnected")

In ``bandwidth_sandbox`` simulated time runs at ``--sandbox-time-scale`` (default 0.01: a
5 s Pause takes 50 ms); ``voice_call`` runs it on the manual clock instead::

    @pytest.fixture
    def voice_app_config():            # your app's settings for the kit (optional)
        return {"VOICE_FLOWS": "my_ivr"}

    def test_menu(voice_call):
        call = voice_call.dial("+12025550123")
        call.expect_heard("press 1")
        call.press("1")
        call.expect_transfer_to("+12025550142")

Any other sandbox setting for one test: ``@pytest.mark.sandbox_settings(calls_per_second=0,
duplicate_events="dtmf")`` (the ``Settings`` field names: the ``SANDBOX_*`` names in lower
case without the prefix).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.kit import VoiceKit, voice_kit
from sandbox.kit.server import AppFactory
from sandbox.standalone import Server, standalone_settings


class SandboxHandle:
    """What the ``bandwidth_sandbox`` fixture yields."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sandbox = server.sandbox
        settings = server.sandbox.settings
        self.base_url = server.base_url  # http://127.0.0.1:PORT
        self.api_url = server.api_url  # base_url + "/api/v2": give this to your client
        self.control_url = server.control_url
        self.account_id = settings.account_id
        self.username = settings.username
        self.password = settings.password

    def calls(self) -> list[dict[str, Any]]:
        """Every call (and B-leg), newest first, with state, activity and log."""
        return self.sandbox.calls(limit=500)

    def call(self, call_id: str) -> dict[str, Any] | None:
        return self.sandbox.call(call_id)

    def transcript(self, call_id: str) -> list[dict[str, Any]]:
        """What the person on leg ``call_id`` heard, pressed and said, in order."""
        return self.sandbox.transcript(call_id)

    def wait_for(self, call_id: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the call is ``queued``/``initiated``/``answered``/``disconnected``."""
        return self.sandbox.wait_for(call_id, state, timeout)

    def press(self, call_id: str, digits: str) -> None:
        """The callee presses ``digits``."""
        self.sandbox.press(call_id, digits)

    def hang_up(self, call_id: str) -> None:
        """The callee hangs up."""
        self.sandbox.hang_up(call_id)

    def script(self, number: str, **script: Any) -> None:
        """Script the callee of ``number``: ``answer="busy"``, ``gatherDigits=["1"]``, ...
        (for an inbound call: the caller, by the number it calls from)."""
        self.sandbox.script(number, script)

    def application(self, application_id: str, **config: Any) -> None:
        """Create or replace a Voice application: ``callInitiatedCallbackUrl=...``,
        ``callStatusCallbackUrl=...``, ``callbackCreds={...}``, ``numbers=[...]``."""
        self.sandbox.set_application(application_id, config)

    def dial_in(self, to: str, from_: str, **extras: Any) -> str:
        """A caller dials ``to`` (an application's number); the new call's id.  Extras:
        ``diversion``, ``stirShaken``, ``uui``, ``sipHeaders``."""
        created = self.sandbox.dial_in({"to": to, "from": from_, **extras}, self.api_url)
        return str(created["callId"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sandbox_settings(**fields): sandbox settings for bandwidth_sandbox"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sandbox-time-scale",
        type=float,
        default=0.01,
        help="bandwidth_sandbox: simulated seconds -> real seconds (default 0.01)",
    )
    parser.addoption(
        "--voice-app-url",
        default=None,
        help="voice_call: drive the server running at this URL instead of building the app",
    )
    parser.addoption(
        "--voice-sandbox-port",
        type=int,
        default=0,
        help="voice_call with --voice-app-url: the port of the kit's sandbox (its Voice API "
        "is http://127.0.0.1:PORT/api/v2; default: a free port)",
    )


@pytest.fixture
def bandwidth_sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxHandle]:
    """A standalone sandbox on a free 127.0.0.1 port, stopped after the test."""
    from sandbox.core import Sandbox

    database = tmp_path_factory.mktemp("bandwidth-sandbox") / "sandbox.db"
    settings, _ = standalone_settings(
        database_url=f"sqlite:///{database}",
        environ={"BW_PASSWORD": "sandbox-password"},
        time_scale=request.config.getoption("--sandbox-time-scale", default=None) or 0.01,
        poll_interval=0.02,
        idle_poll=0.2,
    )
    marker = request.node.get_closest_marker("sandbox_settings")
    if marker is not None:
        settings = settings.with_(**marker.kwargs)
    server = Server(Sandbox(settings)).start()
    try:
        yield SandboxHandle(server)
    finally:
        server.stop()


@pytest.fixture
def voice_app_config() -> dict[str, Any]:
    """Your app's settings in ``voice_call`` (override this fixture): ``VOICE_FLOWS`` and
    any other key of ``create_app({...})``.  The kit supplies a private SQLite store,
    secrets, ``PUBLIC_BASE_URL`` and the sandbox on the manual clock."""
    return {}


@pytest.fixture
def voice_app_factory() -> AppFactory | None:
    """How ``voice_call`` builds your app from its settings (override this fixture for an
    app of your own that calls ``callbacks.init_app`` and ``sandbox.init_app``); None:
    ``app.create_app``."""
    return None


@pytest.fixture
def voice_app_url(request: pytest.FixtureRequest) -> str | None:
    """The URL of a running server ``voice_call`` drives (``--voice-app-url``); None: the
    app is built in this process."""
    return request.config.getoption("--voice-app-url", default=None)  # type: ignore[no-any-return]


@pytest.fixture
def voice_call(
    request: pytest.FixtureRequest,
    voice_app_config: dict[str, Any],
    voice_app_factory: AppFactory | None,
    voice_app_url: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VoiceKit]:
    """Your app, served on 127.0.0.1, with its sandbox on a test clock: dial it
    (``voice_call.dial(number)``), have it place calls, and act as the person on the
    phone, step by step (``sandbox.kit``).  With ``--voice-app-url`` the server running
    there is driven instead, by a sandbox of the kit's own (``sandbox.kit.remote``)."""
    directory = tmp_path_factory.mktemp("voice-call")
    if voice_app_url:
        from sandbox.kit.remote import remote_kit

        port = request.config.getoption("--voice-sandbox-port", default=0) or 0
        with remote_kit(
            voice_app_url, voice_app_config, directory=directory, sandbox_port=port
        ) as kit:
            yield kit
        return
    with voice_kit(voice_app_config, directory=directory, factory=voice_app_factory) as kit:
        yield kit
