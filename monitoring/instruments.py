"""The app's Prometheus metrics (``prometheus_client``), and their exposition.

One :class:`Instruments` per app (``app.extensions["metrics"]``).  Outside gunicorn each app
has a registry of its own.  Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set by
gunicorn.conf.py before anything imports prometheus_client) every worker writes its values
to files in that directory, and a scrape answered by any worker adds up the files of all
of them (``MultiProcessCollector``), the workers that have exited included, so counters
never go back.  The spool depth is read at scrape time from the server's spool file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

PREFIX = "voice"
STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HANDLER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)


def multiprocess_directory() -> str | None:
    """The directory of the workers' metric files when running under gunicorn, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class SpoolDepth(Collector):
    """``voice_spool_depth``: callbacks waiting in this server's spool file, read on scrape."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            f"{PREFIX}_spool_depth",
            "Callbacks acknowledged into this server's spool file, waiting for the database",
            value=self.depth(),
        )


class Instruments:
    """Every metric the app keeps."""

    def __init__(self, spool_depth: Callable[[], int]) -> None:
        self.directory = multiprocess_directory()
        # Multiprocess mode: values live in the workers' files, not in a registry.
        own = None if self.directory else CollectorRegistry(auto_describe=True)
        self.registry = own
        self.spool = SpoolDepth(spool_depth)
        self.callbacks = Counter(
            f"{PREFIX}_callbacks",
            "Callbacks received, by route, the status we answered and what went wrong",
            ["route", "status", "category"],
            registry=own,
        )
        self.handler_seconds = Histogram(
            f"{PREFIX}_handler_seconds",
            "Time a flow's handler took to answer a callback (routing, handler, BXML checks)",
            ["route"],
            buckets=HANDLER_BUCKETS,
            registry=own,
        )
        self.store_seconds = Histogram(
            f"{PREFIX}_store_write_seconds",
            "Time a callback waited for the store: committed, found a duplicate, or spooled",
            ["outcome"],
            buckets=STORE_BUCKETS,
            registry=own,
        )
        self.disconnects = Counter(
            f"{PREFIX}_disconnects",
            "Calls ended (disconnect callbacks stored once each), by Bandwidth's cause",
            ["cause"],
            registry=own,
        )
        self.placements = Counter(
            f"{PREFIX}_click_to_call_placements",
            "Click-to-call requests sent to the Voice API, by outcome "
            "(placed, unknown, failed, temporary-failure)",
            ["outcome"],
            registry=own,
        )
        self.refusals = Counter(
            f"{PREFIX}_click_to_call_refusals",
            "Click-to-call requests refused before a call was placed, by reason",
            ["reason"],
            registry=own,
        )
        if own is not None:
            own.register(self.spool)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """Every metric (this app's, or every worker's under gunicorn) and its content type:
        Prometheus' text format, or OpenMetrics when the scraper's ``Accept`` asks for it."""
        registry: Any = self.registry
        if self.directory:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
            registry.register(self.spool)
        encode, content_type = choose_encoder(accept or "")
        return encode(registry), content_type
