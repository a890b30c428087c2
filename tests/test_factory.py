"""The factory honours its test mapping, reads the environment, and starts safely bare."""

from __future__ import annotations

import pytest

import config
from app import create_app


def test_test_config_is_applied(app):
    assert app.testing
    assert app.config["CALLBACK_USERNAME"] == "bandwidth"


def test_environment_is_read_when_no_test_config(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("CALLBACK_USERNAME", "from-env")
    monkeypatch.setenv("CALLBACK_PASSWORD", "from-env-password")
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    monkeypatch.setenv("SECRET_KEY", "env-secret")
    monkeypatch.setenv("DASHBOARD_PASSWORD", "env-dash")
    app = create_app()
    assert app.config["CALLBACK_USERNAME"] == "from-env"
    assert app.config["TRUSTED_PROXIES"] == 1
    assert app.config["VOICE_BACKEND"] == "sandbox"


def test_bad_number_in_environment_names_the_variable():
    with pytest.raises(config.ConfigError, match="TRUSTED_PROXIES"):
        config.from_environ({"TRUSTED_PROXIES": "many"})


def test_bare_start_generates_secrets_once(tmp_path):
    cfg = {"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    first: dict = dict(cfg)
    config.ensure_secret_key(first, str(tmp_path))
    generated = config.ensure_dashboard_password(first, str(tmp_path))
    assert len(first["SECRET_KEY"]) >= 32
    assert generated and generated not in ("dev", "admin", "password")
    second: dict = dict(cfg)
    config.ensure_secret_key(second, str(tmp_path))
    assert config.ensure_dashboard_password(second, str(tmp_path)) == generated
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_configured_dashboard_password_is_kept(tmp_path):
    cfg = {"DASHBOARD_PASSWORD": "chosen"}
    assert config.ensure_dashboard_password(cfg, str(tmp_path)) is None
    assert cfg["DASHBOARD_PASSWORD"] == "chosen"


@pytest.mark.parametrize(
    ("extra", "pairs"),
    [
        ({}, []),
        ({"CALLBACK_USERNAME": "u", "CALLBACK_PASSWORD": "p"}, [("u", "p")]),
        ({"CALLBACK_CREDENTIALS": "a:1, b:2:3"}, [("a", "1"), ("b", "2:3")]),
    ],
)
def test_parse_credentials(extra, pairs):
    assert config.parse_credentials(extra) == pairs


def test_parse_credentials_rejects_a_bad_pair():
    with pytest.raises(config.ConfigError, match="user:password"):
        config.parse_credentials({"CALLBACK_CREDENTIALS": "nopassword"})


def test_trusted_hosts_reject_a_spoofed_host(app_config):
    app = create_app({**app_config, "TRUSTED_HOSTS": "cb.example.com"})
    client = app.test_client()
    assert client.get("/callbacks/answer", headers={"Host": "evil.example"}).status_code == 400


def test_healthz_reports_the_store(client, app_config):
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json()["status"] == "ok"

    from app import create_app

    dead = create_app({**app_config, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"})
    reply = dead.test_client().get("/healthz")
    assert reply.status_code == 503
    assert reply.get_json()["status"] == "store unavailable"


@pytest.mark.parametrize("waiting", ["path", "replaying_path"])
def test_healthz_says_spooled_while_a_spool_or_a_failed_replay_batch_waits(app, client, waiting):
    from store import get_store

    assert client.get("/healthz").get_json()["spooled"] is False
    with open(getattr(get_store(app).spool, waiting), "w") as batch:
        batch.write('{"v": 1, "kind": "callback", "row": {}}\n')  # as a failed replay leaves it
    assert client.get("/healthz").get_json()["spooled"] is True
