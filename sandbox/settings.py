"""Sandbox settings: one frozen object, read from a Flask config or the environment.

Every setting has the same name as its environment variable (``SANDBOX_TIME_SCALE=0.01``).
Inside the app the Flask config wins, then the environment; the standalone server and the
pytest plugin build a ``Settings`` directly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SANDBOX_ACCOUNT_ID = "9900000"
SANDBOX_USERNAME = "sandbox"

# name -> (default, type).  bool settings accept 1/0, true/false, yes/no, on/off.
KEYS: dict[str, tuple[Any, type]] = {
    # Simulated durations (speech, Pause, Ring, ringing, timeouts of Gather) are multiplied by
    # this: 0.01 makes a 5 s Pause take 50 ms.  Callback timeouts and leases stay real.
    "SANDBOX_TIME_SCALE": (1.0, float),
    # "real": simulated time runs at SANDBOX_TIME_SCALE; "manual": it passes only when a
    # test advances it (sandbox.clock, the voice_call fixture); one process runs the calls.
    "SANDBOX_CLOCK": ("real", str),
    # Send each callback first without credentials and answer a 401 challenge with them.
    "SANDBOX_CHALLENGE": (False, bool),
    # Seconds a driver owns a call without renewing; another driver resumes it after that.
    "SANDBOX_LEASE_SECONDS": (30.0, float),
    # A call no driver has run for longer (the sandbox was stopped) is ended, not resumed,
    # when a driver starts again: a reload resumes its calls, a restart hours later does not.
    "SANDBOX_RESUME_SECONDS": (300.0, float),
    # How often a busy driver looks for digits, hang-ups and API updates from other processes.
    "SANDBOX_POLL_INTERVAL": (0.05, float),
    # How often an idle driver looks for calls to run (new calls in this process wake it).
    "SANDBOX_IDLE_POLL": (1.0, float),
    # "auto": start the driver with the process (at the first request the app serves);
    # "off": this process never executes calls (another one does).
    "SANDBOX_DRIVER": ("auto", str),
    "SANDBOX_MAX_CALLS": (500, int),  # calls one driver executes at once
    "SANDBOX_SPEECH_SECONDS_PER_CHAR": (0.06, float),
    "SANDBOX_AUDIO_SECONDS": (3.0, float),  # a PlayAudio's simulated length
    "SANDBOX_RING_SECONDS": (1.0, float),  # how long the callee's phone rings before answering
    "SANDBOX_BRIDGE_SECONDS": (10.0, float),  # a transfer target talks this long, then hangs up
    "SANDBOX_RECORD_SECONDS": (3.0, float),  # how long the callee speaks into a <Record>
    "SANDBOX_KEEP_DAYS": (7.0, float),  # ended calls are kept (and readable) this long
    # Bandwidth's account limits (0 = none): Create Call (and a dial-in) over them gets 429.
    "SANDBOX_CALLS_PER_SECOND": (5, int),
    "SANDBOX_CONCURRENT_CALLS": (100, int),
    # Opt-in delivery faults, each a comma-separated list of event types ("*" = every one):
    # delivered twice, delivered SANDBOX_LATE_SECONDS (simulated) late, refused once.
    "SANDBOX_DUPLICATE_EVENTS": ("", str),
    "SANDBOX_LATE_EVENTS": ("", str),
    "SANDBOX_LATE_SECONDS": (5.0, float),
    "SANDBOX_REFUSE_ONCE_EVENTS": ("", str),
}


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it."""


