"""``store.init_app`` and the ``flask store`` commands, on a minimal Flask app."""

from __future__ import annotations

import time

import pytest
from flask import Flask

import store as store_package
from store import Store, get_store

from .conftest import make_record


@pytest.fixture
def app(db_url, tmp_path):
    application = Flask(__name__, instance_path=str(tmp_path / "instance"))
    application.config.update(
        TESTING=True,
        DATABASE_URL=db_url,
        SPOOL_PATH=str(tmp_path / "spool.jsonl"),
        STORE_BUSY_TIMEOUT=2.0,
        REJECTED_LOG_LIMIT=7,
        EVENT_RETENTION_DAYS=30,
    )
    store_package.init_app(application)
    yield application
    get_store(application).dispose()


def test_init_app_builds_the_store_without_connecting(app, tmp_path):
    built = app.extensions["store"]
    assert isinstance(built, Store)
    assert not built.connected
    assert built.rejected_limit == 7
    assert built.busy_timeout == 2.0
    assert built.spool_path == str(tmp_path / "spool.jsonl")
    with app.app_context():
        assert get_store() is built
    assert get_store(app) is built


def test_init_app_defaults_to_sqlite_in_the_instance_folder(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "inst"))
    built = store_package.init_app(app)
    assert built.url.drivername == "sqlite"
    assert built.url.database == str(tmp_path / "inst" / "events.db")
    assert built.spool_path == str(tmp_path / "inst" / "spool.jsonl")
    assert built.busy_timeout == 5.0 and built.rejected_limit == 1000
    assert not (tmp_path / "inst").exists()  # nothing touched until first use
    assert "store" in app.cli.commands


def test_cli_migrate(app):
    result = app.test_cli_runner().invoke(args=["store", "migrate"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    again = app.test_cli_runner().invoke(args=["store", "migrate"])
    assert again.exit_code == 0, again.output


def test_cli_replay_spool(app, make_store, dead_url):
    dead = make_store(dead_url, busy_timeout=0.2, spool_path=app.config["SPOOL_PATH"])
    assert dead.record_callback(make_record(call_id="c-cli"))[0] == "spooled"
    result = app.test_cli_runner().invoke(args=["store", "replay-spool"])
    assert result.exit_code == 0, result.output
    assert "Replayed 1 spooled event" in result.output
    assert len(get_store(app).events_for_call("c-cli")) == 1
    result = app.test_cli_runner().invoke(args=["store", "replay-spool"])
    assert "Replayed 0 spooled event" in result.output


def test_cli_purge(app):
    built = get_store(app)
    built.record_callback(make_record(call_id="c-old", received_at=time.time() - 31 * 86400))
    built.record_callback(make_record(call_id="c-mid", received_at=time.time() - 5 * 86400))
    result = app.test_cli_runner().invoke(args=["store", "purge"])  # EVENT_RETENTION_DAYS=30
    assert result.exit_code == 0, result.output
    assert "Purged 1 row(s) older than 30 day(s)" in result.output
    result = app.test_cli_runner().invoke(args=["store", "purge", "--days", "1"])
    assert "Purged 1 row(s) older than 1 day(s)" in result.output
    assert built.events_for_call("c-mid") == []


def test_cli_reports_an_unavailable_database(tmp_path, dead_url):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(DATABASE_URL=dead_url, STORE_BUSY_TIMEOUT=0.2)
    store_package.init_app(app)
    result = app.test_cli_runner().invoke(args=["store", "migrate"])
    assert result.exit_code == 1
    assert "Error:" in result.output
    get_store(app).dispose()
