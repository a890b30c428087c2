"""When a request arrived, as the server saw it: the shipped server (webserver.py) stamps
each request once it has been read whole, before it waits for a thread; the app counts a
callback's latency and receipt time from there.  Under another server (Flask's own, the
test client) there is no stamp and the app's own start stands in."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

# WSGI environ keys: time.perf_counter() and time.time() at arrival.
ARRIVED = "voice.arrived"
ARRIVED_AT = "voice.arrived_at"


def stamp() -> tuple[float, float]:
    return time.perf_counter(), time.time()


def arrival_of(environ: Mapping[str, Any]) -> tuple[float, float]:
    """(perf_counter, wall clock) of the request's arrival: the server's stamp, or now."""
    arrived, arrived_at = environ.get(ARRIVED), environ.get(ARRIVED_AT)
    if isinstance(arrived, float) and isinstance(arrived_at, float):
        return arrived, arrived_at
    return stamp()
