"""The failures-over-time chart: stacked bars per category (a cause or one of ours), drawn as inline SVG on the server.

No script and no CDN: the template draws ``<rect>`` elements with presentation attributes
(allowed by the CSP, unlike style attributes) from the geometry computed here.  The data is
the store's hourly rollup, so the chart costs one small query whatever the number of events.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_SPAN = 24 * 3600
MAX_BARS = 96
HOUR = 3600
WIDTH = 960
HEIGHT = 200
LEFT = 40
BOTTOM = 24
TOP = 8

COLOURS = {
    # Our own failure categories (store.categories): strong, distinct colours.
    "credential-failure": "#e41a1c",
    "rejected-payload": "#ff7f00",
    "handler-error": "#000000",
    "invalid-reply": "#984ea3",
    "spooled": "#377eb8",
    "busy": "#e8a33d",
    "timeout": "#8c6bb1",
    "cancel": "#6baed6",
    "rejected": "#d9534f",
    "callback-error": "#b2182b",
    "invalid-bxml": "#762a83",
    "application-error": "#c51b7d",
    "account-limit": "#e6550d",
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


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    legend: list[tuple[str, str, int]]  # cause, colour, total
    y_ticks: list[tuple[float, int]]  # y, value
    x_labels: list[tuple[float, str]]  # x, label
    since: float
    until: float
    bucket_seconds: int
    total: int
    baseline: float
    left: float

    @property
    def since_label(self) -> str:
        return _label(self.since, HOUR)

    @property
    def until_label(self) -> str:
        return _label(self.until, HOUR)


def window(
    since: float | None, until: float | None, now: float | None = None
) -> tuple[float, float]:
    """The charted range: the filter's, or the last 24 hours."""
    now = time.time() if now is None else now
    end = until if until is not None else now
    start = since if since is not None else end - DEFAULT_SPAN
    return start, end


def build(
    rollup: list[tuple[int, str, int]], since: float, until: float, *, max_bars: int = MAX_BARS
) -> Chart:
    """Chart geometry from ``(hour bucket start, cause, count)`` rows."""
    first = int(since // HOUR) * HOUR
    span = max(HOUR, until - first)
    bucket = HOUR * max(1, math.ceil(span / HOUR / max_bars))
    count = max(1, math.ceil(span / bucket))
    stacks: list[dict[str, int]] = [defaultdict(int) for _ in range(count)]
    totals: dict[str, int] = defaultdict(int)
    for start, cause, n in rollup:
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
        label = _label(first + index * bucket, bucket)
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
                )
            )
    ticks = [
        (round(baseline - plot_height * v / scale_top, 2), v)
        for v in (0, scale_top // 2, scale_top)
    ]
    step = max(1, math.ceil(count / 8))
    x_labels = [
        (round(LEFT + i * slot, 2), _label(first + i * bucket, bucket, short=True))
        for i in range(0, count, step)
    ]
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


def _label(epoch: float, bucket: int, *, short: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if bucket >= 86400:
        return moment.strftime("%m-%d") if short else moment.strftime("%Y-%m-%d")
    return moment.strftime("%d %H:%M") if short else moment.strftime("%Y-%m-%d %H:%M UTC")
