"""Posting an alert to a Slack-compatible incoming webhook: ``{"text": ...}`` as JSON.

Each try has a timeout; connection errors, timeouts, 429 and 5xx are tried again (three
tries, waiting 1 s then 2 s).  A webhook URL's path is its secret (Slack's
``/services/T.../B.../XXXX``), so nothing here logs more than its origin, and exceptions
are logged by their class alone (``requests`` puts the URL in its messages).
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
TRIES = 3
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def origin(url: str) -> str:
    """``https://hooks.slack.com``: where a webhook goes, without its secret path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def post_alert(
    url: str,
    text: str,
    *,
    stop: threading.Event | None = None,
    tries: int = TRIES,
    backoff: float = 1.0,
) -> bool:
    """Post ``{"text": text}`` to ``url``; True once the webhook answered 2xx.  Never raises:
    a webhook that stays down is logged (its origin only) and False returned."""
    stop = stop or threading.Event()
    problem = ""
    for attempt in range(1, tries + 1):
        try:
            reply = requests.post(url, json={"text": text}, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            problem = type(exc).__name__
        else:
            if 200 <= reply.status_code < 300:
                return True
            problem = f"HTTP {reply.status_code}"
            if reply.status_code not in RETRY_STATUSES:
                break
        if attempt < tries and stop.wait(backoff * 2 ** (attempt - 1)):
            break  # shutting down
    log.error(
        "alert not delivered to the webhook at %s after %d tries: %s", origin(url), attempt, problem
    )
    return False
