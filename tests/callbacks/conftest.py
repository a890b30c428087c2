"""Fixtures of the callback route tests: a flow of the test's own, Bandwidth's client, and
reads of what the store kept."""

from __future__ import annotations

import pytest

from callbacks import Flow
from store import get_store
from tests.callbacks.helpers import Bandwidth, basic_auth


@pytest.fixture
def voice(app):
    """A flow of this test's own, answering every call of this app."""
    return app.extensions["flows"].register(Flow("test"), default=True)


@pytest.fixture
def bandwidth(client):
    return Bandwidth(client)


def events(app, cid):
    with app.app_context():
        return get_store().events_for_call(cid)


def rejected(app):
    with app.app_context():
        return get_store().rejected()


def post_raw(client, body, content_type="application/json"):
    """POST ``body`` bytes as they are to /callbacks/disconnect, with our credentials."""
    return client.post(
        "/callbacks/disconnect", data=body, content_type=content_type, headers=basic_auth()
    )
