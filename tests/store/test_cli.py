"""``store.init_app`` and the ``flask store`` commands, on a minimal Flask app."""

from __future__ import annotations

import sqlite3
import time

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

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


def test_cli_status_says_where_callbacks_go_and_how_many_are_there(
    app, backend, make_store, dead_url
):
    built = get_store(app)
    newest = time.time() - 60
    built.record_callback(make_record(call_id="c-status-1", received_at=newest - 10))
    built.record_callback(make_record(call_id="c-status-2", received_at=newest))
    dead = make_store(dead_url, busy_timeout=0.2, spool_path=app.config["SPOOL_PATH"])
    assert dead.record_callback(make_record(call_id="c-status-3"))[0] == "spooled"
    result = app.test_cli_runner().invoke(args=["store", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"database    {built.url.render_as_string(hide_password=True)}"
    assert (
        lines[1] == f"spool       {app.config['SPOOL_PATH']}: 1 callback(s) waiting to be replayed"
    )
    if backend == "sqlite":
        mode = "FULL (SQLite synchronous=NORMAL, the WAL fsynced after each commit)"
    else:
        mode = "synchronous_commit=on"
    assert lines[2] == f"durability  {mode}: a callback is on stable storage before it is answered"
    if backend == "sqlite":  # the mode is the process's setting: whose it is
        assert lines.pop(3) == (
            "            (STORE_SQLITE_SYNCHRONOUS as set for this command: run it with the"
            " server's settings)"
        )
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest))
    assert lines[3] == f"callbacks   2 stored, the newest received {at}"
    # A status only reads: the spooled callback still waits for its server's replay.
    assert built.spool.depth() == 1
    assert built.events_for_call("c-status-3") == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_status_answers_while_another_program_holds_the_write_lock(app, db_url):
    get_store(app).migrate()
    holder = sqlite3.connect(make_url(db_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = app.test_cli_runner().invoke(args=["store", "status"])
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 0, result.output
    assert "callbacks   0 stored\n" in result.output


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("mode", "promise"),
    [
        ("NORMAL", "a stored callback survives a crash of the app, not of the machine"),
        (
            "OFF",
            "a stored callback survives a crash of the app; a crash of the machine can lose"
            " it and corrupt the database file",
        ),
    ],
)
def test_cli_status_says_what_a_faster_mode_risks(db_url, tmp_path, mode, promise):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(DATABASE_URL=db_url, STORE_SQLITE_SYNCHRONOUS=mode)
    store_package.init_app(app)
    try:
        result = app.test_cli_runner().invoke(args=["store", "status"])
    finally:
        get_store(app).dispose()
    assert result.exit_code == 0, result.output
    assert f"durability  {mode} (SQLite synchronous={mode}): {promise}\n" in result.output
    assert "callbacks   0 stored\n" in result.output
    assert "spool       " in result.output and ": empty" in result.output


def test_cli_status_of_an_unreachable_database_fails_and_hides_its_password(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(
        DATABASE_URL="postgresql://voice:s3cret-pw@127.0.0.1:1/events", STORE_BUSY_TIMEOUT=0.2
    )
    store_package.init_app(app)
    try:
        result = app.test_cli_runner().invoke(args=["store", "status"])
    finally:
        get_store(app).dispose()
    assert result.exit_code == 1
    assert result.output.startswith(
        "database    postgresql+psycopg://voice:***@127.0.0.1:1/events\n"
    )
    assert "Error: store unavailable" in result.output
    assert "s3cret-pw" not in result.output
