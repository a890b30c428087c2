"""``/``: a small landing page pointing at the app's pages (no secrets on it)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    registry = current_app.extensions.get("flows")
    flows = sorted(registry.flows) if registry is not None else []
    return render_template(
        "home.html",
        sandbox="sandbox" in current_app.extensions,
        flows=flows,
        default_flow=registry.default.name if registry is not None and registry.default else None,
    )
