"""``/``: a small landing page pointing at the app's pages (no secrets on it)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, render_template

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


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The pages link their icon (static/favicon.svg); browsers still ask for this path
    (e.g. on a JSON page), so it is the same icon rather than a 404 in every log."""
    icon = Path(current_app.static_folder or "static") / "favicon.svg"
    reply = Response(icon.read_bytes(), mimetype="image/svg+xml")
    reply.cache_control.max_age = 86400
    return reply
