"""The operator's pages (login required on every one of them).

``GET  /dashboard``                             disconnects: filters, counts, chart, pages
``GET  /dashboard/disconnects.csv|.json``       the filtered disconnects as a download
``GET  /dashboard/calls/<callId>``              one call's story: summary, legs, timeline
``GET  /dashboard/calls/<callId>/recordings/<recordingId>/media``  its recording, via the app
``POST /dashboard/calls/<callId>/replay/<id>``  what the current handler would answer now
``GET  /dashboard/calls/<callId>/regression-test.py``  the call as a pytest regression test
``GET  /dashboard/rejected``                    refused (malformed) callback requests
``GET  /dashboard/credential-failures``         callbacks refused with 401, and their calls
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from callbacks.redact import mask_passwords, masked_row
from callbacks.regression_export import UnknownCall, export_file
from callbacks.tags import decode_state
from dashboard import chart, export, placements, recordings, sequence, timeline
from dashboard.auth import logged_in
from dashboard.filters import (
    DisconnectFilter,
    FilterError,
    before_id,
    disconnect_json,
    duration,
    iso,
)
from dashboard.messages import explain, with_handler_errors
from dashboard.refused import refused_calls
from dashboard.refused import story as refused_story
from dashboard.replay import replay
from dashboard.settings import number
from store import StoreUnavailable, categories, get_store

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

# Bandwidth's documented causes; the vocabulary is open, so the filter also offers every
# cause the store has counted.
KNOWN_CAUSES = categories.BANDWIDTH_CAUSES
# Refused callbacks seen this recently keep the banner up on every page.
CREDENTIAL_ALARM_SECONDS = 15 * 60


@bp.before_request
def _require_login() -> Any:
    if not logged_in():
        return redirect(url_for("dashboard_auth.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("when")
def _when(epoch: float | None) -> str:
    text = iso(epoch)
    return text.replace("T", " ").replace("Z", " UTC") if text else ""


@bp.app_template_filter("iso_time")
def _iso_time(epoch: float | None) -> str:
    return iso(epoch) or ""


@bp.app_template_filter("duration")
def _duration(seconds: float | None) -> str:
    return duration(seconds)


@bp.app_template_filter("readable_tag")
def _readable_tag(row: dict[str, Any]) -> str:
    """A listed disconnect's tag (``disconnect_json``'s keys) as a person reads it: signed
    state as the handler's own keys (the framework's flow has its own column), a plain tag
    a handler wrote as written; a tag that does not verify as it is."""
    tag = row.get("tag")
    if not tag:
        return ""
    state = decode_state(
        str(tag),
        current_app.config["SECRET_KEY"],
        call_id=row.get("callId"),
        parent_call_id=row.get("parentCallId"),
        max_age=None,  # what the call carried at the time
    )
    view = timeline.tag_view(str(tag), state)
    if view is None or view.kind != "state":
        return str(tag)  # a plain tag, or one that does not verify: as it is
    if view.text is not None and not view.state:
        return view.text  # a plain tag a handler wrote, kept in the signed state
    return json.dumps(view.state, sort_keys=True) if view.state else ""


@bp.app_template_filter("explain")
def _explain(message: str | None) -> Any:
    """A stored error message as (sentence, technical detail or None)."""
    return explain(message)


@bp.app_template_filter("describe_category")
def _describe_category(category: str) -> str:
    return categories.describe(category)


def _credential_alarm() -> dict[str, Any] | None:
    """The latest refused callback that needs an operator, seen in the last minutes."""
    try:
        return get_store().refusals_since(time.time() - CREDENTIAL_ALARM_SECONDS)
    except StoreUnavailable:
        return None


@bp.context_processor
def _page_context() -> dict[str, Any]:
    settings = current_app.extensions.get("callbacks")
    return {
        "operator": session.get("operator"),
        "callbacks_open": settings is not None and not settings.credentials,
        "voice_backend": current_app.config.get("VOICE_BACKEND") or "sandbox",
        "credential_alarm": _credential_alarm() if session.get("operator") else None,
        "credential_alarm_minutes": CREDENTIAL_ALARM_SECONDS // 60,
        "placement_alarm": placements.alarm(get_store(), current_app.config["SECRET_KEY"])
        if session.get("operator")
        else None,
    }


@bp.errorhandler(StoreUnavailable)
def _store_down(_error: StoreUnavailable) -> tuple[str, int]:
    message = (
        "The event store is unavailable right now; callbacks are being spooled. Try again shortly."
    )
    return render_template("dashboard/error.html", title="Store unavailable", message=message), 503


def _bad_request(title: str, message: str) -> Response:
    return Response(render_template("dashboard/error.html", title=title, message=message), 400)


def _filters() -> DisconnectFilter:
    try:
        return DisconnectFilter.from_args(request.args, get_store())
    except FilterError as exc:
        abort(_bad_request("Bad filter", str(exc)))


@bp.get("")
def disconnects() -> str:
    filters = _filters()
    store = get_store()
    rows, older = filters.page(store)
    counts = store.category_counts(filters.since, filters.until)
    refused_counts = store.refused_counts(filters.since, filters.until)
    for name, n in refused_counts.items():
        counts[name] = counts.get(name, 0) + n
    not_placed = store.not_placed(filters.since, filters.until)
    if not_placed:
        counts[placements.NOT_PLACED] = not_placed
    cause_counts = store.cause_counts(filters.since, filters.until)
    start, end = chart.window(filters.since, filters.until)
    graph = chart.build(chart.failures(store, start, end), start, end)
    causes = sorted(set(KNOWN_CAUSES) | set(cause_counts), key=lambda c: (c not in KNOWN_CAUSES, c))
    known = categories.ALL_CATEGORIES
    all_categories = sorted(
        set(known) | set(counts) - {placements.NOT_PLACED}, key=lambda c: (c not in known, c)
    )
    first_page = filters.before_id is None
    refused: list[dict[str, Any]] = []
    wanted = filters.categories or (() if filters.causes else categories.APP_CATEGORIES)
    # The panel lists calls no stored disconnect stands for: a filter or search over
    # disconnects says nothing of them (they would look like its hits).
    if first_page and not (filters.number or filters.tag or filters.error_id or filters.search):
        wanted_refused = [c for c in wanted if c in refused_counts]
        if wanted_refused:
            refused = refused_calls(
                store,
                categories=wanted_refused,
                since=filters.since,
                until=filters.until,
                limit=20,
            )
    return render_template(
        "dashboard/disconnects.html",
        filters=filters,
        rows=with_handler_errors(store, [disconnect_json(row) for row in rows]),
        older_url=url_for(".disconnects", **filters.query_args(before_id=older)) if older else None,
        newest_url=None
        if first_page
        else url_for(".disconnects", **filters.query_args(before_id=None)),
        counts=sorted(counts.items(), key=lambda item: (-item[1], item[0])),
        counts_total=sum(counts.values()),
        causes=causes,
        categories=all_categories,
        refused=refused,
        chart=graph,
        ranges=chart.quick_ranges(),
        refresh_seconds=number("DASHBOARD_REFRESH_SECONDS") if first_page else 0,
        api_url=url_for("api.disconnects", **filters.query_args(before_id=None)),
        csv_url=url_for(".export_csv", **filters.query_args(before_id=None, limit=None)),
        json_url=url_for(".export_json", **filters.query_args(before_id=None, limit=None)),
    )


def _export_rows(filters: DisconnectFilter) -> tuple[list[dict[str, Any]], bool]:
    """Every matching row from the newest, whatever page the operator was on."""
    filters = replace(filters, before_id=None)
    store = get_store()
    # Up to DASHBOARD_EXPORT_MAX_ROWS rows of a rare filter can take a query longer than
    # the statement timeout that bounds a page's: an export runs to its end.
    with store.long_statements():
        rows, truncated = filters.all_rows(store, number("DASHBOARD_EXPORT_MAX_ROWS"))
    return [disconnect_json(row) for row in rows], truncated


def _attachment(response: Response, extension: str, truncated: bool) -> Response:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    response.headers["Content-Disposition"] = (
        f'attachment; filename="disconnects-{stamp}.{extension}"'
    )
    response.headers["X-Export-Truncated"] = "true" if truncated else "false"
    return response


@bp.get("/disconnects.csv")
def export_csv() -> Response:
    filters = _filters()
    rows, truncated = _export_rows(filters)
    response = Response(export.to_csv(rows), mimetype="text/csv")
    response.charset = "utf-8"
    return _attachment(response, "csv", truncated)


@bp.get("/disconnects.json")
def export_json() -> Response:
    filters = _filters()
    rows, truncated = _export_rows(filters)
    return _attachment(jsonify(disconnects=rows, truncated=truncated), "json", truncated)


@bp.get("/calls/<path:call_id>")
def call(call_id: str) -> str:
    store = get_store()
    transcript = sandbox_transcript(call_id)

    def heard(leg: str) -> list[float]:
        entries = transcript if leg == call_id else sandbox_transcript(leg)
        return [float(e["time"]) for e in entries if e.get("time") is not None]

    story = timeline.build(store, call_id, current_app.config["SECRET_KEY"], heard)
    refused = store.refused_call(call_id)
    status = 200 if story.entries or story.outbound or refused else 404
    heard = caller_heard(transcript, call_id, story.origin)
    page = render_template(
        "dashboard/call.html",
        timeline=story,
        refused=refused_story(refused) if refused else None,
        caller_heard=heard,
    )
    return page, status  # type: ignore[return-value]


def sandbox_transcript(call_id: str) -> list[dict[str, Any]]:
    """What the far end of the call heard, pressed and said, when it ran in this app's own
    sandbox (``sandbox.transcript``), else ``[]``."""
    if "sandbox" not in current_app.extensions:
        return []
    import sandbox  # only apps that run the in-app sandbox get here

    return sandbox.transcript(current_app, call_id)  # type: ignore[no-any-return]


def caller_heard(
    entries: list[dict[str, Any]], call_id: str, origin: float | None
) -> list[dict[str, Any]]:
    """The sandbox's transcript as ``[{at, leg, kind, text}]`` with ``at`` in seconds since
    the whole call began (``origin``, the sequence diagram's base, not after any entry, so
    one moment reads the same in both and on every leg's page) and ``leg`` naming another
    leg's entries (a transfer's agent)."""
    if origin is None:
        origin = min((e["time"] for e in entries if e.get("time") is not None), default=None)
    return [
        {
            "at": _heard_at(item, origin),
            "leg": None if item.get("callId") in (None, call_id) else item["callId"],
            "kind": item["kind"],
            "text": mask_passwords(item["text"]),  # a transfer's SipUri, as the handler wrote it
        }
        for item in entries
    ]


def _heard_at(item: dict[str, Any], origin: float | None) -> str:
    if item.get("time") is not None and origin is not None:
        return sequence.offset(float(item["time"]) - origin)
    # Kept before entries had a wall time: only the sandbox's simulated clock is known.
    return f"{item['at']:.1f} s of simulated time"


@bp.get("/calls/<path:call_id>/recordings/<recording_id>/media")
def recording_media(call_id: str, recording_id: str) -> Response:
    """A recording of the call, fetched from the Voice API with its credentials."""
    return _recording(get_store().events_for_call(call_id), recording_id)


@bp.get("/conferences/<path:conference_id>/recordings/<recording_id>/media")
def conference_recording_media(conference_id: str, recording_id: str) -> Response:
    """A conference's recording (conferenceRecordingAvailable), as a call's is served."""
    return _recording(get_store().events_for_conference(conference_id), recording_id)


def _recording(rows: list[dict[str, Any]], recording_id: str) -> Response:
    recording = next((r for r in recordings.of_call(rows) if r.recording_id == recording_id), None)
    if recording is None:
        abort(404)
    try:
        return recordings.media(recording, request.headers.get("Range"))
    except recordings.MediaError as exc:
        title = "Recording unavailable"
        page = render_template("dashboard/error.html", title=title, message=str(exc))
        return Response(page, exc.status)


@bp.get("/conferences/<path:conference_id>")
def conference(conference_id: str) -> str:
    story = timeline.build_conference(get_store(), conference_id, current_app.config["SECRET_KEY"])
    status = 200 if story.entries else 404
    return render_template("dashboard/call.html", timeline=story), status  # type: ignore[return-value]


@bp.post("/calls/<path:call_id>/replay/<int:event_id>")
def replay_event(call_id: str, event_id: int) -> str:
    rows = get_store().events_for_call(call_id)
    row = next((r for r in rows if r["id"] == event_id), None)
    if row is None:
        abort(404)
    if not timeline.replayable(row):
        abort(
            Response(
                render_template(
                    "dashboard/error.html",
                    title="Nothing to replay",
                    message="Bandwidth ignores the reply to this kind of callback.",
                ),
                400,
            )
        )
    return render_template("dashboard/replay.html", call_id=call_id, result=replay(row))


@bp.get("/calls/<path:call_id>/regression-test.py")
def regression_test(call_id: str) -> Response:
    """The stored call as a pytest file (callbacks.regression): no secrets in it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        name, text = export_file(app, call_id)
    except UnknownCall:
        abort(404)
    response = Response(text, mimetype="text/x-python")
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/credential-failures")
def credential_failures() -> str:
    store = get_store()
    return render_template(
        "dashboard/credential_failures.html",
        rows=store.credential_failures(),
        calls=refused_calls(store, categories=[categories.CREDENTIAL_FAILURE], limit=100),
        alarm_minutes=CREDENTIAL_ALARM_SECONDS // 60,
    )


@bp.get("/rejected")
def rejected() -> str:
    try:
        unknown = sorted(set(request.args) - {"before_id", "beforeId"})
        if unknown:
            raise FilterError(f"unknown parameter {unknown[0]!r}; accepted: before_id, beforeId")
        older_than = before_id(request.args)
    except FilterError as exc:
        abort(_bad_request("Bad page", str(exc)))
    limit = 50
    rows = get_store().rejected(limit=limit + 1, before_id=older_than)
    older = None
    if len(rows) > limit:
        rows = rows[:limit]
        older = rows[-1]["id"]
    return render_template(
        "dashboard/rejected.html",
        rows=[masked_row(row) for row in rows],  # a body may carry a password: shown masked
        older_url=url_for(".rejected", before_id=older) if older else None,
        newest_url=url_for(".rejected") if older_than is not None else None,
    )
