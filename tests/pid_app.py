"""A WSGI app for server tests: it answers with the id of the worker process that ran it."""

from __future__ import annotations

import os

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/callbacks/")
    def up() -> str:
        return "up"

    @app.get("/pid")
    def pid() -> str:
        return str(os.getpid())

    return app
