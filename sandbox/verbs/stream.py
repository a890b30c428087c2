"""StartStream, StopStream: the call's audio over a real WebSocket to ``destination`` while
the document goes on (instant verbs; StopStream ``wait="true"`` waits).

- StartStream connects (``destinationUsername``/``destinationPassword`` as HTTP Basic in the
  handshake), sends ``start`` (``accountId``, ``callId``, ``streamId``, ``streamName``, each
  track with ``mediaFormat`` PCMU 8000 Hz, and the ``StreamParam`` values as
  ``streamParams``), then ``media`` frames, one per track per 20 ms of simulated call time
  (160 bytes of G.711 mu-law, base64): the ``inbound`` track (the far end) carries a quiet
  tone, the ``outbound`` track silence.  ``mediaStreamStarted`` goes to ``streamEventUrl``.
- Refused: ``mediaStreamRejected`` with ``cause`` ``connection-error`` (the destination
  cannot be reached or refuses the handshake), ``duplicate`` (a stream of that ``name``
  runs; with ``originalMediaStream``) or ``track-limit`` (more than 4 tracks per call,
  ``both`` counting 2).  The document goes on.
- StopStream (``name``; an unknown one is a no-op) or the end of the call sends the last
  frames, ``stop`` and a normal close, then ``mediaStreamStopped`` (``cause: closed``, with
  ``mediaStream.duration``).  When the app's side ends the connection first,
  ``mediaStreamStopped`` follows at once: ``connection-error`` with ``errorMessage`` for an
  abnormal close or a lost connection, ``closed`` for a normal close (1000/1001).
  ``wait="true"`` holds the document until the stream has ended that way (or the call ends).
- ``mode="bidirectional"``: the app may send ``{"eventType": "playAudio", "media":
  {"contentType": "audio/pcmu", "payload": base64}}`` (played to the call; noted with its
  length) and ``{"eventType": "clear"}`` (drops what is queued).  Anything else, and any
  message on a unidirectional stream, is ignored and noted.
- A driver that takes over a call cannot take over its sockets: a stream it finds without
  one ends with ``mediaStreamStopped`` ``connection-error``.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import bxml
from sandbox.delivery import Hook
from sandbox.payloads import event, iso
from sandbox.websocket import Socket, check_destination

if TYPE_CHECKING:
    from sandbox.call import Call
    from sandbox.execution import Document
    from sandbox.payloads import Leg

KEY = "streams"
TRACK_LIMIT = 4
FRAME_SECONDS = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
MEDIA_FORMAT = {"encoding": "PCMU", "sampleRate": 8000}
CONNECT_TIMEOUT = 10.0


def _mu_law(sample: int) -> int:
    """One 16-bit linear sample as a G.711 mu-law byte."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = min(7, (magnitude >> 7).bit_length() - 1)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


# A 440 Hz tone: one second holds a whole number of cycles, so frame n is slice n % 50 of it.
_TONE = bytes(_mu_law(int(2000 * math.sin(2 * math.pi * 440 * n / 8000))) for n in range(8000))
_SILENCE = b"\xff" * FRAME_BYTES


def frame(track: str, index: int) -> str:
    """The base64 payload of frame ``index`` of ``track``."""
    if track == "outbound":
        return base64.b64encode(_SILENCE).decode("ascii")
    start = (index % 50) * FRAME_BYTES
    return base64.b64encode(_TONE[start : start + FRAME_BYTES]).decode("ascii")


def _tracks(value: str) -> list[str]:
    return ["inbound", "outbound"] if value == "both" else [value]


def _description(item: dict[str, Any], *, duration: float | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": item["id"],
        "name": item["name"],
        "destination": item["destination"],
        "startTime": iso(item["started"]),
        "tracks": item["tracks"],
        "type": "WebSocket",
    }
    if duration is not None:
        described["duration"] = f"PT{duration:.3f}S"
    return described


