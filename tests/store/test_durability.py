"""Durable by default: the mode of a commit is read back from the database, not assumed."""

from __future__ import annotations

import pytest
from flask import Flask

import store as store_package
from store import Durability, Store, connections

from .conftest import make_record


def test_a_store_is_durable_by_default(store):
    durability = store.durability()
    assert durability.on_stable_storage is True
    if store.is_sqlite:
        # The connection commits without an fsync (NORMAL); the store fsyncs the WAL.
        assert durability == Durability("sqlite", "NORMAL", True, True)
    else:
        assert durability == Durability("postgresql", "on", False, True)


def record_fsyncs(monkeypatch) -> list[str]:
    """The files the store fsyncs by name from now on."""
    synced: list[str] = []
    real = connections.fsync_file

    def recording(path: str) -> None:
        real(path)
        synced.append(path)

    monkeypatch.setattr(connections, "fsync_file", recording)
    return synced


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_callback_is_fsynced_before_it_is_acknowledged(store, db_url, monkeypatch):
    store.migrate()
    synced = record_fsyncs(monkeypatch)
    answered: list[int] = []  # how many fsyncs had been made when each caller returned
    for n in range(3):
        assert store.record_callback(make_record(call_id=f"c-synced-{n}")).outcome == "inserted"
        answered.append(len(synced))
    wal = db_url.removeprefix("sqlite:///") + "-wal"
    assert answered == [1, 2, 3]
    assert set(synced) == {wal}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_faster_sqlite_mode_says_what_it_risks(make_store, monkeypatch):
    fast = make_store(sqlite_synchronous="normal")
    assert fast.durability() == Durability("sqlite", "NORMAL", False, False)
    synced = record_fsyncs(monkeypatch)
    assert fast.record_callback(make_record(call_id="c-normal")) == ("inserted", None)
    assert synced == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_extra_is_durable_on_its_own(make_store):
    assert make_store(sqlite_synchronous="EXTRA").durability() == Durability(
        "sqlite", "EXTRA", False, True
    )


def test_the_app_default_is_durable(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "inst"))
    built: Store = store_package.init_app(app)
    assert built.sqlite_synchronous == "FULL"
    try:
        assert built.durability().on_stable_storage is True
    finally:
        built.dispose()


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Store(
            f"sqlite:///{tmp_path / 'x.db'}",
            spool_path=str(tmp_path / "s"),
            sqlite_synchronous="FAST",
        )
