"""The dashboard's and click-to-call's own settings, with their defaults.

Each is a Flask config key read with ``.get`` (``create_app({...})`` sets it; an environment
variable of the same name is read only once the key is listed in ``config.DEFAULTS``).

Rates are ``"N/period"``: period ``second``, ``minute``, ``hour``, ``day`` (or ``s``, ``min``,
``h``, ``d``), optionally with a count (``"3/10min"``); several rates are comma-separated and
all of them apply (``"100/hour,500/day"``).  Counters live in the store (``rate_limits``), so
every gunicorn worker and every app server sharing the database shares them.  They are fixed
windows: up to twice a limit can pass around a window boundary.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app

from config import TIME_UNITS, ConfigError

DEFAULTS: dict[str, Any] = {
    # Click-to-call calls placed per client address (IPv6: per /64) and in total.
    "CLICK_TO_CALL_RATE_PER_ADDRESS": "5/hour",
    "CLICK_TO_CALL_RATE_TOTAL": "100/hour",
    # Seconds before the same number can be called again (two offset fixed windows: at least
    # this long; a visitor who keeps retrying gets through at the latest after 3x this).
    "CLICK_TO_CALL_DESTINATION_COOLDOWN": 300,
    # Dashboard login: attempts per client address, and how long a login lasts.
    "DASHBOARD_LOGIN_RATE": "10/15min",
    "DASHBOARD_SESSION_SECONDS": 12 * 3600,
    # How often the disconnects page fetches new rows (0 turns auto-refresh off).
    "DASHBOARD_REFRESH_SECONDS": 10,
    # Most rows one CSV/JSON export holds.
    "DASHBOARD_EXPORT_MAX_ROWS": 10_000,
}

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


def setting(name: str) -> Any:
    """The app's value of one of these settings, or its default."""
    value = current_app.config.get(name)
    return DEFAULTS[name] if value is None else value


def parse_rates(name: str, value: Any) -> list[tuple[int, int]]:
    """``"5/hour,20/day"`` -> ``[(5, 3600), (20, 86400)]``; ConfigError names the setting."""
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return [(int(value[0]), int(value[1]))]
    rates = []
    for part in str(value).lower().split(","):
        match = _RATE.match(part)
        unit = TIME_UNITS.get(match.group(3)) if match else None
        if match is None or unit is None:
            raise ConfigError(
                f"{name} must be rates like '5/hour' or '100/hour,500/day', got {value!r}"
            )
        count, multiple = int(match.group(1)), int(match.group(2) or 1)
        if multiple <= 0:
            raise ConfigError(f"{name}: the period must be positive, got {value!r}")
        rates.append((count, multiple * unit))
    return rates


def rates(name: str) -> list[tuple[int, int]]:
    return parse_rates(name, setting(name))


def number(name: str) -> int:
    value = setting(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None


def check(config: dict[str, Any]) -> None:
    """Fail at start-up (not on a visitor's request) when a setting cannot be used."""
    for name, default in DEFAULTS.items():
        value = config.get(name)
        value = default if value is None else value
        if name.startswith(("CLICK_TO_CALL_RATE", "DASHBOARD_LOGIN_RATE")):
            parse_rates(name, value)
        else:
            try:
                if int(value) < 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}") from None
