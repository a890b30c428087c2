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

    @app.get("/cpus")
    def cpus() -> str:
        """``pid cpu,cpu,...``: the worker and the CPUs it may run on."""
        return f"{os.getpid()} {','.join(map(str, sorted(os.sched_getaffinity(0))))}"

    return app
