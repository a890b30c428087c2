"""The failures-over-time chart: stacked bars per category (a cause or one of ours), drawn as inline SVG on the server.

No script and no CDN: the template draws ``<rect>`` elements with presentation attributes
(allowed by the CSP, unlike style attributes) from the geometry computed here.  The data is
the store's hourly rollup, so the chart costs one small query whatever the number of events.

Buckets follow the range: the smallest of ``BUCKETS`` that draws it in at most
``MAX_BARS`` bars (the last 24 hours: 24 hourly bars; the last hour: 30 two-minute bars;
30 days: 30 daily bars).  Buckets start at whole multiples of their size since the epoch,
so they are aligned to UTC (days start at 00:00 UTC).  Buckets of an hour or more are
summed from the hourly rollup; shorter ones are counted from the disconnects of the range
(``Store.failures_by_bucket``), which only short ranges use.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_SPAN = 24 * 3600
MAX_BARS = 36
MINUTE = 60
HOUR = 3600
DAY = 86400
BUCKETS = (
    *(MINUTE * m for m in (1, 2, 5, 10, 15, 30)),
    *(HOUR * h for h in (1, 2, 3, 6, 12)),
    *(DAY * d for d in (1, 2, 7, 14, 28)),
)
WIDTH = 960
HEIGHT = 200
LEFT = 40
BOTTOM = 24
TOP = 8

COLOURS = {
    # One colour per category, at least 20 apart (CIE76 delta E) from every other; the
    # failures that are easy to confuse (invalid-bxml, invalid-reply, timeout) stay far
    # apart for red-green colour blindness too (Okabe-Ito and Paul Tol colours).  The
    # legend names each one, so colour is never the only clue.
    "credential-failure": "#e41a1c",
    "rejected-payload": "#ff7f00",
    "handler-error": "#000000",
    "invalid-reply": "#cc79a7",
    "spooled": "#2166ac",
    "busy": "#e8a33d",
    "timeout": "#999933",
    "cancel": "#56b4e9",
    "rejected": "#f4a582",
    "callback-error": "#b2182b",
    "invalid-bxml": "#332288",
    "application-error": "#c51b7d",
    "account-limit": "#8c510a",
    "node-capacity-exceeded": "#a63603",
    "error": "#843c39",
    "unknown": "#636363",
    "hangup": "#74c476",
}
PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]


def colour(cause: str) -> str:
    """A stable colour per cause (open vocabulary: unknown causes get a palette colour)."""
    if cause in COLOURS:
        return COLOURS[cause]
    digest = hashlib.sha256(cause.encode("utf-8", "replace")).digest()
    return PALETTE[digest[0] % len(PALETTE)]


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str
    start: int  # the bucket's start (epoch seconds), for the browser's time zone


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    legend: list[tuple[str, str, int]]  # cause, colour, total
    y_ticks: list[tuple[float, int]]  # y, value
    x_labels: list[tuple[float, int, str]]  # x, bucket start, label
    since: float
    until: float
    bucket_seconds: int
    total: int
    baseline: float
    left: float

    @property
    def since_label(self) -> str:
        return _label(self.since, MINUTE)

    @property
    def until_label(self) -> str:
        return _label(self.until, MINUTE)

    @property
    def bucket_label(self) -> str:
        return duration_label(self.bucket_seconds)


def window(
    since: float | None, until: float | None, now: float | None = None
) -> tuple[float, float]:
    """The charted range: the filter's, or the last 24 hours."""
    now = time.time() if now is None else now
    end = until if until is not None else now
    start = since if since is not None else end - DEFAULT_SPAN
    return start, end


QUICK_RANGES = (
    ("1 h", HOUR),
    ("6 h", 6 * HOUR),
    ("24 h", DAY),
    ("7 days", 7 * DAY),
    ("30 days", 30 * DAY),
)


def quick_ranges(now: float | None = None) -> list[tuple[str, str]]:
    """(label, ``since`` to the minute in UTC) of the ranges the page offers in one click."""
    now = time.time() if now is None else now
    return [
        (label, datetime.fromtimestamp(now - span, UTC).strftime("%Y-%m-%dT%H:%M"))
        for label, span in QUICK_RANGES
    ]


def bucket_for(since: float, until: float, *, max_bars: int = MAX_BARS) -> int:
    """The smallest bucket that draws ``since``..``until`` in at most ``max_bars`` bars."""
    for bucket in BUCKETS:
        first = since // bucket * bucket
        if math.ceil((until - first) / bucket) <= max_bars:
            return bucket
    return DAY * math.ceil((until - since) / DAY / (max_bars - 1))


