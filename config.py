"""Configuration: defaults, the environment variables that override them, and start-up secrets.

Every setting is a plain Flask config key with the same name as its environment variable,
so ``create_app({"CALLBACK_USERNAME": "bw"})`` and ``CALLBACK_USERNAME=bw`` mean the same.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Keys read from the environment, with their defaults.  None means "not configured".
DEFAULTS: dict[str, Any] = {
    # Which carrier outbound calls go to: the built-in sandbox (no account) or Bandwidth.
    "VOICE_BACKEND": "sandbox",
    # HTTP Basic credentials Bandwidth sends to our callback routes.
    "CALLBACK_USERNAME": None,
    "CALLBACK_PASSWORD": None,
    # Extra "user:password,user2:password2" pairs accepted during a rotation.
    "CALLBACK_CREDENTIALS": "",
    # Credentials of /callbacks/answer-fallback; default to the callback ones.
    "FALLBACK_USERNAME": None,
    "FALLBACK_PASSWORD": None,
    # SQLAlchemy URL of the event store; default: SQLite under the instance folder.
    "DATABASE_URL": None,
    # Bandwidth Voice API account and credentials (outbound calls).
    "BW_ACCOUNT_ID": None,
    "BW_USERNAME": None,
    "BW_PASSWORD": None,
    "BW_APPLICATION_ID": None,
    "BW_VOICE_API_URL": None,
    # The Bandwidth number outbound calls are placed from (must be on the account).
    "BW_FROM_NUMBER": None,
    # The public https origin Bandwidth reaches this app at; callback URLs are built from it.
    # None: the address the server binds (HOST/PORT, as gunicorn.conf.py and the Procfile
    # use them), which is right for the built-in sandbox.
    "PUBLIC_BASE_URL": None,
    # Call flows: the modules that define them (comma-separated dotted names; unset: the
    # demo IVR in examples/), and the flow that takes calls no flow claims.
    "VOICE_FLOWS": None,
    "VOICE_DEFAULT_FLOW": None,
    # Dashboard login; a password is generated and printed when none is set.
    "DASHBOARD_USERNAME": "admin",
    "DASHBOARD_PASSWORD": None,
    # Flask's signing key (sessions, CSRF, tag state); generated once into the instance folder.
    "SECRET_KEY": None,
    # Click-to-call: the agent's number and the regions visitors may enter.
    "CLICK_TO_CALL_AGENT": None,
    "CLICK_TO_CALL_COUNTRIES": "US,CA",
    # Rates and limits of the dashboard and click-to-call; None = the default documented in
    # dashboard/settings.py (e.g. "5/hour" per address, "100/hour" in total).
    "CLICK_TO_CALL_RATE_PER_ADDRESS": None,
    "CLICK_TO_CALL_RATE_TOTAL": None,
    "CLICK_TO_CALL_DESTINATION_COOLDOWN": None,
    "DASHBOARD_LOGIN_RATE": None,
    "DASHBOARD_SESSION_SECONDS": None,
    "DASHBOARD_REFRESH_SECONDS": None,
    "DASHBOARD_EXPORT_MAX_ROWS": None,
    # Deployment.
    "TRUSTED_PROXIES": 0,  # how many reverse proxies set X-Forwarded-*; 0 = trust none
    # Comma-separated addresses/networks of those proxies (see proxies.py); None = any peer.
    "TRUSTED_PROXY_ADDRESSES": None,
    "TRUSTED_HOSTS": None,  # comma-separated Host names; None = any
    "MAX_CONTENT_LENGTH": 64 * 1024,  # largest callback body accepted (413 above it)
    # What answer does when the handler fails: "safe-document" (200 + SAFE_BXML) or
    # "fallback" (503, so Bandwidth tries answerFallbackUrl).
    "ANSWER_FAILURE_MODE": "safe-document",
    "SAFE_SPEECH": "We are sorry, something went wrong. Goodbye.",
    "CALLBACK_REALM": "Bandwidth callbacks",
    # Store tuning.
    "STORE_BUSY_TIMEOUT": 5.0,  # seconds SQLite waits for a lock before we spool
    # SQLite durability: FULL fsyncs each commit (one commit carries many callbacks), so a
    # stored callback survives power loss; NORMAL survives a crash of the app but not of
    # the machine (see the README's store section).
    "STORE_SQLITE_SYNCHRONOUS": "FULL",
    "SPOOL_PATH": None,  # default: <instance>/spool.jsonl
    "REJECTED_LOG_LIMIT": 1000,  # rejected requests kept for inspection
    "EVENT_RETENTION_DAYS": 30,  # stored callbacks hold phone numbers
    # Operations: GET /metrics exists only with a token (Prometheus sends it as a bearer
    # token); alert rules ("handler-error>5/10m,...", monitoring/rules.py) post to a
    # Slack-compatible webhook, evaluated every ALERT_CHECK_SECONDS in each worker.
    "METRICS_TOKEN": None,
    "ALERT_RULES": None,
    "ALERT_WEBHOOK_URL": None,
    "ALERT_CHECK_SECONDS": 15.0,
}

INTEGER_KEYS = {
    "TRUSTED_PROXIES",
    "MAX_CONTENT_LENGTH",
    "REJECTED_LOG_LIMIT",
    "EVENT_RETENTION_DAYS",
}
FLOAT_KEYS = {"STORE_BUSY_TIMEOUT", "ALERT_CHECK_SECONDS"}
BACKENDS = ("sandbox", "bandwidth")
FAILURE_MODES = ("safe-document", "fallback")


# Seconds per unit in the settings that take a period (rates, alert rules): "5/min", ">3/10m".
TIME_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the settings present in ``environ``, converted to their types."""
    found: dict[str, Any] = {}
    for key in DEFAULTS:
        if key not in environ or environ[key] == "":
            continue
        raw = environ[key]
        try:
            if key in INTEGER_KEYS:
                found[key] = int(raw)
            elif key in FLOAT_KEYS:
                found[key] = float(raw)
            else:
                found[key] = raw
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    return found