class Stream:
    """One live stream: its socket, and a thread sending media frames as simulated time
    passes (never ahead of it)."""

    def __init__(self, call: Call, leg: Leg, item: dict[str, Any]) -> None:
        self.call = call
        self.leg = leg
        self.item = item
        self.socket = Socket(
            item["destination"],
            username=item.get("username"),
            password=item.get("password"),
            on_message=self._received,
        )
        self.sent = 0  # frames per track sent so far
        self.started_clock = float(item["startClock"])
        self.started_real = time.monotonic()
        self.stopping = threading.Event()
        self.reported = False  # mediaStreamStopped sent
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def open(self) -> str | None:
        problem = self.socket.open(min(CONNECT_TIMEOUT, self.call.timeout))
        if problem is not None:
            return problem
        item = self.item
        metadata = {
            "accountId": self.leg.account_id,
            "callId": self.leg.call_id,
            "streamId": item["id"],
            "streamName": item["name"],
            "tracks": [{"name": t, "mediaFormat": dict(MEDIA_FORMAT)} for t in item["tracks"]],
        }
        item["metadata"] = metadata
        self.socket.send({"eventType": "start", "metadata": metadata, **_params(item)})
        self._thread = threading.Thread(target=self._pump, name="sandbox-stream", daemon=True)
        self._thread.start()
        return None

    # --- media ------------------------------------------------------------------------

    def _due(self) -> int:
        """Frames simulated time has produced: live, but never past the wait in progress."""
        scale = self.call.settings.time_scale
        live = (time.monotonic() - self.started_real) / scale if scale > 0 else math.inf
        now = min(self.started_clock + live, self.call.wait_end_clock)
        return max(0, int((now - self.started_clock) / FRAME_SECONDS + 1e-9))

    def _send_frames(self, until: int) -> bool:
        with self._lock:
            while self.sent < until:
                for track in self.item["tracks"]:
                    message = {"eventType": "media", "track": track}
                    message["payload"] = frame(track, self.sent)
                    if not self.socket.send(message):
                        return False
                self.sent += 1
        return True

    def _pump(self) -> None:
        call = self.call
        while not self.stopping.is_set():
            if call.stop_mode is not None or call.lost:
                # The driver stops (or lost the call): another one resumes the call.
                self.socket.close(1001, "going away")
                return
            if not self._send_frames(self._due()) or self.socket.ended is not None:
                self._ended_by_app()
                return
            self.stopping.wait(0.02)

    def _ended_by_app(self) -> None:
        why = self.socket.ended or "the connection ended"
        self.call.note(f"stream {self.item['name']!r}: {why}")
        if self.socket.ended_normally:
            self._report("closed", None)
        else:
            self._report("connection-error", why)
        self.call.inbox.put({"kind": "stream-ended", "data": {}, "call_id": ""})

    def _received(self, message: Any) -> None:
        name = self.item["name"]
        kind = message.get("eventType") if isinstance(message, dict) else None
        if self.item["mode"] != "bidirectional":
            self.call.note(f"stream {name!r}: a message on a unidirectional stream ignored")
        elif kind == "playAudio":
            media = message.get("media")
            media = media if isinstance(media, dict) else {}
            try:
                audio = base64.b64decode(str(media.get("payload") or ""), validate=True)
            except (binascii.Error, ValueError):
                audio = None
            content_type = media.get("contentType")
            if content_type != "audio/pcmu" or audio is None:
                self.call.note(f"stream {name!r}: playAudio ignored (audio/pcmu base64 only)")
            else:
                self.call.note(f"stream {name!r}: playAudio {len(audio) / 8:.0f} ms")
        elif kind == "clear":
            self.call.note(f"stream {name!r}: clear (queued audio dropped)")
        else:
            self.call.note(f"stream {name!r}: unknown message ignored")

    # --- the end ----------------------------------------------------------------------

    def stop(self) -> None:
        """StopStream or the end of the call: the last frames, ``stop``, close, the event."""
        self.stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(2)
            if thread.is_alive():  # blocked in a send: the destination stopped reading
                self.socket.abort("the destination stopped reading the stream")
                thread.join(5)
        if self.reported:
            return
        total = int((self.call.clock - self.started_clock) / FRAME_SECONDS + 1e-9)
        if self._send_frames(total) and self.socket.send(
            {"eventType": "stop", "metadata": self.item.get("metadata", {})}
        ):
            self.socket.close(1000, "stream stopped")
            self.call.note(f"stream {self.item['name']!r} stopped ({self.sent} frames per track)")
            self._report("closed", None)
        else:
            self._ended_by_app()

    def _report(self, cause: str, message: str | None) -> None:
        with self._lock:
            if self.reported:
                return
            self.reported = True
        seconds = max(0.0, self.call.clock - self.started_clock)
        send_event(
            self.call,
            self.leg,
            self.item.get("hook"),
            "mediaStreamStopped",
            cause=cause,
            errorMessage=message,
            mediaStream=_description(self.item, duration=seconds),
        )


def _params(item: dict[str, Any]) -> dict[str, Any]:
    return {"streamParams": item["params"]} if item["params"] else {}


