"""The call-flow testing kit: scripted calls against your app, on a test clock.

The ``voice_call`` fixture (``sandbox.pytest_plugin``) builds your app (``app.create_app``
with the ``voice_app_config`` fixture's settings), serves it on a free 127.0.0.1 port and
yields a ``VoiceKit``; its in-app sandbox runs on the manual clock, so simulated time passes
only as the test's steps let it::

    def test_support_line(voice_call):
        call = voice_call.dial("+12025550123", from_="+12025550111")
        call.expect_heard("For support, press 2")
        call.press("2")
        call.expect_heard("4 digit order number")
        call.press("1234")
        call.expect_transfer_to("+12025550143")
        call.hang_up()
        assert call.disconnect_cause == "hangup"

Outside pytest: ``with voice_kit(config) as kit: ...``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.kit.call import Callback, KitFailure, ScriptedCall, Step
from sandbox.kit.harness import VoiceKit
from sandbox.kit.server import AppFactory, InProcess, serving

__all__ = ["Callback", "KitFailure", "ScriptedCall", "Step", "VoiceKit", "voice_kit"]


@contextmanager
def voice_kit(
    config: Mapping[str, Any] | None = None,
    *,
    directory: Path | None = None,
    factory: AppFactory | None = None,
) -> Iterator[VoiceKit]:
    """Your app (``factory(settings)``, by default ``app.create_app``) with ``config`` over
    the kit's settings, served on 127.0.0.1 with its sandbox on the manual clock."""
    with tempfile.TemporaryDirectory(prefix="voice-kit-") as scratch:
        where = directory or Path(scratch)
        with serving(where, config or {}, factory) as (app, base_url):
            kit = VoiceKit.in_process(app, base_url)
            # Callbacks go straight into the app (its WSGI interface), not over a socket;
            # the server stays for what else reaches the app (its own Voice API calls).
            kit.sandbox.driver.deliverer.session.mount(base_url + "/", InProcess(app))
            yield kit
