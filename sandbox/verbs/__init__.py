"""One unit per simulated BXML verb (or family), looked up by verb name.

A unit is ``unit(call, leg, verb, base) -> Document | None``: it lets simulated time pass
(``call.wait``), sends its callbacks (``call.bxml_callback``/``call.async_callback``) and
returns the document that replaces the current one (a callback's BXML reply) or None to go
on with the next verb.  It ends the leg by raising ``CallEnded``.  Each module's docstring
says what its verbs do, how long they take and which callbacks they send.  Adding a verb
means adding a unit here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import bxml
from sandbox.verbs import (
    bridge,
    conference,
    control,
    forward,
    gather,
    record,
    recording,
    refer,
    stream,
    timed,
    transcription,
    transfer,
)

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

Unit = Callable[["Call", "Leg", bxml.Verb, str], "Document | None"]

UNITS: dict[str, Unit] = {
    **timed.UNITS,
    **control.UNITS,
    **gather.UNITS,
    **record.UNITS,
    **recording.UNITS,
    **transfer.UNITS,
    **forward.UNITS,
    **refer.UNITS,
    **bridge.UNITS,
    **conference.UNITS,
    **transcription.UNITS,
    **stream.UNITS,
}


def unit_for(name: str) -> Unit | None:
    """The unit simulating verb ``name``; None when the sandbox skips it."""
    return UNITS.get(name)
