"""Rows beside the calls: Voice applications and their numbers, recordings and their
transcripts; and the pages of calls listCalls reads.  Statements over the tables of
``sandbox.db``, through its connections."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from sandbox.db import SandboxDB, call_row
from sandbox.tables import applications, calls, numbers, recordings, transcriptions


class Catalog:
    def __init__(self, db: SandboxDB) -> None:
        self.db = db

    def set_application(
        self, application_id: str, config: dict[str, Any], owned: list[str]
    ) -> None:
        """Create or replace an application; ``owned`` numbers move to it from any other."""
        body = json.dumps(config, separators=(",", ":"))
        with self.db.writing() as conn:
            conn.execute(
                delete(applications).where(applications.c.application_id == application_id)
            )
            conn.execute(
                insert(applications).values(
                    application_id=application_id, config=body, updated_at=time.time()
                )
            )
            conn.execute(delete(numbers).where(numbers.c.application_id == application_id))
            if owned:
                conn.execute(delete(numbers).where(numbers.c.number.in_(owned)))
                conn.execute(
                    insert(numbers),
                    [{"number": n, "application_id": application_id} for n in owned],
                )

    def delete_application(self, application_id: str) -> bool:
        with self.db.writing() as conn:
            conn.execute(delete(numbers).where(numbers.c.application_id == application_id))
            return bool(
                conn.execute(
                    delete(applications).where(applications.c.application_id == application_id)
                ).rowcount
            )

    def list_applications(self) -> list[tuple[str, dict[str, Any], list[str]]]:
        """(application id, config, numbers), by id."""
        with self.db.reading() as conn:
            rows = conn.execute(select(applications).order_by(applications.c.application_id))
            owned: dict[str, list[str]] = {}
            for number, application_id in conn.execute(
                select(numbers.c.number, numbers.c.application_id).order_by(numbers.c.number)
            ):
                owned.setdefault(application_id, []).append(number)
            return [
                (row.application_id, json.loads(row.config), owned.get(row.application_id, []))
                for row in rows
            ]

    def application_for(self, number: str) -> tuple[str, dict[str, Any]] | None:
        """The application a number belongs to: (id, config), or None."""
        query = select(applications.c.application_id, applications.c.config).join(
            numbers, numbers.c.application_id == applications.c.application_id
        )
        with self.db.reading() as conn:
            row = conn.execute(query.where(numbers.c.number == number)).first()
        return None if row is None else (row[0], json.loads(row[1]))

    # --- calls, for listCalls ------------------------------------------------------------

    def calls_after(
        self,
        account_id: str,
        after: tuple[float, str] | None,
        *,
        to: str | None,
        from_: str | None,
        cause: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The account's calls after ``(created_at, call_id)``, oldest first."""
        query = select(calls).where(calls.c.account_id == account_id)
        if after is not None:
            query = query.where(
                or_(
                    calls.c.created_at > after[0],
                    and_(calls.c.created_at == after[0], calls.c.call_id > after[1]),
                )
            )
        if to is not None:
            query = query.where(calls.c.to_number == to)
        if from_ is not None:
            query = query.where(calls.c.from_number == from_)
        if cause is not None:
            query = query.where(calls.c.disconnect_cause == cause)
        query = query.order_by(calls.c.created_at, calls.c.call_id).limit(limit)
        with self.db.reading() as conn:
            return [call_row(row) for row in conn.execute(query)]  # type: ignore[misc]

    # --- recordings -------------------------------------------------------------------

    def add_recording(
        self, meta: dict[str, Any], start_time: float, owner_id: str | None = None
    ) -> None:
        """Store a finished recording (status ``processing`` until it is available), under
        its call, or ``owner_id`` (a conference's id)."""
        with self.db.writing() as conn:
            conn.execute(
                insert(recordings).values(
                    recording_id=meta["recordingId"],
                    call_id=owner_id or meta["callId"],
                    account_id=meta["accountId"],
                    start_time=start_time,
                    status="processing",
                    media_deleted=0,
                    metadata=json.dumps(meta, separators=(",", ":")),
                    transcription=None,
                )
            )

    def set_recording(self, recording_id: str, **values: Any) -> None:
        """Update ``status``, ``media_deleted`` or ``transcription`` (a dict, or None)."""
        if "transcription" in values and values["transcription"] is not None:
            values["transcription"] = json.dumps(values["transcription"], separators=(",", ":"))
        with self.db.writing() as conn:
            conn.execute(
                update(recordings).where(recordings.c.recording_id == recording_id).values(values)
            )

    def recording(self, call_id: str, recording_id: str) -> dict[str, Any] | None:
        query = select(recordings).where(
            recordings.c.recording_id == recording_id, recordings.c.call_id == call_id
        )
        with self.db.reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else _recording(row)

    def recordings(
        self,
        account_id: str,
        *,
        call_id: str | None = None,
        min_start: float | None = None,
        max_start: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Recordings oldest first: of one call, or of the account from ``min_start``
        (inclusive) to ``max_start`` (exclusive)."""
        query = select(recordings).where(recordings.c.account_id == account_id)
        if call_id is not None:
            query = query.where(recordings.c.call_id == call_id)
        if min_start is not None:
            query = query.where(recordings.c.start_time >= min_start)
        if max_start is not None:
            query = query.where(recordings.c.start_time < max_start)
        query = query.order_by(recordings.c.start_time, recordings.c.recording_id).limit(limit)
        with self.db.reading() as conn:
            return [_recording(row) for row in conn.execute(query)]

    def delete_recording(self, recording_id: str) -> None:
        with self.db.writing() as conn:
            conn.execute(delete(recordings).where(recordings.c.recording_id == recording_id))

    # --- real-time transcriptions -----------------------------------------------------

    def add_transcription(
        self, transcription_id: str, call_id: str, account_id: str, data: dict
    ) -> None:
        with self.db.writing() as conn:
            conn.execute(
                insert(transcriptions).values(
                    transcription_id=transcription_id,
                    call_id=call_id,
                    account_id=account_id,
                    created_at=time.time(),
                    data=json.dumps(data, separators=(",", ":")),
                )
            )

    def transcriptions(self, account_id: str, call_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(id, data) of one call's transcriptions, oldest first."""
        query = (
            select(transcriptions.c.transcription_id, transcriptions.c.data)
            .where(transcriptions.c.account_id == account_id, transcriptions.c.call_id == call_id)
            .order_by(transcriptions.c.created_at)
        )
        with self.db.reading() as conn:
            return [(row[0], json.loads(row[1])) for row in conn.execute(query)]

    def delete_transcription(self, call_id: str, transcription_id: str) -> bool:
        with self.db.writing() as conn:
            return bool(
                conn.execute(
                    delete(transcriptions).where(
                        transcriptions.c.transcription_id == transcription_id,
                        transcriptions.c.call_id == call_id,
                    )
                ).rowcount
            )


def _recording(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item["metadata"] = json.loads(item["metadata"])
    if item["transcription"] is not None:
        item["transcription"] = json.loads(item["transcription"])
    return item
