"""``flask store ...``: migrate, replay-spool, purge."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from .core import StoreUnavailable

store_cli = AppGroup("store", help="The event store: schema, spool and retention.")


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
