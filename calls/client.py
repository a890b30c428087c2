"""``VoiceClient``: Create Call, Get Call State, Update Call and Update Call BXML.

One pooled :class:`requests.Session`, explicit ``(connect, read)`` timeouts on every request,
and a retry policy that never places a call twice::

    with VoiceClient(account_id="9900000", username="api-user", password="...") as voice:
        call = voice.create_call(to="+12025550123", from_="+12025550199",
                                 application_id="04e88489-...",
                                 answer_url="https://cb.example/callbacks/answer")
        voice.update_call(call["callId"], state="completed")

What is retried (Bandwidth has no idempotency key, so a resent create may ring twice):

- connection refused / DNS / connect timeout: yes, by urllib3, ``connect_retries`` times
  (nothing was sent);
- 429 and 503: yes, at most ``max_retries`` times, honouring ``Retry-After`` (seconds or an
  HTTP date) while the total of all waits stays within ``retry_budget`` seconds; a wait that
  does not fit raises :class:`RateLimited` / :class:`ServiceUnavailable` at once;
- read timeout, dropped connection, 500/502/504: **never** for create and updates
  (:class:`OutcomeUnknown`); ``get_call`` retries them, bounded the same way.

requests reports a read timeout under a mounted ``Retry`` as ``ConnectionError``
(psf/requests#5430), so failures are classified by urllib3's reason, not requests' class.

Time spent, with the defaults ``timeout=(3.05, 10)``, ``retry_budget=5``: an answered
request takes one round trip; a read timeout gives up after 10 s; a black-holed API after
3 connects (about 9.7 s); rate limiting adds at most 5 s of waiting.  Each attempt is still
bounded by its own timeouts, so keep ``read + retry_budget`` well under the web worker's
timeout (gunicorn: 30 s).
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from types import TracebackType
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, ProxyError, ReadTimeoutError
from urllib3.util.retry import Retry

from calls.errors import ConnectionFailed, OutcomeUnknown, VoiceApiError, error_from_response
from calls.schemas import CreateCallPayload, create_call_payload, to_json, update_call_payload

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "BxmlDocument",
    "CreateCallOptions",
    "MachineDetectionOptions",
    "UpdateCallOptions",
    "VoiceClient",
    "classify_exception",
    "parse_retry_after",
]

DEFAULT_BASE_URL = "https://voice.bandwidth.com/api/v2"
#: (connect, read) seconds: the worst case stays well under a gunicorn worker's 30 s.
DEFAULT_TIMEOUT = (3.05, 10.0)
USER_AGENT = f"bandwidth-voice-callbacks/0.1 python-requests/{requests.__version__}"
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
# A path segment Bandwidth ids fit in (c-15ac29a2-...); keeps "/", "..", "?" out of URLs.
PATH_SEGMENT = re.compile(r"(?!\.{1,2}\Z)[A-Za-z0-9._~-]{1,256}")
RETRY_ON_STATUS = frozenset({429, 503})
READ_RETRY_ON_STATUS = frozenset({500, 502, 503, 504})
BACKOFF = 0.5  # first wait without a Retry-After; doubles each retry


class MachineDetectionOptions(TypedDict, total=False):
    mode: str | None
    detection_timeout: float | None
    silence_timeout: float | None
    speech_threshold: float | None
    speech_end_threshold: float | None
    machine_speech_end_threshold: float | None
    delay_result: bool | None
    callback_url: str | None
    callback_method: str | None
    username: str | None
    password: str | None
    fallback_url: str | None
    fallback_method: str | None
    fallback_username: str | None
    fallback_password: str | None


class CreateCallOptions(TypedDict, total=False):
    """The optional Create Call fields, snake_case (see :class:`calls.CreateCallSchema`)."""

    privacy: bool | None
    display_name: str | None
    uui: str | None
    answer_method: str | None
    username: str | None
    password: str | None
    answer_fallback_url: str | None
    answer_fallback_method: str | None
    fallback_username: str | None
    fallback_password: str | None
    disconnect_url: str | None
    disconnect_method: str | None
    call_timeout: float | None
    callback_timeout: float | None
    machine_detection: MachineDetectionOptions | dict[str, Any] | None
    priority: int | None
    tag: str | None


class UpdateCallOptions(TypedDict, total=False):
    """Update Call fields, snake_case (see :class:`calls.UpdateCallSchema`)."""

    state: str
    redirect_url: str | None
    redirect_method: str | None
    username: str | None
    password: str | None
    redirect_fallback_url: str | None
    redirect_fallback_method: str | None
    fallback_username: str | None
    fallback_password: str | None
    tag: str | None


@runtime_checkable
class BxmlDocument(Protocol):
    """Anything with ``to_bxml()``, such as a ``bxml.Bxml`` document."""

    def to_bxml(self) -> str: ...


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``None`` when absent or unreadable; a date in the past gives ``0.0``.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates: RFC 9110 dates are always GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def classify_exception(exc: requests.RequestException) -> VoiceApiError:
    """Map a requests failure to :class:`ConnectionFailed` (nothing was sent) or
    :class:`OutcomeUnknown` (the request may have arrived), by urllib3's reason."""
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    if isinstance(reason, ProxyError):
        reason = reason.original_error
    # NewConnectionError (refused, DNS) is a ConnectTimeoutError; TLS fails before sending.
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)) or isinstance(
        reason, (ConnectTimeoutError, urllib3.exceptions.SSLError)
    ):
        return ConnectionFailed(f"could not connect: {reason or exc}")
    if isinstance(exc, requests.ReadTimeout) or isinstance(reason, ReadTimeoutError):
        return OutcomeUnknown("no response before the read timeout")
    return OutcomeUnknown(f"connection failed after the request was sent: {reason or exc}")


