"""An inbound IVR with state carried across two gathers.

A caller rings one of the flow's numbers (``initiate``), or a call placed without a flow is
answered (``answer``): they hear a menu.  The first gather picks a department, the second
asks for a 4-digit order number (sales skips it); the state between them travels in the
call's signed tag (``ivr.tag``), so any worker or server can answer the next callback.
Support callers are transferred to the department's line; the B-leg's callbacks
(``transferAnswer``) come back to this flow too.
"""

from __future__ import annotations

from bxml import Gather, Hangup, Response, SpeakSentence
from callbacks import CallbackEvent, Flow

# default=True: this flow answers every call no other flow claims.
ivr = Flow("demo-ivr", default=True)

DEPARTMENTS = {"1": ("sales", "+12025550142"), "2": ("support", "+12025550143")}
MENU = "Thanks for calling. For sales, press 1. For support, press 2."


def ask(prompt: str, *, max_digits: int) -> Gather:
    return Gather(
        SpeakSentence(prompt),
        gather_url=ivr.url("gather"),
        max_digits=max_digits,
        first_digit_timeout=5,
        **ivr.credentials(),
    )


@ivr.on("initiate")
@ivr.on("answer")
def greet(event: CallbackEvent) -> Response:
    return Response(
        ivr.tag({"step": "department"}),
        ask(MENU, max_digits=1),
    )


@ivr.on("gather")
def choice(event: CallbackEvent) -> Response:
    step = event.state.get("step")
    if not event.digits:  # the Gather timed out: its gatherUrl still gets ``gather``
        missed = "get an order number" if step == "order" else "hear a choice"
        return Response(SpeakSentence(f"We did not {missed}. Goodbye."), Hangup())
    if step == "department" and event.digits in DEPARTMENTS:
        department, _ = DEPARTMENTS[event.digits]
        if department == "sales":
            return connect(department)
        return Response(
            ivr.tag({"step": "order", "department": department}),
            ask("Please enter your 4 digit order number.", max_digits=4),
        )
    if step == "order" and event.digits and len(event.digits) == 4:
        return connect(event.state["department"], order=event.digits)
    return Response(SpeakSentence("Sorry, that is not a choice. Goodbye."), Hangup())


def connect(department: str, *, order: str | None = None) -> Response:
    number = dict(DEPARTMENTS.values())[department]
    said = f"Order {' '.join(order)}. " if order else ""
    return Response(
        SpeakSentence(f"{said}Connecting you to {department}."),
        ivr.transfer(number),  # the agent's leg comes back to this flow too
    )


@ivr.on("transferAnswer")
def agent_answered(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("A caller from the demo IVR is on the line."))


@ivr.on("transferComplete")
def transfer_complete(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("The call with our team has ended. Goodbye."), Hangup())