def from_rollup(bucket: int) -> bool:
    """Whether buckets of this size are sums of the hourly rollup."""
    return bucket % HOUR == 0


def failures(store: Any, since: float, until: float) -> list[tuple[int, str, int]]:
    """The counts per failure category ``build`` draws for this range, from the rollups when
    their hours suffice; refused calls (which have no disconnect) by their hour."""
    bucket = bucket_for(since, until)
    refused: list[tuple[int, str, int]] = store.refused_over_time(since, until)
    if from_rollup(bucket):
        return list(store.categories_over_time(since, until)) + refused
    return list(store.failures_by_bucket(since, until, bucket)) + refused


def build(
    counts: list[tuple[int, str, int]], since: float, until: float, *, max_bars: int = MAX_BARS
) -> Chart:
    """Chart geometry from ``(bucket or hour start, cause, count)`` rows."""
    bucket = bucket_for(since, until, max_bars=max_bars)
    first = int(since // bucket * bucket)
    count = max(1, math.ceil((until - first) / bucket))
    stacks: list[dict[str, int]] = [defaultdict(int) for _ in range(count)]
    totals: dict[str, int] = defaultdict(int)
    for start, cause, n in counts:
        index = int((start - first) // bucket)
        if 0 <= index < count:
            stacks[index][cause] += n
            totals[cause] += n
    peak = max((sum(stack.values()) for stack in stacks), default=0)
    scale_top = _nice(peak)
    plot_width = WIDTH - LEFT - 8
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = HEIGHT - BOTTOM
    slot = plot_width / count
    bar_width = max(1.0, slot * 0.8)
    causes = sorted(totals, key=lambda c: (-totals[c], c))
    bars: list[Bar] = []
    for index, stack in enumerate(stacks):
        x = LEFT + index * slot + (slot - bar_width) / 2
        y = baseline
        start = first + index * bucket
        label = _label(start, bucket)
        for cause in causes:
            n = stack.get(cause, 0)
            if not n:
                continue
            height = plot_height * n / scale_top
            y -= height
            bars.append(
                Bar(
                    round(x, 2),
                    round(y, 2),
                    round(bar_width, 2),
                    round(height, 2),
                    colour(cause),
                    f"{label}: {cause} {n}",
                    start,
                )
            )
    ticks = [
        (round(baseline - plot_height * v / scale_top, 2), v)
        for v in (0, scale_top // 2, scale_top)
    ]
    step = max(1, math.ceil(count / 6))
    x_labels = []
    previous_day = None
    for i in range(0, count, step):
        start = first + i * bucket
        day = start // DAY
        x_labels.append(
            (round(LEFT + i * slot, 2), start, _short(start, bucket, with_day=day != previous_day))
        )
        previous_day = day
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        legend=[(c, colour(c), totals[c]) for c in causes],
        y_ticks=ticks,
        x_labels=x_labels,
        since=since,
        until=until,
        bucket_seconds=bucket,
        total=sum(totals.values()),
        baseline=baseline,
        left=LEFT,
    )


def _nice(peak: int) -> int:
    """A round axis top at or above ``peak`` (and even, so the middle tick is whole)."""
    if peak <= 2:
        return 2
    magnitude = 10 ** int(math.log10(peak))
    for factor in (1, 2, 5, 10):
        top = factor * magnitude
        if top >= peak and top % 2 == 0:
            return top
    return 10 * magnitude


def duration_label(seconds: int) -> str:
    """``15 min``, ``1 h``, ``2 days``: a bucket's size for the caption."""
    for unit, name in ((DAY, "day"), (HOUR, "h"), (MINUTE, "min")):
        if seconds >= unit and seconds % unit == 0:
            n = seconds // unit
            if name == "day":
                return f"{n} day" if n == 1 else f"{n} days"
            return f"{n} {name}"
    return f"{seconds} s"


def _label(epoch: float, bucket: int) -> str:
    """A bucket's (or the range's) full start, for tooltips and the caption."""
    moment = datetime.fromtimestamp(epoch, UTC)
    if bucket >= DAY:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _short(epoch: float, bucket: int, *, with_day: bool) -> str:
    """An axis label: the date for day buckets, else the time, with the date when it changes."""
    moment = datetime.fromtimestamp(epoch, UTC)
    if bucket >= DAY:
        return moment.strftime("%b %d")
    return moment.strftime("%b %d %H:%M" if with_day else "%H:%M")
