"""Alert rules at work: failures counted in memory, added up in the store, sent once.

The callback path only adds one to an in-memory count (no I/O).  A background thread in
each worker, started on the worker's first request, wakes every ALERT_CHECK_SECONDS and:

1. adds the worker's counts to the store's shared ``alert_counts`` (one transaction);
2. for each rule, sums its category over the rule's period (every worker, every server);
3. over the threshold: claims (rule, window) in ``alert_firings``; the one claim that
   inserts the row posts the alert; every other worker and server finds it and sends
   nothing.  Windows are fixed (a 10-minute rule has 10:00-10:10, 10:10-10:20...): an
   ongoing problem is reported again at most once per window.

A webhook that is down is logged (``monitoring.webhook``), and the claim stays: the alert
of that window is not sent twice, even when the webhook answers later.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from monitoring.categories import CAUSES
from monitoring.rules import AlertRule, describe_period
from monitoring.webhook import post_alert
from store.categories import REJECTED_PAYLOAD

log = logging.getLogger(__name__)

BUCKET_SECONDS = 10
PRUNE_SECONDS = 3600.0
KEEP_FIRINGS_SECONDS = 30 * 86400


def dashboard_link(base_url: str, category: str, since: float) -> str:
    """The dashboard filtered to what a rule counted: a cause, or a callback category."""
    base = base_url.rstrip("/")
    if category == REJECTED_PAYLOAD:
        return f"{base}/dashboard/rejected"
    stamp = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if category in CAUSES:
        query = {"cause": category, "since": stamp}
    else:  # handler errors end as hangups too: show every call, filtered by category
        query = {"category": category, "all": "1", "since": stamp}
    return f"{base}/dashboard?{urlencode(query)}"


class Alerter:
    """One app's alert rules: counts, the evaluating thread, and the webhook."""

    def __init__(
        self,
        store: Any,
        rules: Sequence[AlertRule],
        *,
        webhook_url: str,
        base_url: str,
        interval: float,
    ) -> None:
        self.store = store
        self.rules = list(rules)
        self.watched = frozenset(rule.category for rule in self.rules)
        self.webhook_url = webhook_url
        self.base_url = base_url
        self.interval = float(interval)
        self._pending: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._next_prune = 0.0
        self.retry_backoff = 1.0  # seconds before the webhook's second try, doubled after
        self.ticks = 0  # evaluations done by this process (tests wait on it)

    # --- the callback path: memory only ------------------------------------------------

    def count(self, category: str, now: float | None = None) -> None:
        """One failure of ``category`` (ignored unless a rule watches it)."""
        if category not in self.watched:
            return
        at = time.time() if now is None else now
        key = (category, int(at // BUCKET_SECONDS) * BUCKET_SECONDS)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1

    def ensure_running(self) -> None:
        """Start this process's evaluating thread (once per process: gunicorn forks)."""
        pid = os.getpid()
        if self._thread_pid == pid:
            return
        with self._lock:
            if self._thread_pid == pid:
                return
            self._pending.clear()  # counted by the parent, which adds them itself
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="alert-rules", daemon=True)
            self._thread_pid = pid
            self._thread.start()
        atexit.register(self._last_flush)

    def stop(self) -> None:
        """Stop the thread (tests, shutdown) and add what is still counted."""
        self._stop.set()
        atexit.unregister(self._last_flush)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._stop = threading.Event()  # evaluating by hand (tick) still retries the webhook
        self._last_flush()

    # --- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # the store may be down: counts kept, tried again
                if not failing:  # once per outage, not every few seconds
                    log.warning("alert rules not evaluated (tried again): %s", exc)
                failing = True
            else:
                if failing:
                    log.info("alert rules evaluated again")
                failing = False

    def _last_flush(self) -> None:
        if not self._pending:
            return
        try:
            self.flush()
        except Exception as exc:
            log.warning("alert counts not saved at exit: %s", type(exc).__name__)

    def tick(self, now: float | None = None) -> list[AlertRule]:
        """Add this worker's counts, evaluate every rule; returns the rules whose alert this
        call sent (or tried to send)."""
        at = time.time() if now is None else now
        self.flush()
        fired = [rule for rule in self.rules if self.evaluate(rule, at)]
        self.ticks += 1
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_SECONDS
            longest = max(rule.period for rule in self.rules)
            self.store.prune_alerts(at - 2 * longest - BUCKET_SECONDS, at - KEEP_FIRINGS_SECONDS)
        return fired

    def flush(self) -> None:
        """Add the counts of this worker to the store's (kept for next time if it fails)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        try:
            self.store.add_alert_counts(batch)
        except Exception:
            with self._lock:
                for key, value in batch.items():
                    self._pending[key] = self._pending.get(key, 0) + value
            raise

    def evaluate(self, rule: AlertRule, now: float) -> bool:
        """Send ``rule``'s alert if it is over its threshold and nobody sent this window's."""
        since = now - rule.period
        count = self.store.alert_count(rule.category, since)
        if count <= rule.threshold:
            return False
        window_start = int(now // rule.period) * rule.period
        if not self.store.claim_alert(rule.key, window_start, count):
            return False
        link = dashboard_link(self.base_url, rule.category, since)
        log.warning(
            "alert: %d %s in the last %s (rule %s)",
            count,
            rule.category,
            describe_period(rule.period),
            rule.key,
        )
        text = self.message(rule, count, link)
        delivered = post_alert(self.webhook_url, text, stop=self._stop, backoff=self.retry_backoff)
        self.store.finish_alert(rule.key, window_start, "sent" if delivered else "failed")
        return True

    def message(self, rule: AlertRule, count: int, link: str) -> str:
        return (
            f"{count} {rule.category} in the last {describe_period(rule.period)} "
            f"at {self.base_url.rstrip('/')} (alert rule: {rule.describe()}). "
            f"Dashboard: {link}"
        )
