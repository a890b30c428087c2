"""Metrics and alerts for operators: Prometheus ``/metrics`` and ALERT_RULES.

``init_app(app)`` adds, when configured:

* ``METRICS_TOKEN`` set: ``GET /metrics`` (``monitoring.views``), which needs
  ``Authorization: Bearer <METRICS_TOKEN>``; without the setting there is no such route.
  The metrics are in ``monitoring.instruments``.
* ``ALERT_RULES`` set: the rules (``monitoring.rules``) evaluated by a thread in each
  worker, posting to ``ALERT_WEBHOOK_URL`` (``monitoring.alerts``).

Both learn about callbacks after each one is answered (an ``after_request`` hook): the
callback route leaves what it knows on ``flask.g`` (the event, the handler's exception, the
store's outcome, the timings), and ``monitoring.categories`` names what went wrong.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request

from monitoring.categories import OK, callback_category, cause_label, error_kind
from monitoring.rules import parse_rules


def init_app(app: Flask) -> None:
    cfg = app.config
    from store import get_store

    store = get_store(app)
    if cfg.get("METRICS_TOKEN"):
        from monitoring.instruments import Instruments
        from monitoring.views import bp

        app.extensions["metrics"] = Instruments(spool_depth=store.spool.depth)
        app.register_blueprint(bp)
    rules = parse_rules(cfg.get("ALERT_RULES"))
    if rules:
        from monitoring.alerts import Alerter

        app.extensions["alerts"] = Alerter(
            store,
            rules,
            webhook_url=cfg["ALERT_WEBHOOK_URL"],
            base_url=cfg["PUBLIC_BASE_URL"],
            interval=float(cfg.get("ALERT_CHECK_SECONDS") or 15.0),
        )
    if "metrics" in app.extensions or "alerts" in app.extensions:
        app.after_request(_observe)
    from monitoring.cli import alerts_cli

    if "alerts" not in app.cli.commands:
        app.cli.add_command(alerts_cli)


def _observe(response: Response) -> Response:
    """Count the callback just answered (callback routes only; memory and mmap writes)."""
    extensions = current_app.extensions
    alerts = extensions.get("alerts")
    if alerts is not None:
        alerts.ensure_running()
    if request.blueprint != "callbacks" or not request.view_args:
        return response
    status = response.status_code
    stored = g.get("callback_stored")
    outcome = str(stored[0]) if stored else None
    error = g.get("callback_error")
    category = callback_category(
        status,
        error_kind(error) if error is not None else None,
        outcome == "spooled",
        credentials_missing=bool(g.get("callback_credentials_missing")),
    )
    event = g.get("callback_event")
    cause = None
    if event is not None and event.event_type == "disconnect" and outcome != "duplicate":
        cause = event.__dict__.get("cause")
    metrics = extensions.get("metrics")
    if metrics is not None:
        route = "unknown" if status == 404 else str(request.view_args.get("route"))
        metrics.callbacks.labels(route, str(status), category).inc()
        handler_seconds = g.get("callback_handler_seconds")
        if handler_seconds is not None:
            metrics.handler_seconds.labels(route).observe(handler_seconds)
        if stored:
            metrics.store_seconds.labels(outcome).observe(stored[1])
        if cause is not None:
            metrics.disconnects.labels(cause_label(cause)).inc()
    if alerts is not None:
        if category != OK:
            alerts.count(category)
        if cause is not None:
            alerts.count(str(cause))
    return response


def count_click_to_call(kind: str, label: str) -> None:
    """Click-to-call: ``placement`` (placed, unknown, failed, temporary-failure, invalid) or
    ``refusal`` (fields, number, rate-per-address, cooldown, rate-total, unavailable)."""
    metrics: Any = current_app.extensions.get("metrics")
    if metrics is None:
        return
    counter = metrics.placements if kind == "placement" else metrics.refusals
    counter.labels(label).inc()
