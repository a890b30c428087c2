"""Fixtures: a scripted fake Bandwidth API on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

from typing import Any

import pytest

from calls import VoiceClient
from tests.calls.fake_bandwidth import ACCOUNT_ID, API_PASSWORD, API_USER, FakeBandwidth


@pytest.fixture
def bandwidth():
    fake = FakeBandwidth()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def make_client(bandwidth):
    """Build clients against the fake API (closed at teardown); keyword overrides."""
    clients: list[VoiceClient] = []

    def make(**overrides: Any) -> VoiceClient:
        options: dict[str, Any] = {
            "account_id": ACCOUNT_ID,
            "username": API_USER,
            "password": API_PASSWORD,
            "base_url": bandwidth.base_url,
            "timeout": (2.0, 3.0),
        }
        options.update(overrides)
        client = VoiceClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def voice(make_client) -> VoiceClient:
    return make_client()
