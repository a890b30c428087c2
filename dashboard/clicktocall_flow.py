"""The built-in click-to-call flow: connect the visitor to the agent once they answer.

``dashboard.clicktocall`` places the call with ``place_call(..., flow="click-to-call")``;
on answer the visitor is connected to CLICK_TO_CALL_AGENT with a <Transfer>.  The agent's
number comes from configuration, never from the tag (anyone who sees the tag could read
it).  Registered on every app the dashboard is on, whatever flows the user adds.
"""

from __future__ import annotations

from flask import current_app

import config
from bxml import Hangup, Response, SpeakSentence
from callbacks import CallbackEvent, Flow

NAME = "click-to-call"
click_to_call = Flow(NAME)


@click_to_call.on("answer")
def connect_to_agent(event: CallbackEvent) -> Response:
    agent = config.click_to_call_agent(current_app.config)
    if not agent:
        return Response(SpeakSentence("Sorry, no agent is available right now. Goodbye."), Hangup())
    return Response(
        click_to_call.tag({**event.state, "step": "connecting"}),
        SpeakSentence("Thanks for your request. Connecting you to an agent now."),
        click_to_call.transfer(agent),
    )


@click_to_call.on("transferAnswer")
def agent_answered(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("You have a click-to-call visitor on the line."))


@click_to_call.on("transferComplete")
def transfer_complete(event: CallbackEvent) -> Response:
    return Response(SpeakSentence("The agent has left the call. Goodbye."), Hangup())
