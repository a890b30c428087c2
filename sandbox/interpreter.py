"""The BXML interpreter: walks a document verb by verb on one leg, each verb run by its unit
(``sandbox.verbs``).  On the A-leg it saves the position before every verb, so a driver that
takes over the call resumes there; a verb no unit simulates is skipped and noted."""

from __future__ import annotations

from sandbox import heard
from sandbox.call import Call
from sandbox.execution import Document
from sandbox.inbound import answers
from sandbox.payloads import Leg
from sandbox.verbs import unit_for


class Interpreter:
    def __init__(self, call: Call) -> None:
        self.call = call

    def run(self, leg: Leg, doc: Document) -> None:
        """Execute ``doc`` on ``leg`` until its end (returns) or the leg ends (raises)."""
        call = self.call
        a_leg = leg is call.leg
        while True:
            root = call.parse(doc.text)
            if doc.pc >= len(root):
                return
            verb = root[doc.pc]
            if not a_leg:
                call.activity = f"B-leg {verb.name}"
            elif call.inbound and leg.answer_time is None and answers(verb.name, verb.attrs):
                call.program["pc"] = doc.pc
                call.note(f"{verb.name} answers the inbound call")
                call.answer(verb.name)  # saves
            else:
                call.program["pc"] = doc.pc
                call.save(verb.name)
            unit = unit_for(verb.name)
            if unit is None:
                call.note(f"{verb.name} is not simulated by the sandbox; skipped")
                replacement = None
            else:
                heard.verb(call, leg, verb)
                if "tag" in verb.attrs:
                    leg.tag = str(verb.attrs["tag"]) or None
                replacement = unit(call, leg, verb, doc.base)
            if replacement is None:
                doc.pc += 1
            else:
                doc.text, doc.base, doc.pc = replacement.text, replacement.base, 0
                if a_leg:
                    call.set_document(replacement)
