"""The hand-written baseline of bench_callbacks.py: what a competent developer writes.

HTTP Basic with a constant-time compare, ``json.loads``, one INSERT per request on a
per-thread connection (SQLite in WAL mode, or PostgreSQL in autocommit), a constant BXML
reply.  No validation, dedupe or spool.  Settings from the environment:

``HAND_DATABASE``     a SQLite file path, or a postgresql:// URL
``HAND_SYNCHRONOUS``  SQLite's synchronous mode (FULL or NORMAL), as the app's
``HAND_AUTH``         the expected ``user:password``
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import threading
import time
from typing import Any

from flask import Flask, Response, request

from bench.bare_app import BXML

CREATE = (
    "CREATE TABLE IF NOT EXISTS hand_events (id INTEGER PRIMARY KEY, call_id TEXT,"
    " event_type TEXT, payload TEXT, received_at REAL)"
)
CREATE_PG = CREATE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
INSERT = "INSERT INTO hand_events (call_id, event_type, payload, received_at) VALUES (?, ?, ?, ?)"
INSERT_PG = INSERT.replace("?", "%s")


def connect(database: str, synchronous: str) -> Any:
    if database.startswith("postgresql://"):
        import psycopg

        return psycopg.connect(database, autocommit=True)
    import sqlite3

    conn = sqlite3.connect(database, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def create_table(database: str) -> None:
    conn = connect(database, "NORMAL")
    conn.execute(CREATE_PG if database.startswith("postgresql://") else CREATE)
    conn.close()


def create_app() -> Flask:
    app = Flask(__name__)
    database = os.environ["HAND_DATABASE"]
    synchronous = os.environ.get("HAND_SYNCHRONOUS", "FULL")
    expected = b"Basic " + base64.b64encode(os.environ["HAND_AUTH"].encode())
    insert = INSERT_PG if database.startswith("postgresql://") else INSERT
    local = threading.local()

    @app.post("/callbacks/answer")
    def answer() -> Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response("unauthorized", 401, {"WWW-Authenticate": 'Basic realm="cb"'})
        body = request.get_data()
        event = json.loads(body)
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(database, synchronous)
        conn.execute(insert, (event["callId"], event["eventType"], body.decode(), time.time()))
        return Response(BXML, 200, content_type="application/xml; charset=utf-8")

    return app