def parse_credentials(
    config: Mapping[str, Any], *, fallback: bool = False
) -> list[tuple[str, str]]:
    """The (username, password) pairs accepted on the callback routes.

    ``fallback=True`` gives the pairs of /callbacks/answer-fallback, which default to the
    callback ones when FALLBACK_USERNAME/FALLBACK_PASSWORD are not set.
    """
    pairs: list[tuple[str, str]] = []
    if fallback and config.get("FALLBACK_USERNAME") and config.get("FALLBACK_PASSWORD"):
        pairs.append((config["FALLBACK_USERNAME"], config["FALLBACK_PASSWORD"]))
    if config.get("CALLBACK_USERNAME") and config.get("CALLBACK_PASSWORD"):
        pairs.append((config["CALLBACK_USERNAME"], config["CALLBACK_PASSWORD"]))
    extra = config.get("CALLBACK_CREDENTIALS") or ""
    for item in filter(None, (part.strip() for part in extra.split(","))):
        username, sep, password = item.partition(":")
        if not sep or not username or not password:
            raise ConfigError("CALLBACK_CREDENTIALS must be comma-separated user:password pairs")
        pairs.append((username, password))
    return pairs


def _read_or_create(path: Path, make: Any) -> str:
    """Read a generated secret from ``path``, creating it (mode 0600) the first time.

    O_EXCL makes two workers starting together agree on the file that won.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(make())
    return path.read_text().strip()


def ensure_secret_key(config: dict[str, Any], instance_path: str) -> None:
    """Use the configured SECRET_KEY, or one generated once and kept in the instance folder."""
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _read_or_create(
            Path(instance_path) / "secret_key", lambda: secrets.token_hex(32)
        )


def ensure_dashboard_password(config: dict[str, Any], instance_path: str) -> str | None:
    """Generate a dashboard password when none is configured.

    Returns the generated password (for printing at start-up), or None when one was
    configured.  It is kept in the instance folder so every worker and every restart agrees
    on it; it is never a fixed default.
    """
    if config.get("DASHBOARD_PASSWORD"):
        return None
    config["DASHBOARD_PASSWORD"] = _read_or_create(
        Path(instance_path) / "dashboard_password", lambda: secrets.token_urlsafe(18)
    )
    return str(config["DASHBOARD_PASSWORD"])


BANDWIDTH_API_URL = "https://voice.bandwidth.com/api/v2"
SANDBOX_ACCOUNT_ID = "9900000"
SANDBOX_APPLICATION_ID = "sandbox-application"
SANDBOX_FROM_NUMBER = "+12025550100"
# With the sandbox and no agent configured, click-to-call connects to this sandbox callee.
SANDBOX_AGENT = "+12025550142"


def click_to_call_agent(config: Mapping[str, Any]) -> str | None:
    """CLICK_TO_CALL_AGENT, or the sandbox's demo agent when the sandbox is the carrier."""
    if config.get("CLICK_TO_CALL_AGENT"):
        return str(config["CLICK_TO_CALL_AGENT"])
    return SANDBOX_AGENT if (config.get("VOICE_BACKEND") or "sandbox") == "sandbox" else None


