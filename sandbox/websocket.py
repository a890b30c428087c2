"""The WebSocket client Bandwidth is to a stream or transcription ``destination``.

One ``Socket`` per stream: it connects (HTTP Basic from ``destinationUsername`` and
``destinationPassword`` in the handshake), sends JSON text frames, and reads what the app
sends back in a thread of its own, handing each message to ``on_message``.  ``ended`` says
why the connection ended when the app's side ended it (None while it is up, or after we
closed it).  The destination is checked against the same URL policy as callbacks (``ws``
as ``http``, ``wss`` as ``https``): inside the app only its own origin and loopback.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from sandbox.delivery import USER_AGENT, UrlPolicy

log = logging.getLogger(__name__)


def check_destination(policy: UrlPolicy, url: str) -> str | None:
    """Why ``url`` may not be connected to, or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("ws", "wss"):
        return f"destination {url!r} is not a ws:// or wss:// URL"
    problem = policy.problem(("http" if scheme.lower() == "ws" else "https") + "://" + rest)
    return None if problem is None else problem.replace("callback URL", "destination")


class Socket:
    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        on_message: Callable[[Any], None] | None = None,
    ) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.on_message = on_message
        self.ended: str | None = None  # why the app's side ended it (set by the reader)
        self.ended_normally = False
        self._connection: ClientConnection | None = None
        self._closing = False
        self._send_lock = threading.Lock()

    def open(self, timeout: float) -> str | None:
        """Connect; None when connected, else why not."""
        headers = {}
        if self.username or self.password:
            pair = f"{self.username or ''}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        try:
            parts = urlsplit(self.url)
            port = parts.port or (443 if parts.scheme.lower() == "wss" else 80)
            # Our own TCP socket: the client then follows no redirect to another origin.
            sock = socket.create_connection((parts.hostname or "", port), timeout=timeout)
        except (OSError, ValueError) as exc:
            return f"could not connect to {self.url}: {exc or type(exc).__name__}"
        try:
            self._connection = connect(
                self.url,
                sock=sock,
                legacy=True,
                additional_headers=headers,
                user_agent_header=USER_AGENT,
                open_timeout=timeout,
                close_timeout=timeout,
                proxy=None,
                compression=None,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ValueError) as exc:
            sock.close()
            return f"could not connect to {self.url}: {exc or type(exc).__name__}"
        threading.Thread(target=self._read, name="sandbox-websocket", daemon=True).start()
        return None

    @property
    def up(self) -> bool:
        return self._connection is not None and self.ended is None and not self._closing

    def send(self, message: dict[str, Any]) -> bool:
        """Send one JSON text frame; False when the connection is gone."""
        connection = self._connection
        if connection is None or self.ended is not None:
            return False
        try:
            with self._send_lock:
                connection.send(json.dumps(message, separators=(",", ":")))
        except (ConnectionClosed, OSError) as exc:
            self._lost(f"the connection to {self.url} broke: {exc}", normal=False)
            return False
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        connection = self._connection
        self._closing = True
        if connection is not None:
            try:
                connection.close(code, reason)
            except Exception:  # already gone: nothing left to close
                log.debug("websocket close failed", exc_info=True)

    def abort(self, why: str) -> None:
        """Drop the connection without a close handshake (a destination that stopped
        reading would block a send forever): ``why`` is what ended it."""
        self._lost(why, normal=False)
        connection = self._connection
        if connection is not None:
            try:
                connection.socket.shutdown(socket.SHUT_RDWR)
            except OSError:  # already gone
                pass
            connection.socket.close()

    def _lost(self, why: str, *, normal: bool) -> None:
        if self.ended is None and not self._closing:
            self.ended = why
            self.ended_normally = normal

    def _read(self) -> None:
        connection = self._connection
        assert connection is not None
        try:
            for message in connection:
                if self.on_message is not None:
                    try:
                        data = json.loads(message)
                    except (TypeError, ValueError, RecursionError):
                        data = message
                    try:
                        self.on_message(data)
                    except Exception:  # a message we could not handle must not end the reading
                        log.warning(
                            "websocket message from %s not handled", self.url, exc_info=True
                        )
        except ConnectionClosed as exc:
            received = exc.rcvd
            code = received.code if received is not None else None
            self._lost(
                f"the app closed the connection abnormally (code {code})"
                if code is not None
                else "the connection was lost without a close frame",
                normal=False,
            )
            return
        except OSError as exc:
            self._lost(f"the connection to {self.url} broke: {exc}", normal=False)
            return
        code = connection.close_code
        self._lost(f"the app closed the connection (code {code})", normal=code in (1000, 1001))
