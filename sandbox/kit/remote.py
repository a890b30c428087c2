"""The kit for a server that is already running, reached by URL: the kit runs its own
sandbox (standalone, on the manual clock) in the test's process and sends the callbacks to
that server; calls the server places come to the kit's sandbox when the server is started
with it as its Voice API (``VOICE_BACKEND=bandwidth``, ``BW_VOICE_API_URL``: the kit's)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.core import Sandbox
from sandbox.inbound import default_application
from sandbox.kit.harness import VoiceKit
from sandbox.standalone import Server, standalone_settings

APPLICATION_ID = "voice-kit"


@contextmanager
def remote_kit(
    app_url: str,
    config: Mapping[str, Any],
    *,
    directory: Path,
    sandbox_port: int = 0,
) -> Iterator[VoiceKit]:
    """A kit driving the server at ``app_url``.  From ``config`` (the server's settings):
    ``CALLBACK_USERNAME``/``CALLBACK_PASSWORD`` (sent with every callback), ``SECRET_KEY``
    (to read tag state; without it ``tag_state()`` is ``{}``), and ``BW_ACCOUNT_ID``,
    ``BW_USERNAME``, ``BW_PASSWORD``, ``BW_APPLICATION_ID``: the account the server's
    outbound calls use, which the kit's sandbox accepts.  The sandbox listens on
    127.0.0.1:``sandbox_port`` (0: a free port; ``kit.api_url`` says which)."""
    base = app_url.rstrip("/")
    environ = {"BW_PASSWORD": str(config.get("BW_PASSWORD") or secrets.token_urlsafe(16))}
    for key in ("BW_ACCOUNT_ID", "BW_USERNAME"):
        if config.get(key):
            environ[key] = str(config[key])
    settings, _ = standalone_settings(
        database_url=f"sqlite:///{directory / 'sandbox.db'}",
        environ=environ,
        clock="manual",
        poll_interval=0.02,
        idle_poll=0.5,
        default_application_id=str(config.get("BW_APPLICATION_ID") or APPLICATION_ID),
        default_application=default_application(
            base, config.get("CALLBACK_USERNAME"), config.get("CALLBACK_PASSWORD")
        ),
    )
    server = Server(Sandbox(settings), port=sandbox_port).start()
    try:
        secret = config.get("SECRET_KEY")
        yield VoiceKit(
            server.sandbox,
            base_url=base,
            api_url=server.api_url,
            secret=str(secret) if secret else None,
        )
    finally:
        server.stop()
