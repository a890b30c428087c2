"""What handlers use to build replies: our callback URLs, their credentials, signed state.

Stateless functions of the current app's configuration; ``Flow`` exposes them as methods
and ``voice`` groups them for handlers that are not tied to one flow.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g

import bxml
from callbacks.tags import VERB_TAG_LIMIT, encode_state


def url(route: str) -> str:
    """The absolute URL of one of our callback routes, built from PUBLIC_BASE_URL only."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/callbacks/{route}"


def credentials() -> dict[str, str]:
    """``username``/``password`` attributes for verbs whose callbacks come back to us.

    Bandwidth sends Basic credentials to a verb's URL only when the verb carries them.
    Empty when no callback credentials are configured.
    """
    cfg = current_app.config
    if cfg.get("CALLBACK_USERNAME") and cfg.get("CALLBACK_PASSWORD"):
        return {"username": cfg["CALLBACK_USERNAME"], "password": cfg["CALLBACK_PASSWORD"]}
    return {}


def tag(state: dict[str, Any]) -> bxml.Tag:
    """A ``<Tag>`` verb carrying ``state``, signed, for every later callback of the call.

    Inside a handler the state is bound to the call being answered (see callbacks.tags)."""
    return bxml.Tag(
        encode_state(
            state,
            current_app.config["SECRET_KEY"],
            limit=VERB_TAG_LIMIT,
            call_id=g.get("voice_tag_call_id"),
        )
    )


def transfer(number: str, **attributes: Any) -> bxml.Transfer:
    """A ``<Transfer>`` to ``number`` (E.164, or a ``sip:`` URI) whose callbacks all come back
    to us: the agent's leg answers ``transferAnswer``/``transferDisconnect``, the caller's
    ``transferComplete``, each with our credentials.  ``attributes`` go on the Transfer."""
    auth = credentials()
    target_class = bxml.SipUri if number.startswith(("sip:", "sips:")) else bxml.PhoneNumber
    target = target_class(
        number,
        transfer_answer_url=url("transferAnswer"),
        transfer_disconnect_url=url("transferDisconnect"),
        **auth,
    )
    return bxml.Transfer(
        target, transfer_complete_url=url("transferComplete"), **auth, **attributes
    )


class _Helpers:
    """``voice.url``, ``voice.credentials``, ``voice.tag``, ``voice.transfer``: the helpers,
    without a flow."""

    url = staticmethod(url)
    credentials = staticmethod(credentials)
    tag = staticmethod(tag)
    transfer = staticmethod(transfer)


voice = _Helpers()
