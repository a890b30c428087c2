"""Persistence: callback events, the outage spool, and shared tables (SQLite or PostgreSQL).

``init_app(app)`` builds the app's :class:`Store` from its config without connecting;
``get_store()`` returns it.  See :mod:`store.core` for the guarantees.
"""

from __future__ import annotations

import os

from flask import Flask, current_app

from .core import CallbackResult, Durability, Outcome, Store, StoreUnavailable

__all__ = [
    "CallbackResult",
    "Durability",
    "Outcome",
    "Store",
    "StoreUnavailable",
    "get_store",
    "init_app",
]


def init_app(app: Flask) -> Store:
    """Create the app's Store from its config (no connection yet) and add ``flask store``."""
    from .cli import store_cli

    config = app.config
    url = config.get("DATABASE_URL") or "sqlite:///" + os.path.join(app.instance_path, "events.db")
    spool_path = config.get("SPOOL_PATH") or os.path.join(app.instance_path, "spool.jsonl")
    busy_timeout = config.get("STORE_BUSY_TIMEOUT")
    rejected_limit = config.get("REJECTED_LOG_LIMIT")
    store = Store(
        url,
        spool_path=spool_path,
        busy_timeout=5.0 if busy_timeout is None else float(busy_timeout),
        rejected_limit=1000 if rejected_limit is None else int(rejected_limit),
        sqlite_synchronous=str(config.get("STORE_SQLITE_SYNCHRONOUS") or "FULL"),
    )
    app.extensions["store"] = store
    from .health import bp as health_bp

    app.register_blueprint(health_bp)
    if "store" not in app.cli.commands:
        app.cli.add_command(store_cli)
    return store


def get_store(app: Flask | None = None) -> Store:
    """The Store of ``app`` (the current app when None)."""
    target = app if app is not None else current_app
    return target.extensions["store"]  # type: ignore[no-any-return]