def _convert(name: str, raw: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a {kind.__name__}, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything the sandbox needs to know; built by ``from_mapping`` or by hand."""

    database_url: str
    account_id: str = SANDBOX_ACCOUNT_ID
    username: str = SANDBOX_USERNAME
    password: str = ""
    # The origin the API is reached at, for callUrl/Location ("" = the request's own).
    public_api_url: str = ""
    # None: callbacks may go anywhere (standalone).  A tuple of origins: only those, plus
    # loopback (inside the app: PUBLIC_BASE_URL's origin).
    allowed_origins: tuple[str, ...] | None = None
    time_scale: float = 1.0
    clock: str = "real"
    challenge: bool = False
    lease_seconds: float = 30.0
    resume_seconds: float = 300.0
    poll_interval: float = 0.05
    idle_poll: float = 1.0
    driver: str = "auto"
    max_calls: int = 500
    speech_seconds_per_char: float = 0.06
    audio_seconds: float = 3.0
    ring_seconds: float = 1.0
    bridge_seconds: float = 10.0
    record_seconds: float = 3.0
    keep_days: float = 7.0
    calls_per_second: int = 5
    concurrent_calls: int = 100
    duplicate_events: str = ""
    late_events: str = ""
    late_seconds: float = 5.0
    refuse_once_events: str = ""
    # Inbound calls to a number no Voice application owns go to this one (inside the app:
    # the app's own initiate and disconnect routes); None: such calls are refused.
    default_application_id: str = "sandbox-application"
    default_application: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not self.password:
            raise SettingsError("the sandbox needs an API password")
        if self.time_scale < 0:
            raise SettingsError("SANDBOX_TIME_SCALE must not be negative")
        if self.clock not in ("real", "manual"):
            raise SettingsError(f"SANDBOX_CLOCK must be 'real' or 'manual', got {self.clock!r}")
        if self.lease_seconds <= 0:
            raise SettingsError("SANDBOX_LEASE_SECONDS must be positive")
        if self.resume_seconds <= 0:
            raise SettingsError("SANDBOX_RESUME_SECONDS must be positive")
        if self.poll_interval <= 0 or self.idle_poll <= 0:
            raise SettingsError("SANDBOX_POLL_INTERVAL and SANDBOX_IDLE_POLL must be positive")
        if self.driver not in ("auto", "off"):
            raise SettingsError("SANDBOX_DRIVER must be 'auto' or 'off'")
        if self.calls_per_second < 0 or self.concurrent_calls < 0:
            raise SettingsError(
                "SANDBOX_CALLS_PER_SECOND and SANDBOX_CONCURRENT_CALLS must be 0 (no limit) "
                "or positive"
            )
        if self.late_seconds < 0:
            raise SettingsError("SANDBOX_LATE_SECONDS must not be negative")

    def scaled(self, seconds: float) -> float:
        """Real seconds for ``seconds`` of simulated call time."""
        return max(0.0, float(seconds)) * self.time_scale

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        **fixed: Any,
    ) -> Settings:
        """Read every SANDBOX_* key from ``values``, then ``environ``, else its default."""
        options: dict[str, Any] = {}
        for name, (default, kind) in KEYS.items():
            raw = values.get(name)
            if raw is None and environ is not None and environ.get(name, "") != "":
                raw = environ[name]
            options[name.removeprefix("SANDBOX_").lower()] = (
                default if raw is None else _convert(name, raw, kind)
            )
        options.update(fixed)
        return cls(**options)


def derived_password(secret_key: str) -> str:
    """The in-app sandbox's API password when BW_PASSWORD is not set: HMAC of SECRET_KEY."""
    if not secret_key:
        raise SettingsError("SECRET_KEY is needed to derive the sandbox password")
    digest = hmac.new(secret_key.encode("utf-8"), b"sandbox-api-password", hashlib.sha256)
    return digest.hexdigest()[:32]


def credentials(app_config: Mapping[str, Any]) -> tuple[str, str, str]:
    """(account_id, username, password) of the in-app sandbox's Voice API.

    BW_ACCOUNT_ID, BW_USERNAME and BW_PASSWORD when set; otherwise account ``9900000``, user
    ``sandbox`` and a password derived from SECRET_KEY with HMAC (never a fixed default).
    """
    account = app_config.get("BW_ACCOUNT_ID") or SANDBOX_ACCOUNT_ID
    username = app_config.get("BW_USERNAME") or SANDBOX_USERNAME
    password = app_config.get("BW_PASSWORD") or derived_password(
        str(app_config.get("SECRET_KEY") or "")
    )
    return str(account), str(username), str(password)


def env_settings(environ: Mapping[str, str] = os.environ, **fixed: Any) -> Settings:
    """Settings from the environment only (standalone server, load command)."""
    return Settings.from_mapping({}, environ=environ, **fixed)
