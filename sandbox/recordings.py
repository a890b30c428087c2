"""The Recordings API: list, get and delete a call's recordings, download their (generated)
media, read and delete their transcription.  And the Transcriptions API: a call's real-time
transcriptions (StartTranscription).

Media is ``404`` until the recording is ``complete`` (it is ``processing`` from the moment it
ends until just before ``recordingAvailable``).  A call whose id is unknown has no
recordings (``[]``, not ``404``), as Bandwidth answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sandbox import media
from sandbox.catalog import Catalog
from sandbox.errors import ApiError


def _seconds(duration: str) -> float:
    """``PT13.67S`` -> 13.67 (the only form the sandbox writes)."""
    return float(duration.removeprefix("PT").removesuffix("S") or 0)


def parse_time(name: str, value: str | None) -> float | None:
    """An ISO-8601 query parameter as epoch seconds; 400 naming it when it is not one."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "validation", f"Invalid {name}: not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ApiError(400, "validation", f"Invalid {name}: the time needs a zone (Z)")
    return moment.timestamp()


class _AccountApi:
    """Operations over one account's catalog rows; another account gets 403."""

    def __init__(self, catalog: Catalog, account_id: str) -> None:
        self.catalog = catalog
        self.account_id = account_id

    def _check_account(self, account_id: str) -> None:
        if account_id != self.account_id:
            raise ApiError(403, "authorization-error", "Access is denied")


class Recordings(_AccountApi):
    def _found(self, account_id: str, call_id: str, recording_id: str) -> dict[str, Any]:
        self._check_account(account_id)
        row = self.catalog.recording(call_id, recording_id)
        if row is None or row["account_id"] != account_id:
            raise ApiError(404, "validation", f"Recording [{recording_id}] not found")
        return row

    @staticmethod
    def _metadata(row: dict[str, Any]) -> dict[str, Any]:
        meta = dict(row["metadata"])
        meta["status"] = row["status"]
        transcription = row["transcription"]
        if transcription is not None:
            meta["transcription"] = {
                key: transcription[key] for key in ("id", "status", "completedTime", "url")
            }
        return meta

    def for_call(self, account_id: str, call_id: str) -> list[dict[str, Any]]:
        self._check_account(account_id)
        return [self._metadata(row) for row in self.catalog.recordings(account_id, call_id=call_id)]

    def for_account(self, account_id: str, args: dict[str, str]) -> list[dict[str, Any]]:
        """listAccountCallRecordings: ``to``, ``from``, ``minStartTime`` (inclusive),
        ``maxStartTime`` (exclusive); at most 1000, oldest first."""
        self._check_account(account_id)
        rows = self.catalog.recordings(
            account_id,
            min_start=parse_time("minStartTime", args.get("minStartTime")),
            max_start=parse_time("maxStartTime", args.get("maxStartTime")),
            limit=10_000,
        )
        # Calls' recordings only: a conference's are listed under the conference.
        found = [self._metadata(row) for row in rows if "conferenceId" not in row["metadata"]]
        for key in ("to", "from"):
            if args.get(key):
                found = [meta for meta in found if meta.get(key) == args[key]]
        return found[:1000]

    def get(self, account_id: str, call_id: str, recording_id: str) -> dict[str, Any]:
        return self._metadata(self._found(account_id, call_id, recording_id))

    def delete(self, account_id: str, call_id: str, recording_id: str) -> None:
        self._found(account_id, call_id, recording_id)
        self.catalog.delete_recording(recording_id)

    def download(
        self, account_id: str, call_id: str, recording_id: str
    ) -> tuple[Iterator[bytes], int, str]:
        row = self._found(account_id, call_id, recording_id)
        if row["media_deleted"]:
            raise ApiError(404, "validation", f"Recording [{recording_id}] media was deleted")
        if row["status"] != "complete":
            raise ApiError(404, "validation", f"Recording [{recording_id}] is still processing")
        meta = row["metadata"]
        return media.media(meta.get("fileFormat", "wav"), _seconds(meta["duration"]))

    def delete_media(self, account_id: str, call_id: str, recording_id: str) -> None:
        self._found(account_id, call_id, recording_id)
        self.catalog.set_recording(recording_id, media_deleted=1)

    def transcription(self, account_id: str, call_id: str, recording_id: str) -> dict[str, Any]:
        """getRecordingTranscription: ``{"transcripts": [...], "clips": [...]}``."""
        row = self._found(account_id, call_id, recording_id)
        found = row["transcription"]
        if found is None:
            raise ApiError(404, "validation", f"Recording [{recording_id}] has no transcription")
        seconds = _seconds(row["metadata"]["duration"])
        clips = [
            {**item, "startTimeSeconds": 0.0, "endTimeSeconds": round(seconds, 3)}
            for item in found["transcripts"]
        ]
        return {"transcripts": found["transcripts"], "clips": clips}

    def delete_transcription(self, account_id: str, call_id: str, recording_id: str) -> None:
        row = self._found(account_id, call_id, recording_id)
        if row["transcription"] is None:
            raise ApiError(404, "validation", f"Recording [{recording_id}] has no transcription")
        self.catalog.set_recording(recording_id, transcription=None)


class Transcriptions(_AccountApi):
    """listRealTimeTranscriptions, getRealTimeTranscription, deleteRealTimeTranscription."""

    def for_call(self, account_id: str, call_id: str, call_url: str) -> list[dict[str, Any]]:
        self._check_account(account_id)
        return [
            {
                "transcriptionId": transcription_id,
                "transcriptionName": data["name"],
                "transcriptionUrl": f"{call_url}/transcriptions/{transcription_id}",
            }
            for transcription_id, data in self.catalog.transcriptions(account_id, call_id)
        ]

    def get(self, account_id: str, call_id: str, transcription_id: str) -> dict[str, Any]:
        self._check_account(account_id)
        for found_id, data in self.catalog.transcriptions(account_id, call_id):
            if found_id == transcription_id:
                return {
                    "accountId": account_id,
                    "callId": call_id,
                    "transcriptionId": transcription_id,
                    "tracks": data["tracks"],
                }
        raise ApiError(404, "validation", f"Transcription [{transcription_id}] not found")

    def delete(self, account_id: str, call_id: str, transcription_id: str) -> None:
        self._check_account(account_id)
        if not self.catalog.delete_transcription(call_id, transcription_id):
            raise ApiError(404, "validation", f"Transcription [{transcription_id}] not found")
