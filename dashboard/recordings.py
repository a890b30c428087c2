"""A call's recordings, played in its page: the media is fetched through the app.

The browser cannot fetch Bandwidth's ``mediaUrl`` itself (it needs the Voice API's
credentials, which never leave the server), so the page's ``<audio>`` points at a dashboard
route, behind the operator's login, that fetches the media with those credentials.

- Only a ``mediaUrl`` a stored ``recordComplete``/``recordingAvailable`` event of that call
  gave, and only when it lies under the configured Voice API base URL (same scheme, host
  and port, below its path, no ``..``): a forged callback cannot make the app fetch
  anything else (no SSRF). Redirects are not followed, for the same reason.
- Byte ranges: a media element asks for ``Range: bytes=N-``; the answer is at most
  ``MEDIA_WINDOW`` bytes (206 with ``Content-Range``) and the element asks for the rest as
  it plays, so a long recording never sits whole in a worker's memory (the shipped worker
  buffers each response). The Voice API is asked for that range too; when it ignores the
  ``Range`` header (200 with the whole file), the window is cut out of its stream here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Response, current_app

import config
from callbacks.payload import readable_duration

RECORDING_EVENTS = ("recordComplete", "recordingAvailable", "conferenceRecordingAvailable")
MEDIA_WINDOW = 1024 * 1024
CHUNK = 64 * 1024
TIMEOUT = (5.0, 30.0)  # connect, read
# Types a browser plays; Bandwidth's and the sandbox's WAV type is not one it knows.
CONTENT_TYPES = {"audio/vnd.wave": "audio/wav", "audio/x-wav": "audio/wav"}
DEFAULT_PORTS = {"http": 80, "https": 443}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class MediaError(Exception):
    """The media cannot be served; ``status`` and a message for the operator."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Recording:
    recording_id: str
    media_url: str
    event_type: str
    duration: str | None
    file_format: str | None
    channels: Any
    allowed: bool


def allowed_url(url: str, base_url: str) -> bool:
    """Whether ``url`` is on the Voice API's origin and below its base path."""
    try:
        target, base = urlsplit(url), urlsplit(base_url)
        target_port = target.port or DEFAULT_PORTS.get(target.scheme)
        base_port = base.port or DEFAULT_PORTS.get(base.scheme)
    except ValueError:  # a port that is not a number
        return False
    if target.scheme not in DEFAULT_PORTS or target.username or target.password:
        return False
    if (target.scheme, target.hostname, target_port) != (base.scheme, base.hostname, base_port):
        return False
    segments = target.path.split("/")
    if any(s in (".", "..") or "%2e" in s.lower() or "\\" in s for s in segments):
        return False
    prefix = base.path.rstrip("/") + "/"
    return target.path.startswith(prefix) and not target.fragment


def _voice_api() -> dict[str, str]:
    return config.voice_api(current_app.config)


def of_call(rows: list[dict[str, Any]]) -> list[Recording]:
    """The recordings a call's stored events announce, one per recordingId (the latest
    event about it wins: recordingAvailable comes after recordComplete)."""
    base = _voice_api()["base_url"]
    found: dict[str, Recording] = {}
    for row in rows:
        payload = row.get("payload")
        if row.get("event_type") not in RECORDING_EVENTS or not isinstance(payload, dict):
            continue
        recording_id, media_url = payload.get("recordingId"), payload.get("mediaUrl")
        if not isinstance(recording_id, str) or not isinstance(media_url, str):
            continue
        found[recording_id] = Recording(
            recording_id=recording_id,
            media_url=media_url,
            event_type=str(row.get("event_type")),
            duration=readable_duration(payload.get("duration")),
            file_format=payload.get("fileFormat"),
            channels=payload.get("channels"),
            allowed=allowed_url(media_url, base),
        )
    return list(found.values())


