"""The shipped server's thread hand-off (webserver.PooledWSGI), driven in process."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from arrival import ARRIVED, ARRIVED_AT
from webserver import PooledWSGI


class RecordingConnection:
    """Stands in for Tornado's HTTP connection: keeps what the server writes."""

    def __init__(self) -> None:
        self.written: list[tuple[Any, HTTPHeaders, bytes]] = []

    def write_headers(self, start_line: Any, headers: HTTPHeaders, chunk: bytes) -> None:
        self.written.append((start_line, headers, chunk))

    def finish(self) -> None:
        pass

    def set_close_callback(self, callback: Any) -> None:
        pass


def test_a_request_is_stamped_on_arrival_before_it_waits_for_a_thread():
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["arrived"], seen["arrived_at"] = environ[ARRIVED], environ[ARRIVED_AT]
        seen["called"] = time.perf_counter()
        start_response("204 No Content", [])
        return []

    release = threading.Event()
    connection = RecordingConnection()
    request = HTTPServerRequest(
        start_line=RequestStartLine("POST", "/callbacks/answer", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "127.0.0.1"}),
        body=b"{}",
        connection=connection,  # type: ignore[arg-type]
    )
    before = time.time()
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(release.wait, 30)  # the only thread is busy
        container = PooledWSGI(app, executor, max_target=0)

        async def deliver() -> float:
            handling = asyncio.ensure_future(container.handle_request(request))
            deadline = time.monotonic() + 10
            while container.in_flight == 0:  # read, stamped and waiting for the thread
                assert time.monotonic() < deadline, "the request never reached the pool"
                await asyncio.sleep(0)
            waiting = time.perf_counter()
            release.set()
            await handling
            return waiting

        try:
            waiting = asyncio.run(deliver())
        finally:
            release.set()
    assert seen["arrived"] <= waiting < seen["called"]
    assert before <= seen["arrived_at"] <= time.time()
    [(start_line, _, _)] = connection.written
    assert start_line.code == 204