def sandbox_password(secret_key: str) -> str:
    """The embedded sandbox's API password when BW_PASSWORD is not set: derived, never fixed."""
    return hmac.new(secret_key.encode(), b"sandbox-api-password", hashlib.sha256).hexdigest()[:32]


def voice_api(config: Mapping[str, Any]) -> dict[str, str]:
    """Where outbound calls go and with which account: base_url, account_id, username,
    password, application_id, from_number.

    With VOICE_BACKEND=sandbox the app's own sandbox at PUBLIC_BASE_URL/sandbox/api/v2 is
    used and missing BW_* values get sandbox defaults; with ``bandwidth`` all are required.
    """
    backend = config.get("VOICE_BACKEND") or "sandbox"
    if backend == "sandbox":
        return {
            "base_url": config["PUBLIC_BASE_URL"].rstrip("/") + "/sandbox/api/v2",
            "account_id": config.get("BW_ACCOUNT_ID") or SANDBOX_ACCOUNT_ID,
            "username": config.get("BW_USERNAME") or "sandbox",
            "password": config.get("BW_PASSWORD") or sandbox_password(config["SECRET_KEY"]),
            "application_id": config.get("BW_APPLICATION_ID") or SANDBOX_APPLICATION_ID,
            "from_number": config.get("BW_FROM_NUMBER") or SANDBOX_FROM_NUMBER,
        }
    if backend != "bandwidth":
        raise ConfigError(f"VOICE_BACKEND must be 'sandbox' or 'bandwidth', got {backend!r}")
    required = [
        "BW_ACCOUNT_ID",
        "BW_USERNAME",
        "BW_PASSWORD",
        "BW_APPLICATION_ID",
        "BW_FROM_NUMBER",
    ]
    missing = [key for key in required if not config.get(key)]
    if missing:
        raise ConfigError(f"VOICE_BACKEND=bandwidth needs {', '.join(missing)}")
    return {
        "base_url": config.get("BW_VOICE_API_URL") or BANDWIDTH_API_URL,
        "account_id": config["BW_ACCOUNT_ID"],
        "username": config["BW_USERNAME"],
        "password": config["BW_PASSWORD"],
        "application_id": config["BW_APPLICATION_ID"],
        "from_number": config["BW_FROM_NUMBER"],
    }


def derived_public_base_url(environ: Mapping[str, str]) -> str:
    """The origin of the address the server binds: GUNICORN_BIND, else HOST/PORT (the
    Procfile's and gunicorn.conf.py's), else FLASK_RUN_HOST/FLASK_RUN_PORT under ``flask
    run``; a wildcard host means this machine (127.0.0.1)."""
    bind = environ.get("GUNICORN_BIND", "")
    host, port = "", ""
    if bind and not bind.startswith(("unix:", "fd:")):
        host, _, port = bind.rpartition(":")
    if not port:
        host = environ.get("HOST", "")
        port = environ.get("PORT", "")
    if not port and environ.get("FLASK_RUN_FROM_CLI"):
        host = environ.get("FLASK_RUN_HOST", "")
        port = environ.get("FLASK_RUN_PORT", "5000")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "*"):  # noqa: S104  (reading a bind address)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or '8000'}"


def _check_url(key: str, value: Any) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(value))
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigError(
            f"{key} must be an http(s) URL with a host and no credentials, query or "
            f"fragment, got {value!r}"
        )


def _check_number(key: str, value: Any) -> None:
    import re

    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", str(value)):
        raise ConfigError(f"{key} must be an E.164 number like +12025550123, got {value!r}")


