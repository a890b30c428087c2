"""bench_callbacks.py --no-linger: the app whose commits never wait for the rest of a burst
(store.group_commit.LINGER_SECONDS = 0), to measure what that wait gains against the app as
shipped in the same run (NORMAL and PostgreSQL: with FULL the app does not wait anyway)."""

from __future__ import annotations

from flask import Flask

from app import create_app as create_real_app
from store import group_commit


def create_app() -> Flask:
    group_commit.LINGER_SECONDS = 0.0
    return create_real_app()
