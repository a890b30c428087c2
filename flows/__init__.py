"""The app's own call logic: plain handler functions registered on ``callbacks.voice``.

Importing a module here registers its handlers; ``init_app`` does it once per process.
Write your own flows beside ``examples.py`` and import them below.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from flows import examples  # noqa: F401  (registers the example handlers)
