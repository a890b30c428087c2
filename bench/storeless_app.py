"""bench_callbacks.py --ceiling: the app with its store write replaced by an instant
"inserted", nothing written.  Never for serving calls: it acknowledges what it does not
keep.  It measures how fast the app could answer if storing cost nothing, which tells the
write path's share of the gap to the hand-written route from the rest of the request's."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app import create_app as create_real_app
from store.core import Store
from store.inserts import INSERTED, CallbackResult


def create_app() -> Flask:
    def record_nothing(self: Store, record: Any, *, timeout: float | None = None) -> CallbackResult:
        return INSERTED

    Store.record_callback = record_nothing  # type: ignore[method-assign]
    return create_real_app()
