"""The application factory: configuration, then the store, then the blueprints, then call flows.

gunicorn serves ``app:create_app()`` (see Procfile and gunicorn.conf.py); ``flask --app app``
finds the same factory.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

import config
import logsetup


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the application."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config.DEFAULTS)
    if test_config is None:
        app.config.update(config.from_environ(os.environ))
    else:
        app.config.update(test_config)

    os.makedirs(app.instance_path, exist_ok=True)
    config.ensure_secret_key(app.config, app.instance_path)
    generated_password = config.ensure_dashboard_password(app.config, app.instance_path)
    if not app.testing:
        logsetup.init_app(app)  # JSON lines on stdout, secrets redacted, one line per request
    if generated_password and not app.testing:
        # Printed, never logged to a file: the operator needs it once to log in.
        print(
            f"Dashboard login: user {app.config['DASHBOARD_USERNAME']!r}, generated password "
            f"{generated_password!r} (set DASHBOARD_PASSWORD to choose one)",
            flush=True,
        )

    _apply_deploy_settings(app)

    import store

    store.init_app(app)

    from callbacks import bp as callbacks_bp

    app.register_blueprint(callbacks_bp)

    import sandbox

    sandbox.init_app(app)  # VOICE_BACKEND=sandbox: the Voice API at /sandbox/api/v2

    import dashboard

    dashboard.init_app(app)  # dashboard, JSON API and click-to-call blueprints; CSRFProtect

    import flows

    flows.init_app(app)
    return app


def _apply_deploy_settings(app: Flask) -> None:
    """Proxy and host settings; both are off unless configured."""
    hosts = app.config.get("TRUSTED_HOSTS")
    if isinstance(hosts, str):
        app.config["TRUSTED_HOSTS"] = [h.strip() for h in hosts.split(",") if h.strip()] or None
    import proxies

    proxies.init_app(app)  # X-Forwarded-* from the listed proxies only; warns when unsafe
