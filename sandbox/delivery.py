"""Sending callbacks the way Bandwidth does: POST JSON or GET query, Basic auth, fallback.

- POST sends the payload as JSON; GET sends it as query parameters (nested objects as JSON).
- Credentials go as HTTP Basic.  With ``SANDBOX_CHALLENGE`` the first request goes without
  them, and a ``401`` is answered by sending the request again with them.
- A BXML callback fails on a connection error (retried once), a timeout
  (``callbackTimeout``), a non-2xx status (redirects are not followed) or a body over 64 KB;
  it is then sent to its fallback URL, with the fallback credentials, when there is one.
- An asynchronous callback (disconnect, dtmf, ...) is retried once on a connection error.
- URLs are checked against the allowed origins first (inside the app: PUBLIC_BASE_URL's
  origin and loopback only), so a deployed app cannot be made to call anywhere else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from bxml import MAX_DOCUMENT_BYTES
from voice_rules import is_loopback

USER_AGENT = "BandwidthAPI/v2 (bandwidth-voice-callbacks sandbox)"


@dataclass(frozen=True)
class Hook:
    """Where one callback goes: URL, method, credentials, and the same for its fallback."""

    url: str
    method: str = "POST"
    username: str | None = None
    password: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    fallback_username: str | None = None
    fallback_password: str | None = None


@dataclass
class Delivery:
    ok: bool
    status: int | None = None
    body: bytes = b""
    url: str | None = None  # the URL whose reply is in ``body`` (relative URLs resolve here)
    error: str | None = None  # technical: the exception or the status, with the URL
    attempts: list[str] = field(default_factory=list)
    # For a person: what went wrong, e.g. "http://.../answer did not respond within 15 s"
    summary: str | None = None


class Stats:
    """Per-callback latencies and failures, for the load command and the page."""

    def __init__(self, *, track_calls: bool = False) -> None:
        self._lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.failures = 0
        self.deliveries = 0
        self.track_calls = track_calls
        # call id -> [(eventType, delivered)], when track_calls is on (the load command)
        self.by_call: dict[str, list[tuple[str, bool]]] = {}

    def outcome(self, payload: dict[str, Any], ok: bool) -> None:
        if not self.track_calls:
            return
        with self._lock:
            self.by_call.setdefault(str(payload.get("callId")), []).append(
                (str(payload.get("eventType")), ok)
            )

    def record(self, latency_ms: float, ok: bool) -> None:
        with self._lock:
            self.deliveries += 1
            self.latencies_ms.append(latency_ms)
            if not ok:
                self.failures += 1


def origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


class UrlPolicy:
    """Which callback URLs may be called: any (None) or the given origins plus loopback."""

    def __init__(self, allowed_origins: tuple[str, ...] | None) -> None:
        self.allowed = None if allowed_origins is None else {origin(o) for o in allowed_origins}

    def problem(self, url: str) -> str | None:
        """Why ``url`` may not be called, or None."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a bad port)
        except ValueError:
            return f"callback URL {url!r} is not a valid URL"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"callback URL {url!r} is not an absolute http(s) URL"
        if parts.username or parts.password:
            return f"callback URL {url!r} carries credentials"
        if self.allowed is None or is_loopback(url) or origin(url) in self.allowed:
            return None
        return (
            f"callback URL {url!r} is not on this app's origin; the in-app sandbox only calls "
            "PUBLIC_BASE_URL's origin and loopback (run `python -m sandbox` to drive any URL)"
        )


