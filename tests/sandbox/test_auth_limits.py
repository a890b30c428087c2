"""The in-app sandbox's HTTP Basic check counts wrong credentials like the dashboard."""

from __future__ import annotations

import base64

import sandbox as sandbox_package


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_wrong_sandbox_credentials_are_limited_per_address(app_config):
    from app import create_app

    app_config["DASHBOARD_LOGIN_RATE"] = "2/hour"
    app = create_app(app_config)
    client = app.test_client()
    _, user, password = sandbox_package.credentials(app.config)
    control = f"{sandbox_package.CONTROL_PREFIX}/calls"
    right, wrong = _basic(user, password), _basic(user, "guess")
    assert [client.get(control, headers=right).status_code for _ in range(3)] == [200] * 3
    assert client.get(control).status_code == 401  # no credentials: not a try
    statuses = [client.get(control, headers=wrong).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    refused = client.get(control, headers=right)
    assert refused.status_code == 429
    assert refused.get_json()["type"] == "too-many-requests"
    api = f"{sandbox_package.API_PREFIX}/accounts/9900000/calls/c-unknown"
    assert client.get(api, headers=right).status_code == 429  # the API shares the count
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get(control, headers=right, environ_base=other).status_code == 200
    app.extensions["sandbox"].close()
    app.extensions["store"].dispose()
