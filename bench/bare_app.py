"""The baseline of bench_callbacks.py: a bare Flask route answering a constant BXML string."""

from __future__ import annotations

from flask import Flask, Response

BXML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Response><SpeakSentence>Hello from the benchmark</SpeakSentence></Response>"
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/callbacks/answer")
    def answer() -> Response:
        return Response(BXML, 200, content_type="application/xml; charset=utf-8")

    return app