def requested_range(header: str | None) -> tuple[int | None, int | None] | None:
    """(first, last) of a single ``bytes=`` range, ``(None, n)`` for the last n bytes, or
    None for no range, several ranges or one we cannot read (served whole, as allowed)."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or match.group(0) == "bytes=-":
        return None
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(2)) if match.group(2) else None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def _window(wanted: tuple[int | None, int | None], total: int) -> tuple[int, int]:
    """The bytes to send, at most MEDIA_WINDOW of them, as (first, last) inclusive."""
    first, last = wanted
    if first is None:  # the last ``last`` bytes
        first = max(0, total - (last or 0))
        last = total - 1
    elif last is None or last >= total:
        last = total - 1
    return first, min(last, first + MEDIA_WINDOW - 1)


def _upstream_range(wanted: tuple[int | None, int | None]) -> str:
    first, last = wanted
    if first is None:
        return f"bytes=-{min(last or 0, MEDIA_WINDOW)}"
    end = first + MEDIA_WINDOW - 1 if last is None else min(last, first + MEDIA_WINDOW - 1)
    return f"bytes={first}-{end}"


def _cut(chunks: Iterator[bytes], first: int, count: int) -> Iterator[bytes]:
    """``count`` bytes from offset ``first`` of a stream."""
    skip, left = first, count
    for chunk in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        piece = chunk[skip : skip + left]
        skip = 0
        left -= len(piece)
        yield piece
        if left <= 0:
            return


def _closing(upstream: requests.Response, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        upstream.close()


def media(recording: Recording, range_header: str | None) -> Response:
    """The recording's media fetched from the Voice API, as the browser asked for it."""
    api = _voice_api()
    if not allowed_url(recording.media_url, api["base_url"]):
        raise MediaError(
            403,
            "This recording's mediaUrl is not on the configured Voice API "
            f"({api['base_url']}); the app fetches media only from there.",
        )
    wanted = requested_range(range_header)
    headers = {"Range": _upstream_range(wanted)} if wanted else {}
    try:
        upstream = requests.get(
            recording.media_url,
            auth=(api["username"], api["password"]),
            headers=headers,
            stream=True,
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise MediaError(
            502, f"The Voice API did not answer for this recording's media ({type(exc).__name__})."
        ) from None
    try:
        return _relay(upstream, wanted)
    except BaseException:
        upstream.close()
        raise


def _relay(upstream: requests.Response, wanted: tuple[int | None, int | None] | None) -> Response:
    status = upstream.status_code
    if status == 404:
        raise MediaError(
            404, "The Voice API has no media for this recording (still processing, or deleted)."
        )
    if status in (401, 403):
        raise MediaError(502, f"The Voice API refused the app's credentials (HTTP {status}).")
    if status == 416:
        raise MediaError(416, "The range asked for is beyond the end of the recording.")
    if status not in (200, 206):
        raise MediaError(502, f"The Voice API answered HTTP {status} for this recording's media.")
    content_type = upstream.headers.get("Content-Type", "").split(";")[0].strip().lower()
    content_type = CONTENT_TYPES.get(content_type, content_type)
    if not content_type.startswith("audio/"):
        content_type = "application/octet-stream"
    chunks = upstream.iter_content(CHUNK)
    length = upstream.headers.get("Content-Length")
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": "inline"}
    if status == 206 and upstream.headers.get("Content-Range"):
        headers["Content-Range"] = upstream.headers["Content-Range"]
    elif wanted is not None and length is not None and length.isdigit():
        total = int(length)
        first, last = _window(wanted, total)
        if first >= total:
            upstream.close()
            response = Response(status=416)
            response.headers["Content-Range"] = f"bytes */{total}"
            return response
        chunks = _cut(chunks, first, last - first + 1)
        status, length = 206, str(last - first + 1)
        headers["Content-Range"] = f"bytes {first}-{last}/{total}"
    else:
        status = 200
    response = Response(_closing(upstream, chunks), status=status, content_type=content_type)
    response.call_on_close(upstream.close)  # also when the body is never read (HEAD)
    if length is not None and length.isdigit():
        response.headers["Content-Length"] = length
    response.headers.update(headers)
    return response
