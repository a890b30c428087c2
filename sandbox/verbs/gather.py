"""Gather: collect digits while the prompts play, then send ``gather`` to ``gatherUrl``.

Digits come from the callee's script (one ``gatherDigits`` entry per Gather), digits pressed
earlier and kept, and the control API.  It ends at a terminating digit, ``maxDigits``, or
``firstDigitTimeout``/``interDigitTimeout`` of silence; the prompts play ``repeatCount``
times until the first digit.  Without ``gatherUrl`` the document just continues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bxml
from sandbox import heard
from sandbox.verbs.timed import duration

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg


def gather(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    terminators = str(attrs.get("terminatingDigits", ""))
    max_digits = int(attrs.get("maxDigits", 50))  # type: ignore[call-overload]
    inter = float(attrs.get("interDigitTimeout", 5))  # type: ignore[arg-type]
    first = float(attrs.get("firstDigitTimeout", 5))  # type: ignore[arg-type]
    repeat = int(attrs.get("repeatCount", 1))  # type: ignore[call-overload]
    collected: list[str] = []
    state = {"terminator": ""}

    def feed(pressed: str) -> bool:
        for digit in pressed:
            if digit in terminators:
                state["terminator"] = digit
                return True
            collected.append(digit)
            if len(collected) >= max_digits:
                return True
        return False

    scripted = _scripted_digits(call, leg)
    if scripted:
        heard.add(call, leg, "pressed", scripted)
    pending = call.buffers.pop(leg.call_id, "") + scripted
    done = feed(pending) if pending else False
    call.gathering = leg.call_id
    try:
        if not done and not collected:
            for prompt in verb.children * repeat:
                heard.verb(call, leg, prompt)
                pressed = call.wait(duration(call.settings, prompt), digits=True, playing=True)
                if pressed:
                    done = feed(pressed)
                    break
        while not done:
            pressed = call.wait(inter if collected else first, digits=True)
            if not pressed:
                break
            done = feed(pressed)
    finally:
        call.gathering = None
    digits = "".join(collected)
    call.note(f"Gather: digits {digits!r}, terminatingDigit {state['terminator']!r}")
    if "gatherUrl" not in attrs:
        return None
    return call.bxml_callback(
        leg,
        call.hook(attrs, base, "gather"),
        "gather",
        {"digits": digits, "terminatingDigit": state["terminator"]},
    )


def _scripted_digits(call: Call, leg: Leg) -> str:
    script = call.script_of(leg)
    key = f"gatherCursor:{leg.call_id}"
    cursor = int(call.program.get(key, 0))
    if cursor >= len(script.gather_digits):
        return ""
    call.program[key] = cursor + 1
    return script.gather_digits[cursor]


UNITS = {"Gather": gather}
