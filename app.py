"""The application factory: configuration, then the callbacks framework and the store, then
the sandbox and the dashboard, then call flows.

gunicorn serves ``app:create_app()`` (see Procfile and gunicorn.conf.py); ``flask --app app``
finds the same factory.  A setting that cannot work stops ``create_app`` with a
``config.ConfigError`` whose one line names it; gunicorn.conf.py checks once in the master
and prints that line alone, and so does a ``flask`` command (``Error: ...``, exit 1).
"""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask

import config
import logsetup

# The demo flows, answering while VOICE_FLOWS names none of the user's own.
DEMO_FLOWS = "examples.ivr"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the application."""
    try:
        return _build_app(test_config)
    except config.ConfigError as exc:
        if _flask_command() is None:
            raise  # gunicorn.conf.py and the tests read the error itself
        # flask's CLI shows any error of the factory with its traceback (`flask --help`
        # even a click error): the one line alone, as gunicorn.conf.py prints it.
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None


def _build_app(test_config: dict[str, Any] | None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config.DEFAULTS)
    if test_config is None:
        app.config.update(config.from_environ(os.environ))
    else:
        app.config.update(test_config)
    if not app.config.get("VOICE_FLOWS"):
        app.config["VOICE_FLOWS"] = DEMO_FLOWS

    os.makedirs(app.instance_path, exist_ok=True)
    config.ensure_secret_key(app.config, app.instance_path)
    if config.ensure_dashboard_password(app.config, app.instance_path):
        app.config["DASHBOARD_PASSWORD_GENERATED"] = True
    if not app.testing:
        # JSON lines on stdout (a command's on stderr), secrets redacted, one per request.
        command = _flask_command()
        logsetup.init_app(app, to_stderr=command is not None and command != "run")

    import callbacks

    callbacks.init_app(app)  # settings checked, store, /callbacks/*, VOICE_FLOWS
    _apply_deploy_settings(app)

    import sandbox

    sandbox.init_app(app)  # VOICE_BACKEND=sandbox: the Voice API at /sandbox/api/v2

    import dashboard

    dashboard.init_app(app)  # pages, JSON API, click-to-call (and its flow), CSRFProtect

    import monitoring

    monitoring.init_app(app)  # /metrics (METRICS_TOKEN) and alert rules (ALERT_RULES)

    from callbacks.setup import check_flows
    from calls.cli import call

    check_flows(app)
    app.cli.commands["voice"].add_command(call)  # type: ignore[attr-defined]
    if _serving_with_flask_run():
        print(banner(app), flush=True)
    return app


def banner(app: Flask) -> str:
    """What a person needs at start-up: the pages, the generated dashboard password and
    the in-app sandbox's API credentials.  Printed once per server, never logged."""
    cfg = app.config
    base = cfg["PUBLIC_BASE_URL"].rstrip("/")
    registry = app.extensions["flows"]
    default = registry.default
    lines = [
        f"Bandwidth callbacks app at {base}/",
        f"  dashboard      {base}/dashboard  (user {cfg['DASHBOARD_USERNAME']!r}"
        + (
            f", generated password {cfg['DASHBOARD_PASSWORD']!r}; set DASHBOARD_PASSWORD)"
            if cfg.get("DASHBOARD_PASSWORD_GENERATED")
            else ", password from DASHBOARD_PASSWORD)"
        ),
        f"  click-to-call  {base}/click-to-call",
        f"  callbacks      {base}/callbacks/<eventType>"
        + ("" if cfg.get("CALLBACK_USERNAME") else "  (NO CALLBACK CREDENTIALS: open to anyone)"),
        f"  flows          {', '.join(sorted(registry.flows))}"
        + (f" (default: {default.name})" if default else " (no default flow)"),
    ]
    store = app.extensions.get("store")
    if store is not None:  # which database took effect, and what a stored callback promises
        durability = (
            f"synchronous={store.sqlite_synchronous}"
            if store.is_sqlite
            else "synchronous_commit=on"
        )
        lines.append(
            f"  store          {store.url.render_as_string(hide_password=True)}  ({durability})"
        )
    if "metrics" in app.extensions:
        lines.append(f"  metrics        {base}/metrics  (Authorization: Bearer METRICS_TOKEN)")
    if "alerts" in app.extensions:
        from monitoring.webhook import origin

        alerts = app.extensions["alerts"]
        lines.append(
            f"  alerts         {'; '.join(rule.describe() for rule in alerts.rules)} -> webhook at "
            f"{origin(alerts.webhook_url)}"
        )
    if "sandbox" in app.extensions:
        api = config.voice_api(cfg)
        lines += [
            f"  sandbox        {base}/sandbox/sandbox-control/  (be the callee)",
            f"  sandbox API    {api['base_url']}  account {api['account_id']}, "
            f"user {api['username']!r}, password {api['password']!r}",
        ]
    return "\n".join(lines)


def _flask_command() -> str | None:
    """The ``flask`` command loading the app (its name, ``flask`` itself for an app's own
    group such as ``store``), or None: gunicorn, a script, a test."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.info_name or ""


def _serving_with_flask_run() -> bool:
    """``flask run`` (once per start of its server, not in its reloader's watcher); no
    other ``flask`` command prints the banner."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.info_name != "run":
        return False
    # With the reloader (on by default with --debug), the watching process loads the app
    # too; the serving one is marked.
    from flask.helpers import get_debug_flag

    reload = ctx.params.get("reload")
    if reload is None:
        reload = get_debug_flag()
    return not reload or os.environ.get("WERKZEUG_RUN_MAIN") == "true"


def _apply_deploy_settings(app: Flask) -> None:
    """Proxy and host settings; both are off unless configured."""
    hosts = app.config.get("TRUSTED_HOSTS")
    if isinstance(hosts, str):
        app.config["TRUSTED_HOSTS"] = [h.strip() for h in hosts.split(",") if h.strip()] or None
    import proxies

    proxies.init_app(app)  # X-Forwarded-* from the listed proxies only; warns when unsafe
