"""``flask store ...``: status, migrate, replay-spool, purge."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from .core import StoreUnavailable

store_cli = AppGroup("store", help="The event store: schema, spool and retention.")


@store_cli.command("status")
def status_command() -> None:
    """Say which database this shell's settings name, what "stored" promises with them, how
    many callbacks it holds and how many wait in the spool.  Reads only (it replays nothing:
    see replay-spool); fails (exit 1) when the database does not answer."""
    from . import get_store

    store = get_store()
    store.leave_spool_alone()
    click.echo(f"database    {store.url.render_as_string(hide_password=True)}")
    spooled = store.spool.depth()
    waiting = f"{spooled} callback(s) waiting to be replayed" if spooled else "empty"
    click.echo(f"spool       {store.spool_path}: {waiting}")
    try:
        durability = store.durability()
        stored = store.stored_callbacks()
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    if durability.backend == "postgresql":
        mode = f"synchronous_commit={durability.setting}"
    elif durability.wal_fsync:
        mode = (
            f"{store.sqlite_synchronous} (SQLite synchronous={durability.setting},"
            " the WAL fsynced after each commit)"
        )
    else:
        mode = f"{store.sqlite_synchronous} (SQLite synchronous={durability.setting})"
    if durability.on_stable_storage:
        promise = "a callback is on stable storage before it is answered"
    elif durability.backend == "sqlite" and durability.setting == "OFF":
        promise = (
            "a stored callback survives a crash of the app; a crash of the machine can lose"
            " it and corrupt the database file"
        )
    else:
        promise = "a stored callback survives a crash of the app, not of the machine"
    click.echo(f"durability  {mode}: {promise}")
    if durability.backend == "sqlite":
        # The mode is each process's own setting, not the database's: say whose this is.
        click.echo(
            "            (STORE_SQLITE_SYNCHRONOUS as set for this command: run it with the"
            " server's settings)"
        )
    newest = ""
    if stored.newest_received_at is not None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored.newest_received_at))
        newest = f", the newest received {at}"
    click.echo(f"callbacks   {stored.total} stored{newest}")


@store_cli.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (idempotent)."""
    from . import get_store

    try:
        get_store().migrate()
        indexed = get_store().ensure_search_index()
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Store schema is up to date.")
    if not indexed:
        click.echo(
            "Text search has no index: the pg_trgm extension could not be created "
            "(ask the database owner to run CREATE EXTENSION pg_trgm, then migrate again)."
        )


@store_cli.command("replay-spool")
def replay_spool_command() -> None:
    """Store the callbacks spooled while the database was unavailable (exactly once)."""
    from . import get_store

    try:
        count = get_store().replay_spool()
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Replayed {count} spooled event(s).")


@store_cli.command("purge")
@click.option(
    "--days",
    type=click.FloatRange(min=0),
    default=None,
    help="Delete rows older than this many days (default: EVENT_RETENTION_DAYS).",
)
def purge_command(days: float | None) -> None:
    """Delete stored callbacks, rejected requests and outbound attempts past retention."""
    from . import get_store

    if days is None:
        days = float(current_app.config.get("EVENT_RETENTION_DAYS") or 30)
    try:
        count = get_store().purge(days)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Purged {count} row(s) older than {days:g} day(s).")
