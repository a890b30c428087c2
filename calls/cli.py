"""``flask voice call``: place a call from the command line, through ``place_call``.

app.py adds it to the ``flask voice`` group of callbacks.cli.
"""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("call")
@with_appcontext
@click.argument("to")
@click.option("--flow", "flow", help="The flow that answers the call (default: routing).")
@click.option("--state", default="{}", help="The handlers' starting event.state, as JSON.")
def call(to: str, flow: str | None, state: str) -> None:
    """Place a call to TO through the configured Voice API (the sandbox by default).

    With the sandbox, the running server executes the call: be the callee at
    /sandbox/sandbox-control/.
    """
    from marshmallow import ValidationError

    from calls.errors import ConnectionFailed, VoiceApiError
    from calls.outbound import place_call

    try:
        initial = json.loads(state)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--state") from None
    if not isinstance(initial, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--state")
    try:
        with current_app.test_request_context():
            body = place_call(to=to, flow=flow, state=initial)
    except ValidationError as exc:
        raise click.ClickException(f"the call was refused: {exc.messages}") from None
    except ConnectionFailed as exc:
        raise click.ClickException(
            f"{exc} (with the sandbox, the running server places the call: is it up at "
            f"{current_app.config['PUBLIC_BASE_URL']}, with the same PORT and VOICE_FLOWS?)"
        ) from None
    except (ValueError, VoiceApiError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"placed {body.get('callId')} to {to}" + (f" (flow {flow})" if flow else ""))
