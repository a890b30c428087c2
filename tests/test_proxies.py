"""X-Forwarded-For is read only from the listed proxies; unsafe settings warn at start-up."""

from __future__ import annotations

import logging

import pytest

import config
from app import create_app
from proxies import parse_addresses, peer_is_trusted

CLIENT = "198.51.100.9"


def _whoami() -> str:
    from flask import request

    return str(request.remote_addr)


def _seen_address(app, peer: str, headers: dict[str, str] | None = None) -> str:
    """The client address the app sees for a request from ``peer`` that forwards CLIENT."""
    if "whoami" not in app.view_functions:
        app.add_url_rule("/_whoami", "whoami", _whoami)
    reply = app.test_client().get(
        "/_whoami",
        headers={"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https", **(headers or {})},
        environ_base={"REMOTE_ADDR": peer},
    )
    return reply.get_data(as_text=True)


@pytest.mark.parametrize(
    ("addresses", "peer", "seen"),
    [
        ("10.0.0.5", "10.0.0.5", CLIENT),
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),  # straight to the server: no say
        ("10.0.1.0/24, 192.0.2.1", "10.0.1.77", CLIENT),
        ("10.0.1.0/24, 192.0.2.1", "10.0.2.77", "10.0.2.77"),
        ("2001:db8::/64", "2001:db8::9", CLIENT),
        ("10.0.0.5", "::ffff:10.0.0.5", CLIENT),
        ("unix", "", CLIENT),
        ("10.0.0.5", "", ""),
    ],
)
def test_only_listed_proxies_are_believed(app_config, addresses, peer, seen):
    app = create_app({**app_config, "TRUSTED_PROXIES": 1, "TRUSTED_PROXY_ADDRESSES": addresses})
    assert _seen_address(app, peer) == seen


def test_without_trusted_proxies_nobody_is_believed(app_config):
    app = create_app({**app_config, "TRUSTED_PROXY_ADDRESSES": "10.0.0.5"})
    assert _seen_address(app, "10.0.0.5") == "10.0.0.5"


def test_trusting_every_peer_warns_at_start_up(app_config, caplog):
    with caplog.at_level(logging.WARNING, logger="proxies"):
        app = create_app({**app_config, "TRUSTED_PROXIES": 1})
    assert "without TRUSTED_PROXY_ADDRESSES" in caplog.text
    assert _seen_address(app, "203.0.113.7") == CLIENT  # what the warning is about
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="proxies"):
        create_app({**app_config, "TRUSTED_PROXIES": 1, "TRUSTED_PROXY_ADDRESSES": "0.0.0.0/0"})
    assert "includes every address (0.0.0.0/0)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="proxies"):
        create_app({**app_config, "TRUSTED_PROXIES": 1, "TRUSTED_PROXY_ADDRESSES": "10.0.0.5"})
        create_app(app_config)
    assert caplog.text == ""


def test_the_setting_is_read_from_the_environment(monkeypatch, tmp_path):
    environment = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}",
        "SECRET_KEY": "env-secret",
        "DASHBOARD_PASSWORD": "env-dash",
        "TRUSTED_PROXIES": "1",
        "TRUSTED_PROXY_ADDRESSES": "10.0.0.5",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    app.testing = True
    assert _seen_address(app, "203.0.113.7") == "203.0.113.7"
    assert _seen_address(app, "10.0.0.5") == CLIENT


@pytest.mark.parametrize("raw", ["proxy.internal", "10.0.0.0/33", " , "])
def test_bad_addresses_name_the_setting(app_config, raw):
    with pytest.raises(config.ConfigError, match="TRUSTED_PROXY_ADDRESSES"):
        create_app({**app_config, "TRUSTED_PROXIES": 1, "TRUSTED_PROXY_ADDRESSES": raw})


def test_peer_checks():
    networks, unix = parse_addresses(["10.0.0.0/8"])
    assert (networks, unix) == (parse_addresses("10.0.0.0/8")[0], False)
    assert peer_is_trusted("10.1.2.3", networks, unix)
    assert not peer_is_trusted("not-an-address", networks, unix)
    assert not peer_is_trusted(None, networks, unix)


def test_the_readme_multi_server_example_is_the_safe_set_up(app_config, caplog):
    """Started as the README's multi-server example says, the app warns about nothing and
    believes only the balancer."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("On every server:", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    words = shlex.split(block.replace("\\\n", " "), comments=True)
    settings = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    assert "0.0.0.0" not in words[words.index("--bind") + 1]
    keys = ("TRUSTED_PROXIES", "TRUSTED_PROXY_ADDRESSES", "TRUSTED_HOSTS")
    example = {**app_config, **config.from_environ({k: settings[k] for k in keys})}
    with caplog.at_level(logging.WARNING, logger="proxies"):
        app = create_app(example)
    assert caplog.text == ""
    balancer = settings["TRUSTED_PROXY_ADDRESSES"].split(",")[0]
    host = {"Host": settings["TRUSTED_HOSTS"], "X-Forwarded-Host": settings["TRUSTED_HOSTS"]}
    assert _seen_address(app, balancer, host) == CLIENT
    assert _seen_address(app, "203.0.113.7", host) == "203.0.113.7"
