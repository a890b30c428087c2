"""Operator-facing pages, the JSON API over the event store, and the click-to-call form.

``init_app(app)`` registers the blueprints (``dashboard.auth``, ``dashboard.pages``,
``dashboard.api``, ``dashboard.clicktocall``: each module's ``bp``) and the app-wide browser
security of ``dashboard.security`` (CSRFProtect, security headers, session cookie flags), and
``app.extensions["attempt_limit"]`` (``dashboard.auth.limit_attempts``).
Settings and their defaults: ``dashboard.settings``.  Templates are in templates/dashboard/
and templates/click_to_call/, scripts and styles in static/dashboard/ (no inline script or
style anywhere: the CSP forbids them).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from dashboard import api, auth, clicktocall, home, pages, security, settings

    settings.check(app.config)
    for module in (auth, pages, api, clicktocall, home):
        app.register_blueprint(module.bp)
    security.init_app(app)
    from callbacks.setup import registry_for
    from dashboard.clicktocall_flow import click_to_call

    registry_for(app).register(click_to_call, builtin=True)
    # Credential checks elsewhere in the app (the in-app sandbox) share the login limit.
    app.extensions["attempt_limit"] = auth.limit_attempts
    app.extensions["attempt_retry_after"] = auth.attempts_retry_after
