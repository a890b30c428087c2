"""``init_app``: the callback routes, the store and call flows on any Flask app.

    from flask import Flask
    import callbacks
    from my_flows import ivr          # a callbacks.Flow

    app = Flask(__name__)
    callbacks.init_app(app, flows=[ivr])

Every setting this framework reads gets its default (``config.DEFAULTS``) unless the app
set it; the settings are checked before anything is registered, so a wrong value stops
start-up with one line naming it.  ``VOICE_FLOWS`` (comma-separated module names) adds the
flows defined in those modules.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from types import ModuleType

from flask import Flask

import config
from callbacks.flow import Flow, FlowError
from callbacks.routing import FlowRegistry


def apply_defaults(app: Flask) -> None:
    """Give every framework setting the app has not set (or set to None) its default."""
    cfg = app.config
    for key, value in config.DEFAULTS.items():
        if cfg.get(key) is None and value is not None:
            cfg[key] = value
    if not cfg.get("PUBLIC_BASE_URL"):
        cfg["PUBLIC_BASE_URL"] = config.derived_public_base_url(os.environ)
        cfg["PUBLIC_BASE_URL_DERIVED"] = True
    os.makedirs(app.instance_path, exist_ok=True)
    config.ensure_secret_key(cfg, app.instance_path)


def registry_for(app: Flask) -> FlowRegistry:
    """The app's flows, created empty on first use."""
    registry = app.extensions.get("flows")
    if registry is None:
        registry = FlowRegistry(
            app.config["SECRET_KEY"], default_name=app.config.get("VOICE_DEFAULT_FLOW")
        )
        app.extensions["flows"] = registry
    return registry  # type: ignore[no-any-return]


def init_app(app: Flask, *, flows: Iterable[Flow] = ()) -> FlowRegistry:
    """Register the callback routes, the store and ``flows`` (plus ``VOICE_FLOWS``) on
    ``app``; returns the app's FlowRegistry.  Raises config.ConfigError for a setting that
    cannot work, with one line naming it."""
    from callbacks.views import bp

    if bp.name not in app.blueprints:
        app.register_blueprint(bp)  # defaults, the settings' checks, the store, the flows
    registry = registry_for(app)
    try:
        for flow in flows:
            registry.register(flow)
        for flow in load_flow_modules(app.config.get("VOICE_FLOWS") or ""):
            registry.register(flow)
    except FlowError as exc:
        raise config.ConfigError(str(exc)) from None
    from callbacks.cli import voice_cli

    if "voice" not in app.cli.commands:
        app.cli.add_command(voice_cli)
    return registry


def check_flows(app: Flask) -> None:
    """Stop start-up when the flows cannot route (VOICE_DEFAULT_FLOW names none)."""
    try:
        registry_for(app).check()
    except FlowError as exc:
        raise config.ConfigError(str(exc)) from None


def load_flow_modules(names: str) -> list[Flow]:
    """The flows defined in each module of ``names`` (comma-separated dotted names), in
    module order, each once."""
    found: list[Flow] = []
    for name in filter(None, (part.strip() for part in names.split(","))):
        module = _import(name)
        for value in vars(module).values():
            if isinstance(value, Flow) and all(value is not f for f in found):
                found.append(value)
        if not any(isinstance(v, Flow) for v in vars(module).values()):
            raise config.ConfigError(
                f"VOICE_FLOWS: module {name!r} defines no callbacks.Flow "
                "(create one: my_flow = Flow('name'))"
            )
    return found


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except FlowError as exc:
        raise config.ConfigError(f"VOICE_FLOWS: {name}: {exc}") from None
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise config.ConfigError(
                f"VOICE_FLOWS names {name!r}, which cannot be imported ({exc}); "
                "give dotted module names importable from the working directory"
            ) from None
        raise
