"""The kit's tests drive the demo IVR, click-to-call and the flows of tests/kit/flows.py,
on SQLite and, where the store's and the sandbox's state matter, on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

IVR_NUMBER = "+12025550199"  # no flow claims it: the demo IVR (the default flow) answers
CALLER = "+12025550111"
SALES, SUPPORT = "+12025550142", "+12025550143"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request) -> Any:
    """None (the kit's own SQLite file), then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    from tests.pg import fresh_postgres_url

    with fresh_postgres_url() as url:
        yield url


@pytest.fixture
def voice_app_config() -> dict[str, Any]:
    return {"VOICE_FLOWS": "examples.ivr,tests.kit.flows"}
