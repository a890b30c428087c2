"""``flask alerts ...``: see the alert rules and the alerts sent, and try the webhook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

alerts_cli = AppGroup("alerts", help="Alert rules (ALERT_RULES) and their webhook.")


def _alerter() -> Any:
    alerter = current_app.extensions.get("alerts")
    if alerter is None:
        raise click.ClickException("no alert rules: set ALERT_RULES and ALERT_WEBHOOK_URL")
    return alerter


@alerts_cli.command("list")
def list_command() -> None:
    """The rules, where alerts go, and the alerts sent lately (newest first)."""
    from monitoring.webhook import origin
    from store import StoreUnavailable, get_store

    alerter = _alerter()
    click.echo(f"webhook at {origin(alerter.webhook_url)}")
    for rule in alerter.rules:
        click.echo(f"rule {rule.key}: {rule.describe()}")
    try:
        firings = get_store().alert_firings(20)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    for firing in firings:
        window = datetime.fromtimestamp(firing["window_start"], UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"alert {firing['rule']} window {window} UTC: {firing['count']} counted, "
            f"{firing['status']}"
        )
    if not firings:
        click.echo("no alerts sent yet")


@alerts_cli.command("test")
def test_command() -> None:
    """Post a test message to ALERT_WEBHOOK_URL (three tries, like an alert)."""
    from monitoring.webhook import origin, post_alert

    alerter = _alerter()
    base = alerter.base_url.rstrip("/")
    text = f"Test message from the voice callbacks app at {base}: alerts will arrive here."
    if not post_alert(alerter.webhook_url, text):
        raise click.ClickException(
            f"the webhook at {origin(alerter.webhook_url)} did not take the message"
        )
    click.echo(f"Delivered to the webhook at {origin(alerter.webhook_url)}.")
