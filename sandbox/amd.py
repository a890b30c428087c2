"""Answering machine detection (Create Call ``machineDetection``), decided by the callee
script: ``machineDetection`` (``human``, ``machine``, ``silence``) and ``greetingSeconds``.

When the result is known, in simulated seconds after the answer:

- ``silence``: no speech; ``silence`` at ``silenceTimeout`` (10).
- a greeting shorter than ``speechThreshold`` (10): ``human`` once ``speechEndThreshold`` (5)
  of silence follows it.
- a greeting at least ``speechThreshold`` long: ``answering-machine`` at ``speechThreshold``,
  or with ``delayResult`` at the greeting's end plus ``machineSpeechEndThreshold``.
- later than ``detectionTimeout`` (15): ``timeout`` at ``detectionTimeout``.

``sync`` holds the ``answer`` callback until then and adds ``machineDetectionResult``;
``async`` (the default) sends ``answer`` at once and ``machineDetectionComplete`` to
``callbackUrl`` (fallback ``fallbackUrl``) when the result is known, if the call is still
up.  A ``human`` speaks 1 s by default, a ``machine`` 15 s.
"""

from __future__ import annotations

from typing import Any

from sandbox.callee import Callee
from sandbox.delivery import Hook
from sandbox.payloads import iso_duration

DEFAULT_GREETING = {"human": 1.0, "machine": 15.0, "silence": 0.0}


def _number(config: dict[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    return default if value is None else float(value)


def detect(config: dict[str, Any], script: Callee) -> tuple[str, float]:
    """(result value, simulated seconds after the answer it is known)."""
    timeout = _number(config, "detectionTimeout", 15)
    silence = _number(config, "silenceTimeout", 10)
    threshold = _number(config, "speechThreshold", 10)
    end = _number(config, "speechEndThreshold", 5)
    machine_end = _number(config, "machineSpeechEndThreshold", end)
    kind = script.machine_detection
    greeting = (
        DEFAULT_GREETING[kind] if script.greeting_seconds is None else script.greeting_seconds
    )
    if kind == "silence" or greeting <= 0:
        value, at = "silence", silence
    elif greeting < threshold:
        value, at = "human", greeting + end
    elif config.get("delayResult"):
        value, at = "answering-machine", greeting + machine_end
    else:
        value, at = "answering-machine", threshold
    if at > timeout:
        return "timeout", timeout
    return value, at


def result(value: str, seconds: float) -> dict[str, str]:
    return {"value": value, "duration": iso_duration(seconds)}


def hook(config: dict[str, Any]) -> Hook:
    """Where ``machineDetectionComplete`` goes: ``callbackUrl``, then ``fallbackUrl``."""
    return Hook(
        url=config["callbackUrl"],
        method=config.get("callbackMethod") or "POST",
        username=config.get("username"),
        password=config.get("password"),
        fallback_url=config.get("fallbackUrl"),
        fallback_method=config.get("fallbackMethod") or "POST",
        fallback_username=config.get("fallbackUsername"),
        fallback_password=config.get("fallbackPassword"),
    )
