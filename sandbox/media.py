"""Recorded media, generated: a WAV (8 kHz, 16-bit, mono; a quiet 440 Hz tone) or an MP3
(silent MPEG-1 Layer III frames) lasting the recording's duration.

Both are streamed one second at a time, so a three-hour recording costs no more memory
than a short one.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

RATE = 8000
TONE_HZ = 440  # a whole number of cycles per second: one second of samples repeats seamlessly
AMPLITUDE = 3000

# One MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, mono, no CRC, 1152 samples.  With all
# side information zero every granule is empty, which decoders play as silence.
MP3_HEADER = b"\xff\xfb\x90\xc0"
MP3_FRAME_BYTES = 144 * 128_000 // 44_100  # 417
MP3_FRAME_SECONDS = 1152 / 44_100
CONTENT_TYPES = {"wav": "audio/vnd.wave", "mp3": "audio/mpeg"}


def _second_of_tone() -> bytes:
    samples = (int(AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * n / RATE)) for n in range(RATE))
    return struct.pack(f"<{RATE}h", *samples)


def wav_size(seconds: float) -> int:
    return 44 + round(max(0.0, seconds) * RATE) * 2


def wav(seconds: float) -> Iterator[bytes]:
    """A WAV file of ``seconds``, in chunks."""
    frames = round(max(0.0, seconds) * RATE)
    size = frames * 2
    # The canonical 44-byte header (RIFF, fmt: PCM, 1 channel, 16 bits; data) with the final
    # length, written first so the samples can stream after it.
    yield struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + size,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        RATE,
        RATE * 2,
        2,
        16,
        b"data",
        size,
    )
    tone = _second_of_tone()
    remaining = frames * 2
    while remaining > 0:
        chunk = tone[:remaining]
        remaining -= len(chunk)
        yield chunk


def mp3_size(seconds: float) -> int:
    return max(1, math.ceil(max(0.0, seconds) / MP3_FRAME_SECONDS)) * MP3_FRAME_BYTES


def mp3(seconds: float) -> Iterator[bytes]:
    """An MP3 file of at least ``seconds`` (whole frames), in chunks."""
    frame = MP3_HEADER + bytes(MP3_FRAME_BYTES - len(MP3_HEADER))
    frames = mp3_size(seconds) // MP3_FRAME_BYTES
    per_chunk = 40  # about one second
    while frames > 0:
        count = min(frames, per_chunk)
        frames -= count
        yield frame * count


def media(file_format: str, seconds: float) -> tuple[Iterator[bytes], int, str]:
    """(chunks, length in bytes, content type) of a recording's file."""
    if file_format == "mp3":
        return mp3(seconds), mp3_size(seconds), CONTENT_TYPES["mp3"]
    return wav(seconds), wav_size(seconds), CONTENT_TYPES["wav"]
