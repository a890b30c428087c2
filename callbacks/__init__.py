"""The inbound edge: the routes Bandwidth calls, their credentials, typed events, tag state.

Public names: ``bp`` (the blueprint), ``voice`` (the default handler registry; register call
logic with ``@voice.on("answer")``), ``Voice``, ``CallbackEvent``, ``encode_state`` and
``decode_state``.
"""

from callbacks.events import CallbackEvent
from callbacks.registry import Voice, voice
from callbacks.tags import decode_state, encode_state
from callbacks.views import bp

__all__ = ["CallbackEvent", "Voice", "bp", "decode_state", "encode_state", "voice"]
