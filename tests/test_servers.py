"""The test servers' ports: bound once and handed over, never released for a rival to take."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from tests.servers import closed_port, listening_socket, port_of, serve_on


def _taken(port: int) -> bool:
    with socket.socket() as rival:
        try:
            rival.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_a_closed_port_refuses_connections_and_nobody_can_take_it():
    port = closed_port()
    assert _taken(port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_server_takes_over_its_socket_with_no_gap(app):
    sock = listening_socket()
    port = port_of(sock)
    assert _taken(port)  # from the moment its number is known
    server = serve_on(sock, app, threaded=True)
    assert _taken(port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with requests.Session() as http:
            http.trust_env = False
            assert http.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["store"].dispose()