def send_event(
    call: Call, leg: Leg, hook: dict[str, Any] | None, event_type: str, **fields: Any
) -> None:
    """An async stream event, from the call's thread or a stream's (no lease work here)."""
    if hook is None:
        call.note(f"{event_type}: no event URL, not sent")
        return
    payload = event(event_type, leg, **fields)
    result = call.faults.deliver(
        call.driver.deliverer,
        Hook(**hook),
        payload,
        call.timeout,
        bxml=False,
        note=call.note,
        scaled=call.settings.scaled,
    )
    for attempt in result.attempts:
        call.note(f"{event_type}: {attempt}")
    if not result.ok:
        call.note(f"{event_type} was not delivered: {result.error}")


def _live(call: Call) -> dict[str, Stream]:
    return call.streams  # type: ignore[return-value]


def start_stream(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    attrs = verb.attrs
    running: dict[str, dict[str, Any]] = call.program.setdefault(KEY, {})
    live = _live(call)
    for name in [n for n, s in live.items() if s.reported]:  # ended by the app meanwhile
        running.pop(name, None)
        del live[name]
    stream_id = f"s-{uuid.uuid4()}"
    name = str(attrs.get("name") or stream_id)
    hook = None
    if "streamEventUrl" in attrs:
        hook = Hook(
            url=urljoin(base, str(attrs["streamEventUrl"])),
            method=str(attrs.get("streamEventMethod") or "POST"),
            username=attrs.get("username"),
            password=attrs.get("password"),
        ).__dict__
    item: dict[str, Any] = {
        "id": stream_id,
        "name": name,
        "destination": str(attrs["destination"]),
        "tracks": _tracks(str(attrs.get("tracks") or "inbound")),
        "mode": str(attrs.get("mode") or "unidirectional"),
        "started": time.time(),
        "startClock": call.clock,
        "callId": leg.call_id,
        "hook": hook,
        "params": {
            str(child.attrs.get("name")): str(child.attrs.get("value", ""))
            for child in verb.children
        },
        "username": attrs.get("destinationUsername"),
        "password": attrs.get("destinationPassword"),
    }
    rejected = None
    if name in running:
        rejected = ("duplicate", f"A stream with the name {name} already exists")
    elif sum(len(s["tracks"]) for s in running.values()) + len(item["tracks"]) > TRACK_LIMIT:
        rejected = ("track-limit", f"A call may stream at most {TRACK_LIMIT} tracks")
    else:
        problem = check_destination(call.driver.deliverer.policy, item["destination"])
        stream = Stream(call, leg, item)
        problem = problem or stream.open()
        if problem is not None:
            rejected = ("connection-error", problem)
    if rejected is not None:
        cause, message = rejected
        call.note(f"StartStream {name!r} rejected: {cause} ({message})")
        extra = {"originalMediaStream": _description(running[name])} if cause == "duplicate" else {}
        send_event(
            call,
            leg,
            hook,
            "mediaStreamRejected",
            cause=cause,
            errorMessage=message,
            mediaStream=_description(item),
            **extra,
        )
        return None
    running[name] = {k: v for k, v in item.items() if k not in ("username", "password")}
    live[name] = stream
    call.note(f"StartStream {name!r} to {item['destination']}: {', '.join(item['tracks'])}")
    send_event(call, leg, hook, "mediaStreamStarted", mediaStream=_description(item))
    return None


def stop_stream(call: Call, leg: Leg, verb: bxml.Verb, base: str) -> Document | None:
    name = str(verb.attrs.get("name") or "")
    running = call.program.get(KEY) or {}
    if name not in running:
        call.note(f"StopStream: no stream named {name!r}; nothing to do")
        return None
    stream = _live(call).get(name)
    if str(verb.attrs.get("wait", "false")).lower() == "true" and stream is not None:
        scale = call.settings.time_scale
        step = 0.05 / scale if scale > 0 else 1.0
        while not stream.reported:  # until the app's side ends it (or the call ends)
            call.wait(step)
    _finish(call, name)
    return None


def _finish(call: Call, name: str) -> None:
    item = (call.program.get(KEY) or {}).pop(name)
    stream = _live(call).pop(name, None)
    if stream is not None:
        stream.stop()
        return
    leg = call.leg_by_id(item["callId"]) or call.leg
    call.note(f"stream {name!r}: its socket was in a driver that stopped")
    send_event(
        call,
        leg,
        item.get("hook"),
        "mediaStreamStopped",
        cause="connection-error",
        errorMessage="the stream's connection was lost when the sandbox driver changed",
        mediaStream=_description(item, duration=max(0.0, call.clock - item["startClock"])),
    )


def finish_all(call: Call) -> None:
    """End every stream still running (the call ends)."""
    for name in list(call.program.get(KEY) or {}):
        _finish(call, name)


UNITS = {"StartStream": start_stream, "StopStream": stop_stream}