def _segment(name: str, value: str) -> str:
    if not isinstance(value, str) or PATH_SEGMENT.fullmatch(value) is None:
        raise ValueError(f"{name} must be 1-256 URL-safe characters, got {value!r}")
    return quote(value, safe="")


class VoiceClient:
    """A client for Bandwidth's Voice API v2 calls endpoints.

    :param account_id: the Bandwidth account id.
    :param username: API user name (HTTP Basic).
    :param password: API password.
    :param base_url: the API root, e.g. the sandbox's ``http://127.0.0.1:8000/api/v2``.
    :param timeout: ``(connect, read)`` seconds, used on every request.
    :param retry_budget: the most seconds spent waiting between attempts, in total.
    :param max_retries: the most retries after a 429/503 (and, for reads, 5xx/timeouts).
    :param connect_retries: retries of a connection that could not be opened.
    """

    def __init__(
        self,
        *,
        account_id: str,
        username: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_budget: float = 5.0,
        max_retries: int = 2,
        connect_retries: int = 2,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._calls_url = f"{self.base_url}/accounts/{_segment('account_id', account_id)}/calls"
        self.timeout = timeout
        self.retry_budget = retry_budget
        self.max_retries = max_retries
        self.session = requests.Session()
        self.session.auth = (username, password)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # Connection-level retries only: a request that was sent is never resent by urllib3.
        retry = Retry(
            total=connect_retries,
            connect=connect_retries,
            read=0,
            redirect=0,
            status=0,
            other=0,
            allowed_methods=frozenset({"GET", "HEAD"}),  # moot with read=0, status=0
            status_forcelist=None,
            backoff_factor=0.25,
            raise_on_redirect=False,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"<VoiceClient {self.base_url} account={self.account_id}>"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> VoiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    ##### API #####

    def create_call(
        self,
        *,
        to: str,
        from_: str,
        application_id: str,
        answer_url: str,
        **optional: Unpack[CreateCallOptions],
    ) -> dict[str, Any]:
        """Place an outbound call; return Bandwidth's response body (``callId``, ...).

        Validated first: invalid arguments raise :class:`marshmallow.ValidationError` and
        send nothing.  Raises a :class:`calls.VoiceApiError`; check ``call_may_exist``.
        """
        payload = create_call_payload(
            to=to, from_=from_, application_id=application_id, answer_url=answer_url, **optional
        )
        return self.send_create_call(payload)

    def send_create_call(self, payload: CreateCallPayload) -> dict[str, Any]:
        """:meth:`create_call` for a body :func:`calls.schemas.create_call_payload` already
        validated (so a caller that records the body first validates it once)."""
        if not isinstance(payload, CreateCallPayload):
            raise TypeError("send_create_call needs the result of create_call_payload()")
        response = self._send("POST", self._calls_url, to_json(payload), JSON_TYPE)
        return self._json(response)

    def get_call(self, call_id: str) -> dict[str, Any]:
        """Return the call's state (``state``, ``startTime``, ``disconnectCause``, ...).

        Safe to repeat, so 5xx, read timeouts and dropped connections are retried too.
        """
        response = self._send("GET", self._call_url(call_id), idempotent=True)
        return self._json(response)

    def update_call(self, call_id: str, **fields: Unpack[UpdateCallOptions]) -> None:
        """Redirect (``redirect_url=...``) or hang up (``state="completed"``) a call."""
        payload = update_call_payload(**fields)
        self._send("POST", self._call_url(call_id), to_json(payload), JSON_TYPE)

    def update_call_bxml(self, call_id: str, document: BxmlDocument) -> None:
        """Replace the call's BXML with ``document`` (a ``bxml.Bxml`` or anything with
        ``to_bxml()``).  Strings are refused: build documents with the model."""
        if isinstance(document, (str, bytes, bytearray)) or not isinstance(document, BxmlDocument):
            raise TypeError(
                "update_call_bxml needs a BXML document with to_bxml() (e.g. bxml.Bxml), "
                f"not {type(document).__name__}"
            )
        xml = document.to_bxml()
        body = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
        self._send("PUT", f"{self._call_url(call_id)}/bxml", body, XML_TYPE)

    ##### HTTP #####

    def _call_url(self, call_id: str) -> str:
        return f"{self._calls_url}/{_segment('call_id', call_id)}"

    def _send(
        self,
        method: str,
        url: str,
        body: str | bytes | None = None,
        content_type: str | None = None,
        *,
        idempotent: bool = False,
    ) -> requests.Response:
        """One logical request with the retry policy of the module docstring."""
        headers = {"Content-Type": content_type} if content_type else None
        data = body.encode("utf-8") if isinstance(body, str) else body
        waited = 0.0
        retries = 0
        while True:
            cause: requests.RequestException | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                cause = exc
                error = classify_exception(exc)
                # urllib3 already retried connections; only safe reads go round again.
                retry = idempotent and isinstance(error, OutcomeUnknown)
                delay = self._backoff(retries) if retry else None
            else:
                if 200 <= response.status_code < 300:
                    return response
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                error = error_from_response(response, retry_after=retry_after)
                retry = status in RETRY_ON_STATUS or (idempotent and status in READ_RETRY_ON_STATUS)
                delay = retry_after if retry_after is not None else self._backoff(retries)
            if not retry or delay is None or retries >= self.max_retries:
                raise error from cause
            if waited + delay > self.retry_budget:
                raise error from cause  # the wait would not fit: say so now, not later
            time.sleep(delay)
            waited += delay
            retries += 1

    @staticmethod
    def _backoff(retries: int) -> float:
        delay: float = BACKOFF * 2**retries
        return random.uniform(delay / 2, delay)

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise OutcomeUnknown(
                "the response had no JSON object body",
                status=response.status_code,
                response=response,
            )
        return body
