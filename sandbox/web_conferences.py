"""The Conferences API's routes, added to the Voice API blueprint of ``sandbox.web`` (import
this module before the blueprint is registered): Bandwidth's paths, codes and bodies, the
same credentials and errors."""

from __future__ import annotations

from flask import Response, request, stream_with_context

from sandbox.errors import ApiError
from sandbox.web import _api_url, _json, _json_body, _paged, _sandbox, api_bp

CONFERENCE = "/accounts/<account_id>/conferences/<conference_id>"


@api_bp.get("/accounts/<account_id>/conferences")
def conferences(account_id: str) -> Response:
    """listConferences; a next page is linked in ``Link: <url>; rel="next"``."""
    api = _sandbox().conferences
    found, token = api.list_conferences(account_id, request.args.to_dict(), _api_url())
    return _paged(found, token, f"/accounts/{account_id}/conferences")


@api_bp.route(CONFERENCE, methods=["GET", "POST"])
def conference(account_id: str, conference_id: str) -> Response:
    """getConference, updateConference."""
    api = _sandbox().conferences
    if request.method == "GET":
        return _json(api.get(account_id, conference_id, _api_url()))
    api.update(account_id, conference_id, _json_body())
    return Response(status=204)


@api_bp.put(CONFERENCE + "/bxml")
def conference_bxml(account_id: str, conference_id: str) -> Response:
    """updateConferenceBxml."""
    if request.mimetype not in ("application/xml", "text/xml"):
        raise ApiError(
            415, "validation", f"Content type '{request.content_type or ''}' not supported"
        )
    _sandbox().conferences.replace_bxml(account_id, conference_id, request.get_data())
    return Response(status=204)


@api_bp.route(CONFERENCE + "/members/<member_id>", methods=["GET", "PUT"])
def conference_member(account_id: str, conference_id: str, member_id: str) -> Response:
    """getConferenceMember, updateConferenceMember."""
    api = _sandbox().conferences
    if request.method == "GET":
        return _json(api.member(account_id, conference_id, member_id, _api_url()))
    api.update_member(account_id, conference_id, member_id, _json_body())
    return Response(status=204)


@api_bp.get(CONFERENCE + "/recordings")
def conference_recordings(account_id: str, conference_id: str) -> Response:
    """listConferenceRecordings."""
    return _json(_sandbox().conferences.list_recordings(account_id, conference_id))


@api_bp.get(CONFERENCE + "/recordings/<recording_id>")
def conference_recording(account_id: str, conference_id: str, recording_id: str) -> Response:
    """getConferenceRecording."""
    return _json(_sandbox().conferences.recording(account_id, conference_id, recording_id))


@api_bp.get(CONFERENCE + "/recordings/<recording_id>/media")
def conference_recording_media(account_id: str, conference_id: str, recording_id: str) -> Response:
    """downloadConferenceRecording: the generated WAV or MP3."""
    chunks, size, content_type = _sandbox().conferences.download(
        account_id, conference_id, recording_id
    )
    reply = Response(stream_with_context(chunks), 200, content_type=content_type)
    reply.headers["Content-Length"] = str(size)
    return reply
