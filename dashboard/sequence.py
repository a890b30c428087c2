"""A call's callbacks as a sequence diagram: Bandwidth on the left, the app on the right,
one arrow per callback (its event type) and one back (our HTTP status, how long we took,
the verbs we answered with).

Drawn on the server like the chart: this module computes the geometry, the template
(``dashboard/_sequence.html``) writes SVG elements with classes styled by the stylesheet,
so the page needs no script and no inline style.  Each arrow links to its entry in the
timeline below, and has a ``<title>`` (a tooltip, and its name for a screen reader).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bxml.errors import BxmlError
from bxml.safe_xml import parse_document
from dashboard.summary import epoch

WIDTH = 430  # narrow enough to stay legible on a phone without scrolling sideways
BANDWIDTH_X = 105
APP_X = 370
HEAD = 44  # the lane names' boxes
ROW = 58  # one callback: its arrow, then the reply's
REPLY_DROP = 24
LABEL_CHARS = 44
MAX_VERBS = 3


@dataclass
class Arrow:
    y: float
    x1: float
    x2: float
    label: str
    kind: str  # "request", "reply" or "create"
    title: str
    href: str
    abnormal: bool = False
    other_leg: bool = False  # a callback of a transfer's agent leg, drawn on the caller's

    @property
    def label_x(self) -> float:
        return (self.x1 + self.x2) / 2


@dataclass
class Row:
    y: float
    offset: str  # "+1.25 s" since the first message
    arrows: list[Arrow] = field(default_factory=list)


@dataclass
class Diagram:
    width: int
    height: int
    bandwidth_x: int
    app_x: int
    app_name: str
    rows: list[Row]
    description: str
    origin: float | None = None  # epoch seconds the offsets count from


def origin_of(rows: list[dict[str, Any]], outbound: dict[str, Any] | None) -> float | None:
    """When a call began, as far as the store knows (epoch seconds, our clock): the earliest
    of its create-call request, the callbacks' arrival and, since the first stored callback
    may come long after the call started, each arrival less the time Bandwidth says passed
    between the call's ``startTime`` and that callback's ``eventTime`` (a difference, so
    Bandwidth's clock need not agree with ours); None when nothing of it is stored."""
    times = [row["received_at"] for row in rows if row.get("received_at") is not None]
    for row in rows:
        payload = row.get("payload")
        if isinstance(payload, dict) and row.get("received_at") is not None:
            start, sent = epoch(payload.get("startTime")), epoch(payload.get("eventTime"))
            if start is not None and sent is not None and sent >= start:
                times.append(row["received_at"] - (sent - start))
    if outbound is not None and outbound.get("created_at") is not None:
        times.append(outbound["created_at"])
    return min(times) if times else None


def verbs_of(reply: str | None) -> list[str]:
    """The top-level verbs of a stored BXML reply (``[]`` for none or not XML)."""
    if not reply or not reply.strip():
        return []
    try:
        root = parse_document(reply)
    except BxmlError:
        return ["(not XML)"]
    return [str(child.tag) for child in root]


def _shown_verbs(reply: str | None) -> list[str]:
    """The verbs a reply's label names: what the call does, not the state it keeps."""
    return [verb for verb in verbs_of(reply) if verb != "Tag"]


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _reply_label(row: dict[str, Any]) -> str:
    parts = [f"HTTP {row.get('reply_status')}"]
    if row.get("latency_ms") is not None:
        parts.append(f"{float(row['latency_ms']):.1f} ms")
    verbs = _shown_verbs(row.get("reply_body"))
    if verbs:
        shown = ", ".join(verbs[:MAX_VERBS])
        parts.append(shown + (f" +{len(verbs) - MAX_VERBS}" if len(verbs) > MAX_VERBS else ""))
    elif row.get("reply_status") == 200 and row.get("reply_body") is not None:
        parts.append("empty Response")
    return " · ".join(parts)


def offset(seconds: float) -> str:
    """Seconds since the call began, as the diagram and the transcript show them."""
    if seconds < 0:
        return f"-{-seconds:.2f} s" if seconds > -100 else f"-{-seconds:.0f} s"
    return f"+{seconds:.2f} s" if seconds < 100 else f"+{seconds:.0f} s"


def build(
    rows: list[dict[str, Any]],
    outbound: dict[str, Any] | None,
    app_name: str = "App",
    *,
    agent_rows: list[dict[str, Any]] | None = None,
    page_of: Callable[[str], str] | None = None,
    origin: float | None = None,
) -> Diagram:
    """The diagram of one call's stored callbacks (``events_for_call``) and its create-call
    attempt, in the order they happened; ``agent_rows`` are the callbacks of the agent legs
    its transfers created, drawn in place and linking to their own pages (``page_of``).
    Offsets count from ``origin`` (default: the first message drawn)."""
    others = agent_rows or []
    if origin is None:
        origin = origin_of(rows + others, outbound)
    if origin is None:
        origin = 0.0
    drawn: list[Row] = []
    y = float(HEAD + 28)
    lines = []
    if outbound is not None:
        outcome = str(outbound.get("outcome") or "pending")
        label = f"Create call · {outcome}"
        drawn.append(
            Row(
                y,
                offset((outbound.get("created_at") or origin) - origin),
                [
                    Arrow(
                        y,
                        APP_X,
                        BANDWIDTH_X,
                        label,
                        "create",
                        f"The app asked Bandwidth to place this call: {outcome}",
                        "#outbound",
                        abnormal=outcome not in ("created", "pending"),
                    )
                ],
            )
        )
        lines.append(label)
        y += ROW - REPLY_DROP
    merged = sorted(
        [(row, False) for row in rows] + [(row, True) for row in others],
        key=lambda item: (item[0]["received_at"], item[0]["id"]),
    )
    for row, other_leg in merged:
        event = str(row.get("event_type") or row.get("route") or "callback")
        cause = row.get("cause")
        request = ("agent: " if other_leg else "") + event + (f" ({cause})" if cause else "")
        reply = _reply_label(row)
        status = int(row.get("reply_status") or 0)
        href = f"#event-{row['id']}"
        if other_leg and page_of is not None:
            href = page_of(str(row.get("call_id"))) + href
        leg = f" on the agent's leg {row.get('call_id')}" if other_leg else ""
        drawn.append(
            Row(
                y,
                offset(row["received_at"] - origin),
                [
                    Arrow(
                        y,
                        BANDWIDTH_X,
                        APP_X,
                        _short(request),
                        "request",
                        f"Bandwidth sent {event}{leg} ({row.get('method')} /callbacks/"
                        f"{row.get('route')})",
                        href,
                        abnormal=bool(cause) and cause != "hangup",
                        other_leg=other_leg,
                    ),
                    Arrow(
                        y + REPLY_DROP,
                        APP_X,
                        BANDWIDTH_X,
                        _short(reply),
                        "reply",
                        f"The app answered {event}{leg}: {reply}",
                        href,
                        abnormal=status >= 400 or bool(row.get("error_detail")),
                        other_leg=other_leg,
                    ),
                ],
            )
        )
        lines.append(f"{request}: {reply}")
        y += ROW
    height = int(y + 8)
    description = "; ".join(lines) if lines else "No callback of this call is stored."
    return Diagram(WIDTH, height, BANDWIDTH_X, APP_X, app_name, drawn, description, origin)
