"""Replay: what would the app answer now to a callback it stored earlier?

The stored payload is answered again by the app's flows as they are *now*, side-effect
free (see callbacks.dryrun: nothing is stored, no call is placed; refused attempts are
listed on the result page), and the reply is compared with the one stored at the time.
``request`` inside the handler is the operator's POST, not Bandwidth's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from flask import Flask, current_app
from markupsafe import Markup

from callbacks.dryrun import dry_run
from callbacks.redact import mask_passwords, masked
from callbacks.tags import readable_tags
from dashboard.bxml_view import DiffLine, diff, highlight, pretty


@dataclass
class ReplayResult:
    event: dict[str, Any]
    stored_reply: str | None
    reply: str | None = None
    error: str | None = None
    error_detail: str | None = None
    refused: list[str] = field(default_factory=list)
    diff: list[DiffLine] = field(default_factory=list)
    stored_html: Markup = field(default_factory=Markup)
    reply_html: Markup = field(default_factory=Markup)

    @property
    def same(self) -> bool:
        return self.error is None and not self.diff


def replay(row: dict[str, Any]) -> ReplayResult:
    """Run the current flows on a stored callback ``row`` (from ``events_for_call``)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    # Both replies, and the handler's error, are shown with every password masked.
    result = ReplayResult(event=row, stored_reply=masked(row.get("reply_body")))
    if not isinstance(row.get("payload"), dict):
        result.error = "The stored payload is not a JSON object."
        return result
    run = dry_run(app, row["payload"], row.get("route"))
    result.reply, result.error, result.error_detail = (
        masked(run.reply),
        masked(run.error),
        masked(run.error_detail),
    )
    result.refused = [mask_passwords(line) for line in run.refused]
    # Signed tag state carries its signing time: compare (and show) what it says, indented
    # so that the difference is the lines that changed, not the whole document.
    payload = row["payload"]
    ids = {"call_id": payload.get("callId"), "parent_call_id": payload.get("parentCallId")}
    readable = partial(readable_tags, secret=app.config["SECRET_KEY"], **ids)
    stored = pretty(result.stored_reply, readable)
    result.stored_html = highlight(stored)
    if result.error is None:
        now = pretty(result.reply, readable)
        result.reply_html = highlight(now)
        result.diff = diff(stored, now)
    return result