def check(cfg: Mapping[str, Any]) -> None:
    """Refuse, with one line naming the setting, the value and what is allowed, any
    setting that cannot work; called when the app is created."""
    backend = cfg.get("VOICE_BACKEND") or "sandbox"
    if backend not in BACKENDS:
        raise ConfigError(f"VOICE_BACKEND must be 'sandbox' or 'bandwidth', got {backend!r}")
    _check_url("PUBLIC_BASE_URL", cfg.get("PUBLIC_BASE_URL"))
    if backend == "bandwidth":
        voice_api(cfg)  # names every missing BW_* setting
        if cfg.get("PUBLIC_BASE_URL_DERIVED"):
            raise ConfigError(
                "VOICE_BACKEND=bandwidth needs PUBLIC_BASE_URL, the https origin Bandwidth "
                f"reaches this app at (without it, callbacks would go to {cfg['PUBLIC_BASE_URL']})"
            )
    if cfg.get("BW_VOICE_API_URL"):
        _check_url("BW_VOICE_API_URL", cfg["BW_VOICE_API_URL"])
    for key in ("BW_FROM_NUMBER", "CLICK_TO_CALL_AGENT"):
        if cfg.get(key):
            _check_number(key, cfg[key])
    mode = cfg.get("ANSWER_FAILURE_MODE")
    if mode not in FAILURE_MODES:
        raise ConfigError(
            f"ANSWER_FAILURE_MODE must be 'safe-document' or 'fallback', got {mode!r}"
        )
    for user, password in (
        ("CALLBACK_USERNAME", "CALLBACK_PASSWORD"),
        ("FALLBACK_USERNAME", "FALLBACK_PASSWORD"),
    ):
        if bool(cfg.get(user)) != bool(cfg.get(password)):
            raise ConfigError(f"set both {user} and {password}, or neither")
    parse_credentials(cfg)  # CALLBACK_CREDENTIALS pairs
    url = cfg.get("DATABASE_URL")
    if url:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend_name = make_url(url).get_backend_name()
        except ArgumentError:
            backend_name = ""
        if backend_name not in ("sqlite", "postgresql"):
            raise ConfigError(
                "DATABASE_URL must be a sqlite:/// or postgresql:// URL, got "
                f"{_without_password(url)!r}"
            )
    minimums = {
        "TRUSTED_PROXIES": 0,
        "MAX_CONTENT_LENGTH": 1024,
        "REJECTED_LOG_LIMIT": 0,
        "EVENT_RETENTION_DAYS": 1,
    }
    for key, minimum in minimums.items():
        value = cfg.get(key)
        if value is not None and (not isinstance(value, int) or value < minimum):
            raise ConfigError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    _check_monitoring(cfg)
    busy = cfg.get("STORE_BUSY_TIMEOUT")
    if busy is not None and (not isinstance(busy, int | float) or busy <= 0):
        raise ConfigError(f"STORE_BUSY_TIMEOUT must be a number of seconds > 0, got {busy!r}")
    from store.engine import SQLITE_SYNCHRONOUS  # here: config stays free of SQLAlchemy

    synchronous = cfg.get("STORE_SQLITE_SYNCHRONOUS")
    if synchronous is not None and str(synchronous).upper() not in SQLITE_SYNCHRONOUS:
        raise ConfigError(
            f"STORE_SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS)},"
            f" got {synchronous!r}"
        )


MIN_METRICS_TOKEN_CHARS = 16


def _check_monitoring(cfg: Mapping[str, Any]) -> None:
    """METRICS_TOKEN long enough to face the internet; ALERT_RULES readable, with a
    webhook to post to."""
    token = cfg.get("METRICS_TOKEN")
    if token is not None and token != "" and len(str(token)) < MIN_METRICS_TOKEN_CHARS:
        raise ConfigError(
            f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_CHARS} characters "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    from monitoring.rules import RuleError, parse_rules

    try:
        rules = parse_rules(cfg.get("ALERT_RULES"))
    except RuleError as exc:
        raise ConfigError(str(exc)) from None
    webhook = cfg.get("ALERT_WEBHOOK_URL")
    if rules and not webhook:
        raise ConfigError("ALERT_RULES needs ALERT_WEBHOOK_URL, the webhook alerts are posted to")
    if webhook:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(str(webhook))
            parts.port  # noqa: B018  (raises ValueError for a bad port)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # Not the value itself: its path is the webhook's secret.
            raise ConfigError("ALERT_WEBHOOK_URL must be an http(s) URL with a host")
    interval = cfg.get("ALERT_CHECK_SECONDS")
    if interval is not None and (not isinstance(interval, int | float) or interval <= 0):
        raise ConfigError(f"ALERT_CHECK_SECONDS must be a number of seconds > 0, got {interval!r}")


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]