def _query(payload: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in payload.items():
        if isinstance(value, dict | list):
            params[key] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            params[key] = "true" if value else "false"
        else:
            params[key] = str(value)
    return params


class Deliverer:
    """Sends callbacks over one pooled session (no proxies from the environment)."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        challenge: bool = False,
        stats: Stats | None = None,
        on_attempt: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.challenge = challenge
        self.stats = stats or Stats()
        self.on_attempt = on_attempt
        self.session = requests.Session()
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=256, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self.session.close()

    def send(
        self,
        hook: Hook,
        payload: dict[str, Any],
        timeout: float,
        *,
        bxml: bool,
        refuse_first: bool = False,
    ) -> Delivery:
        """Deliver ``payload``; for BXML callbacks fall back to ``hook.fallback_url``.
        ``refuse_first``: the first attempt fails as a connection error unsent (a fault)."""
        result = self._deliver(
            hook.url,
            hook.method,
            hook.username,
            hook.password,
            payload,
            timeout,
            refuse_first=refuse_first,
        )
        if result.ok or not bxml or not hook.fallback_url:
            self.stats.outcome(payload, result.ok)
            return result
        fallback = self._deliver(
            hook.fallback_url,
            hook.fallback_method,
            hook.fallback_username,
            hook.fallback_password,
            payload,
            timeout,
        )
        fallback.attempts = result.attempts + fallback.attempts
        if not fallback.ok:
            fallback.error = f"{result.error}; fallback: {fallback.error}"
            fallback.summary = f"{result.summary}, and the fallback URL {fallback.summary}"
        self.stats.outcome(payload, fallback.ok)
        return fallback

    def _deliver(
        self,
        url: str,
        method: str,
        username: str | None,
        password: str | None,
        payload: dict[str, Any],
        timeout: float,
        *,
        refuse_first: bool = False,
    ) -> Delivery:
        problem = self.policy.problem(url)
        if problem is not None:
            return Delivery(
                False, error=problem, url=url, attempts=[f"refused {url}"], summary=problem
            )
        auth = (username or "", password or "") if (username or password) else None
        first_auth = None if (self.challenge and auth) else auth
        if refuse_first:
            reason = "connection refused (delivery fault)"
            refused = Delivery(
                False, None, b"", url, f"{url}: {reason}", [f"{method} {url} -> {reason}"]
            )
            result = _Attempt(refused, "connect", None)
        else:
            result = self._once(url, method, first_auth, payload, timeout)
        if result.error_kind == "connect":
            # "retried once ... in the event of a connection exception"
            result = self._once(url, method, first_auth, payload, timeout, prior=result)
        if result.status == 401 and first_auth is None and auth is not None:
            result = self._once(url, method, auth, payload, timeout, prior=result)
        return result.delivery

    def _once(
        self,
        url: str,
        method: str,
        auth: tuple[str, str] | None,
        payload: dict[str, Any],
        timeout: float,
        prior: _Attempt | None = None,
    ) -> _Attempt:
        attempts = list(prior.delivery.attempts) if prior else []
        started = time.perf_counter()
        note = f"{method} {url}" + (" (with credentials)" if auth else "")
        try:
            if method == "GET":
                response = self.session.get(
                    url,
                    params=_query(payload),
                    auth=auth,
                    timeout=(timeout, timeout),
                    allow_redirects=False,
                    stream=True,
                )
            else:
                response = self.session.post(
                    url,
                    data=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
                    headers={"Content-Type": "application/json"},
                    auth=auth,
                    timeout=(timeout, timeout),
                    allow_redirects=False,
                    stream=True,
                )
            try:
                body = _read_limited(response, MAX_DOCUMENT_BYTES + 1)
            finally:
                response.close()
        except requests.exceptions.ConnectTimeout:
            return self._failed(
                started, attempts, note, url, "connect", "connection timed out",
                f"could not be reached within {timeout:g} s",
            )  # fmt: skip
        except requests.exceptions.ConnectionError as exc:
            kind = "timeout" if "Read timed out" in str(exc) else "connect"
            reason = "timed out" if kind == "timeout" else "connection failed"
            return self._failed(
                started, attempts, note, url, kind, f"{reason} ({_short(exc)})",
                _connection_summary(exc, timeout) if kind == "connect" else
                f"did not respond within {timeout:g} s",
            )  # fmt: skip
        except requests.exceptions.Timeout:
            return self._failed(
                started, attempts, note, url, "timeout", "timed out",
                f"did not respond within {timeout:g} s",
            )  # fmt: skip
        except requests.RequestException as exc:
            return self._failed(
                started, attempts, note, url, "other", _short(exc), "could not be called"
            )
        elapsed = (time.perf_counter() - started) * 1000.0
        status = response.status_code
        ok = 200 <= status < 300
        error = summary = None
        if not ok:
            error = f"{url} answered HTTP {status}"
            summary = f"{url} answered HTTP {status}" + _refusal_reason(status, auth)
        elif len(body) > MAX_DOCUMENT_BYTES:
            ok, error = False, f"{url} answered more than 64 KB"
            summary = error
        self.stats.record(elapsed, ok)
        attempts.append(f"{note} -> {status} in {elapsed:.0f} ms")
        delivery = Delivery(ok, status, body, url, error, attempts, summary)
        return _Attempt(delivery, None, status)

    def _failed(
        self,
        started: float,
        attempts: list[str],
        note: str,
        url: str,
        kind: str,
        reason: str,
        summary: str,
    ) -> _Attempt:
        elapsed = (time.perf_counter() - started) * 1000.0
        self.stats.record(elapsed, False)
        attempts.append(f"{note} -> {reason}")
        delivery = Delivery(False, None, b"", url, f"{url}: {reason}", attempts, f"{url} {summary}")
        return _Attempt(delivery, kind, None)


@dataclass
class _Attempt:
    delivery: Delivery
    error_kind: str | None
    status: int | None


def _read_limited(response: requests.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(16384):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)


def _connection_summary(exc: BaseException, timeout: float) -> str:
    """A connection error as a person says it."""
    text = str(exc)
    if "refused" in text.lower():
        return "refused the connection (is the app running, on that port?)"
    if "resolve" in text.lower() or "Name or service not known" in text:
        return "has a host name that does not resolve"
    if "timed out" in text.lower():
        return f"could not be reached within {timeout:g} s"
    return "could not be reached"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


def _refusal_reason(status: int, auth: tuple[str, str] | None) -> str:
    """Why a 401 happened, as far as the sender knows: none sent, or refused."""
    if status != 401:
        return ""
    if auth is None:
        return " (no credentials were sent: the call or the verb has no username and password)"
    return " (the credentials sent were refused)"
