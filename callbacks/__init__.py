"""The inbound edge: the routes Bandwidth calls, their credentials, typed events, tag state,
and call flows.

Public names: ``Flow`` (a named group of handlers: ``@flow.on("initiate")``),
``init_app(app, flows=...)`` (routes, store and flows on any Flask app), ``FlowRegistry``
(an app's flows: ``app.extensions["flows"]``), ``voice`` (the reply helpers ``url``,
``credentials``, ``tag``), ``CallbackEvent``, ``FlowError``, ``bp`` (the blueprint),
``encode_state`` and ``decode_state``.
"""

from callbacks.events import CallbackEvent
from callbacks.flow import Flow, FlowError
from callbacks.helpers import voice
from callbacks.routing import FlowRegistry
from callbacks.setup import init_app
from callbacks.tags import decode_state, encode_state
from callbacks.views import bp

__all__ = [
    "CallbackEvent",
    "Flow",
    "FlowError",
    "FlowRegistry",
    "bp",
    "decode_state",
    "encode_state",
    "init_app",
    "voice",
]
