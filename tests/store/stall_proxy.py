"""A TCP proxy on 127.0.0.1 that can stop forwarding: a database that hangs mid-conversation.

with StallingProxy("127.0.0.1", 5432) as proxy:
    url = ...port=proxy.port...
    proxy.stall()    # connections stay open; nothing goes through either way
    proxy.resume()   # what was held goes through, and everything after it
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any


class StallingProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, name="stall-proxy", daemon=True).start()

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        with self.lock:
            everything = [self.listener, *self.sockets]
        for sock in everything:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink, seen in (
                (client, upstream, self.client_reader()),
                (upstream, client, None),
            ):
                threading.Thread(target=self._pump, args=(source, sink, seen), daemon=True).start()

    def client_reader(self) -> Callable[[bytes], None] | None:
        """Something to show each new connection's client bytes to (a subclass's)."""
        return None

    def _pump(
        self, source: socket.socket, sink: socket.socket, seen: Callable[[bytes], None] | None
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if seen is not None:
                    seen(data)
                self.flowing.wait()  # stalled: hold what was read, send nothing on
                if self.closed:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


class RoundTripCounter(StallingProxy):
    """Counts the points where a PostgreSQL client waits for the server: its Sync and
    simple Query messages (``waits``).  For a connection without TLS (sslmode=disable)."""

    def __init__(self, host: str, port: int) -> None:
        self.waits = 0
        self._count_lock = threading.Lock()
        super().__init__(host, port)

    def _count(self) -> None:
        with self._count_lock:
            self.waits += 1

    def client_reader(self) -> Callable[[bytes], None]:
        buffer = bytearray()
        started = False  # past the startup packet, which has no type byte

        def read(data: bytes) -> None:
            nonlocal started
            buffer.extend(data)
            while True:
                if not started:
                    if len(buffer) < 8 or len(buffer) < int.from_bytes(buffer[:4], "big"):
                        return
                    length, code = int.from_bytes(buffer[:4], "big"), buffer[4:8]
                    del buffer[:length]
                    # An SSL or GSS encryption request may come first, then the startup.
                    started = code not in (b"\x04\xd2\x16\x2f", b"\x04\xd2\x16\x30")
                    continue
                if len(buffer) < 5 or len(buffer) < 1 + int.from_bytes(buffer[1:5], "big"):
                    return
                kind, length = bytes(buffer[:1]), int.from_bytes(buffer[1:5], "big")
                del buffer[: 1 + length]
                if kind in (b"S", b"Q"):
                    self._count()

        return read
