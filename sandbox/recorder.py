"""A call's background recording (StartRecording ... StopRecording) as saved state: when it
started, how long it was paused.  One at a time per call; its duration leaves out the
paused time.  Pure functions over the call's saved ``program``; ``clock`` is the call's
simulated clock (``Call.clock``), ``wall`` the epoch time for startTime/endTime."""

from __future__ import annotations

from typing import Any

KEY = "recording"


def active(program: dict[str, Any]) -> dict[str, Any] | None:
    return program.get(KEY)


def start(program: dict[str, Any], clock: float, wall: float, **details: Any) -> bool:
    """Start one; False (and nothing changes) when one is already running."""
    if KEY in program:
        return False
    program[KEY] = {
        **details,
        "startedAt": clock,
        "started": wall,
        "pausedAt": None,
        "pausedFor": 0.0,
    }
    return True


def pause(program: dict[str, Any], clock: float) -> bool:
    """False when there is nothing to pause."""
    running = program.get(KEY)
    if running is None or running["pausedAt"] is not None:
        return False
    running["pausedAt"] = clock
    return True


def resume(program: dict[str, Any], clock: float) -> bool:
    """False when there is nothing paused."""
    running = program.get(KEY)
    if running is None or running["pausedAt"] is None:
        return False
    running["pausedFor"] += clock - running["pausedAt"]
    running["pausedAt"] = None
    return True


def stop(program: dict[str, Any], clock: float, wall: float) -> dict[str, Any] | None:
    """End it: its details plus ``ended`` (wall) and ``seconds`` recorded (without pauses)."""
    running = program.pop(KEY, None)
    if running is None:
        return None
    if running["pausedAt"] is not None:
        resume({KEY: running}, clock)
    seconds = max(0.0, clock - running["startedAt"] - running["pausedFor"])
    return {**running, "ended": wall, "seconds": seconds}
