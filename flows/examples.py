"""Example flows: click-to-call and a one-digit menu.

Click-to-call: the app calls the visitor with tag state ``{"flow": "click-to-call"}``; on
answer it connects them to CLICK_TO_CALL_AGENT with a <Transfer>.  The agent's number comes
from configuration, never from the tag (anyone who sees the tag could read it).

Any other answered call hears a menu: 1 repeats the greeting, 2 says goodbye.
"""

from __future__ import annotations

from flask import current_app

import config
from bxml import Gather, Hangup, PhoneNumber, Response, SpeakSentence, Transfer
from callbacks import CallbackEvent, voice

MENU = "Hello from the Bandwidth callbacks demo. Press 1 to hear this again, or 2 to hang up."


@voice.on("answer")
def answer(event: CallbackEvent) -> Response:
    if event.state.get("flow") == "click-to-call":
        return connect_to_agent(event)
    return menu()


def connect_to_agent(event: CallbackEvent) -> Response:
    agent = config.click_to_call_agent(current_app.config)
    if not agent:
        return Response(SpeakSentence("Sorry, no agent is available right now. Goodbye."), Hangup())
    auth = voice.credentials()
    return Response(
        voice.tag({**event.state, "step": "connecting"}),
        SpeakSentence("Thanks for your request. Connecting you to an agent now."),
        Transfer(
            PhoneNumber(
                agent,
                transfer_answer_url=voice.url("transferAnswer"),
                transfer_disconnect_url=voice.url("transferDisconnect"),
                **auth,
            ),
            transfer_complete_url=voice.url("transferComplete"),
            **auth,
        ),
    )


def menu() -> Response:
    return Response(
        Gather(
            SpeakSentence(MENU),
            gather_url=voice.url("gather"),
            max_digits=1,
            first_digit_timeout=5,
            **voice.credentials(),
        ),
        SpeakSentence("We did not hear a choice. Goodbye."),
    )


@voice.on("gather")
def gather(event: CallbackEvent) -> Response:
    if event.digits == "1":
        return menu()
    return Response(SpeakSentence("Goodbye."), Hangup())


@voice.on("transferAnswer")
def agent_answered(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("You have a click-to-call visitor on the line."))


@voice.on("transferComplete")
def transfer_complete(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("The agent has left the call. Goodbye."), Hangup())
