"""The app for the gunicorn test: ``app.create_app()`` with the sandbox inside it.

``create_app`` registers the sandbox itself once app.py calls ``sandbox.init_app``; until
then this adds it, so the test exercises the shipped gunicorn settings either way.
"""

from __future__ import annotations

from flask import Flask

import app as application
import sandbox


def create_app() -> Flask:
    flask_app = application.create_app()
    if "sandbox" not in flask_app.extensions:
        sandbox.init_app(flask_app)
    return flask_app
