"""Durable by default: the mode of a commit is read back from the database, not assumed."""

from __future__ import annotations

import pytest
from flask import Flask

import store as store_package
from store import Durability, Store

from .conftest import make_record


def test_a_store_is_durable_by_default(store):
    durability = store.durability()
    assert durability.on_stable_storage is True
    if store.is_sqlite:
        assert durability == Durability("sqlite", "FULL", True)
    else:
        assert durability == Durability("postgresql", "on", True)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_faster_sqlite_mode_says_what_it_risks(make_store):
    fast = make_store(sqlite_synchronous="normal")
    assert fast.durability() == Durability("sqlite", "NORMAL", False)
    assert fast.record_callback(make_record(call_id="c-normal")) == ("inserted", None)


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
