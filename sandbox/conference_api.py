"""The Conferences API: list, get and update conferences, replace their BXML, read and update
members, and their recordings (metadata and generated media).

Requests never send callbacks: what a conference must do (end, redirect, run BXML, note a
member's new mute/hold) reaches its members' runners as ``conference`` inputs.  An end goes
to every member (each one leaves, with its ``conferenceMemberExit``); a redirect or new BXML
to the member that joined first, which sends ``conferenceRedirect`` or runs the document.

Choices where Bandwidth's documents are silent: ``state`` is read as ``status`` (the
descriptions call it state); ending a completed conference again is a no-op (``204``);
redirecting one, or updating a member that has left, is ``404``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from marshmallow import ValidationError, fields
from marshmallow.validate import Length

import bxml
from calls.fields import Bool, choice, credential, method, optional_url
from calls.schemas import CamelCaseSchema
from sandbox.conference_store import MAX_MEMBERS, ConferenceStore
from sandbox.delivery import UrlPolicy
from sandbox.errors import ApiError, describe
from sandbox.listing import decode_page_token, encode_page_token
from sandbox.payloads import iso
from sandbox.recordings import Recordings, parse_time

AddInput = Callable[[str, str, dict[str, Any]], None]


class UpdateConferenceSchema(CamelCaseSchema):
    status = choice(("active", "completed"), allow_none=True)
    redirect_url = optional_url()
    redirect_method = method()
    username = credential()
    password = credential()
    redirect_fallback_url = optional_url()
    redirect_fallback_method = method()
    fallback_username = credential()
    fallback_password = credential()

    def rules(self, data: Any) -> dict[str, list[str]]:
        if data.get("status") == "completed":
            return {
                self.wire_keys[name]: ["Not allowed when status is completed."]
                for name in ("redirect_url", "redirect_fallback_url")
                if data.get(name)
            }
        if not data.get("redirect_url"):
            return {"redirectUrl": ["Required when status is active (the default)."]}
        return {}


class UpdateMemberSchema(CamelCaseSchema):
    mute = Bool()
    hold = Bool()
    call_ids_to_coach = fields.List(
        fields.String(validate=Length(1, 128)), allow_none=True, validate=Length(max=MAX_MEMBERS)
    )


class Conferences:
    def __init__(
        self,
        store: ConferenceStore,
        recordings: Recordings,
        account_id: str,
        policy: UrlPolicy,
        add_input: AddInput,
    ) -> None:
        self.store = store
        self.recordings = recordings
        self.account_id = account_id
        self.policy = policy
        self.add_input = add_input
        self._update_schema = UpdateConferenceSchema()
        self._member_schema = UpdateMemberSchema()

    # --- reading ------------------------------------------------------------------------

    def _found(self, account_id: str, conference_id: str) -> dict[str, Any]:
        if account_id != self.account_id:
            raise ApiError(403, "authorization-error", "Access is denied")
        row = self.store.get(conference_id) if len(conference_id) <= 128 else None
        if row is None or row["account_id"] != account_id:
            raise ApiError(404, "validation", f"Conference [{conference_id}] not found")
        return row

    def _member(self, api_url: str, row: dict[str, Any]) -> dict[str, Any]:
        conference_url = f"{api_url}/accounts/{self.account_id}/conferences/{row['conference_id']}"
        return {
            "callId": row["call_id"],
            "conferenceId": row["conference_id"],
            "memberUrl": f"{conference_url}/members/{row['call_id']}",
            "mute": bool(row.get("mute")),
            "hold": bool(row.get("hold")),
            "callIdsToCoach": row.get("callIdsToCoach"),
        }

    def _conference(self, api_url: str, row: dict[str, Any], *, members: bool) -> dict[str, Any]:
        hook = row["config"].get("hook") or {}
        shown: dict[str, Any] = {
            "id": row["conference_id"],
            "name": row["name"],
            "createdTime": iso(row["created_at"]),
            "completedTime": iso(row["completed_at"]),
            "conferenceEventUrl": hook.get("url"),
            "conferenceEventMethod": hook.get("method") if hook else None,
            "tag": row["config"].get("tag"),
        }
        if members:
            shown["activeMembers"] = [
                self._member(api_url, member) for member in self.store.members(row["conference_id"])
            ]
        return shown

    def get(self, account_id: str, conference_id: str, api_url: str) -> dict[str, Any]:
        """getConference, with its ``activeMembers``."""
        return self._conference(api_url, self._found(account_id, conference_id), members=True)

    def list_conferences(
        self, account_id: str, args: dict[str, str], api_url: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """listConferences: oldest first, filtered by ``name`` and ``minCreatedTime`` /
        ``maxCreatedTime`` (both inclusive); ``pageSize`` (1-1000, default 1000) of them and
        the next page's token, if any.  No ``activeMembers`` here."""
        if account_id != self.account_id:
            raise ApiError(403, "authorization-error", "Access is denied")
        raw_size = args.get("pageSize") or "1000"
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= 1000:
            raise ApiError(400, "validation", "Invalid pageSize: an integer from 1 to 1000")
        size = int(raw_size)
        # Times show whole milliseconds: maxCreatedTime takes in its whole millisecond.
        latest = parse_time("maxCreatedTime", args.get("maxCreatedTime"))
        rows = self.store.page(
            account_id,
            decode_page_token(args.get("pageToken")),
            name=args.get("name") or None,
            min_created=parse_time("minCreatedTime", args.get("minCreatedTime")),
            created_before=None if latest is None else latest + 0.001,
            limit=size + 1,
        )
        page = rows[:size]
        token = None
        if len(rows) > size:
            token = encode_page_token(page[-1]["created_at"], page[-1]["conference_id"])
        return [self._conference(api_url, row, members=False) for row in page], token

    def member(
        self, account_id: str, conference_id: str, member_id: str, api_url: str
    ) -> dict[str, Any]:
        """getConferenceMember (also a member that has left: its last state)."""
        self._found(account_id, conference_id)
        row = self.store.member(conference_id, member_id) if len(member_id) <= 128 else None
        if row is None:
            raise ApiError(404, "validation", f"Member [{member_id}] not found")
        return self._member(api_url, row)

    # --- changes ------------------------------------------------------------------------

    def update(self, account_id: str, conference_id: str, body: Any) -> None:
        """updateConference: ``status: completed`` ejects everyone; ``active`` (the
        default) with ``redirectUrl`` sends ``conferenceRedirect`` there."""
        row = self._found(account_id, conference_id)
        if isinstance(body, dict) and "state" in body and "status" not in body:
            body = {("status" if key == "state" else key): value for key, value in body.items()}
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "The request body must be a JSON object")
        try:
            data = self._update_schema.load(body)
        except ValidationError as error:
            raise ApiError(400, "validation", describe(error, required=())) from None
        for name in ("redirectUrl", "redirectFallbackUrl"):
            if body.get(name):
                problem = self.policy.problem(body[name])
                if problem:
                    raise ApiError(400, "validation", f"Invalid {name}: {problem}")
        members = self.store.members(conference_id) if row["active"] else []
        if data.get("status") == "completed":
            for member in members:  # each leaves, and the last one completes it
                self.add_input(member["call_id"], "conference", _end(conference_id))
            return
        if not members:
            raise ApiError(404, "validation", f"Conference [{conference_id}] has ended")
        redirect = {key: value for key, value in body.items() if value is not None}
        redirect.pop("status", None)
        self.add_input(
            members[0]["call_id"],
            "conference",
            {"conferenceId": conference_id, "redirect": redirect},
        )

    def replace_bxml(self, account_id: str, conference_id: str, document: bytes) -> None:
        """updateConferenceBxml: a ``<Bxml>`` (or ``<Response>``) of conference verbs, run on
        the conference; any other verb refuses the whole document (400)."""
        row = self._found(account_id, conference_id)
        try:
            text = document.decode("utf-8-sig")
            root = bxml.parse(text)
        except UnicodeDecodeError:
            raise ApiError(400, "validation", "The BXML document is not UTF-8") from None
        except bxml.BxmlError as exc:
            raise ApiError(400, "validation", f"Invalid BXML: {exc}") from None
        refused = [verb.name for verb in root if verb.name not in bxml.replies.CONFERENCE_ALLOWS]
        if refused:
            allowed = ", ".join(sorted(bxml.replies.CONFERENCE_ALLOWS))
            raise ApiError(
                400,
                "validation",
                f"Invalid BXML: {refused[0]} is not allowed in a conference (allowed: {allowed})",
            )
        members = self.store.members(conference_id) if row["active"] else []
        if not members:
            raise ApiError(404, "validation", f"Conference [{conference_id}] has ended")
        self.add_input(
            members[0]["call_id"], "conference", {"conferenceId": conference_id, "bxml": text}
        )

    def update_member(self, account_id: str, conference_id: str, member_id: str, body: Any) -> None:
        """updateConferenceMember: ``mute``, ``hold``, ``callIdsToCoach`` (omitted: kept)."""
        self._found(account_id, conference_id)
        if not isinstance(body, dict):
            raise ApiError(400, "validation", "The request body must be a JSON object")
        try:
            data = self._member_schema.load(body)
        except ValidationError as error:
            raise ApiError(400, "validation", describe(error, required=())) from None
        changes = {self._member_schema.wire_keys[key]: value for key, value in data.items()}
        if not self.store.update_member(conference_id, member_id, changes):
            raise ApiError(
                404, "validation", f"Member [{member_id}] is not in conference [{conference_id}]"
            )
        self.add_input(member_id, "conference", {"conferenceId": conference_id, "member": changes})

    # --- recordings ---------------------------------------------------------------------

    def list_recordings(self, account_id: str, conference_id: str) -> list[dict[str, Any]]:
        self._found(account_id, conference_id)
        return self.recordings.for_call(account_id, conference_id)

    def recording(self, account_id: str, conference_id: str, recording_id: str) -> dict[str, Any]:
        self._found(account_id, conference_id)
        return self.recordings.get(account_id, conference_id, recording_id)

    def download(
        self, account_id: str, conference_id: str, recording_id: str
    ) -> tuple[Iterator[bytes], int, str]:
        self._found(account_id, conference_id)
        return self.recordings.download(account_id, conference_id, recording_id)


def _end(conference_id: str) -> dict[str, Any]:
    return {"conferenceId": conference_id, "end": True}
