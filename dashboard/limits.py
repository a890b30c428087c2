"""Rate limits shared by every worker and server: counters in the store (``hit_rate_limit``).

The client address is ``request.remote_addr``: the peer, or, with TRUSTED_PROXIES > 0, the
address ProxyFix took from that many X-Forwarded-For hops.  X-Forwarded-For is never read
here, so a client cannot choose its own address.  IPv6 clients are counted per /64 (one
subscriber usually holds a whole /64).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

# Hits counted by ``allow``/``cooldown`` that ``refund`` can give back: (key, window, time).
Receipt = list[tuple[str, int, float]]


class TooManyAttempts(Exception):
    """This client address is over its limit of credential checks."""


def client_key(remote_addr: str | None) -> str:
    """The address a limit counts: IPv4 as is, IPv6 by its /64."""
    if not remote_addr:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return remote_addr[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def allow(
    store: Any, key: str, rates: Iterable[tuple[int, int]], receipt: Receipt | None = None
) -> bool:
    """Count one hit on ``key`` for every (limit, window) rate; False if any is over.
    With ``receipt``, each counted hit is noted there (see ``refund``)."""
    allowed = True
    now = time.time()
    for limit, window in rates:
        allowed &= store.hit_rate_limit(f"{key}:{window}", window, limit, now=now)
        if receipt is not None:
            receipt.append((f"{key}:{window}", window, now))
    return allowed


def refund(store: Any, receipt: Receipt) -> None:
    """Give back the hits noted in ``receipt`` (what was asked for did not happen)."""
    while receipt:
        key, window, when = receipt.pop()
        store.refund_rate_limit(key, window, now=when)


def exhausted(store: Any, key: str, rates: Iterable[tuple[int, int]]) -> bool:
    """True when ``allow`` has already counted ``key`` up to a limit; counts nothing."""
    return any(store.rate_limit_hits(f"{key}:{window}", window) >= limit for limit, window in rates)


def limited_check(
    store: Any,
    key: str,
    rates: Iterable[tuple[int, int]],
    check: Callable[[], bool],
    *,
    unavailable: tuple[type[BaseException], ...] = (),
) -> bool:
    """Run a credential ``check`` under a per-``key`` limit of wrong tries.

    Raises TooManyAttempts, before ``check`` runs, once ``key`` has used up a limit, and when
    this wrong try used it up.  Right tries do not count.  A store that cannot be reached
    (``unavailable``, e.g. StoreUnavailable) does not lock anyone out.
    """
    rates = list(rates)
    try:
        over = exhausted(store, key, rates)
    except unavailable:
        over = False
    if over:
        raise TooManyAttempts
    if check():
        return True
    try:
        over = not allow(store, key, rates)
    except unavailable:
        over = False
    if over:
        raise TooManyAttempts
    return False


def retry_after(rates: Iterable[tuple[int, int]], now: float | None = None) -> int:
    """Seconds until the longest of these windows starts afresh (for Retry-After)."""
    now = time.time() if now is None else now
    return max((math.ceil(window - now % window) for _, window in rates), default=60)


def cooldown(store: Any, key: str, seconds: int, receipt: Receipt | None = None) -> bool:
    """False when ``key`` was allowed less than ``seconds`` ago.

    Two fixed windows of 2x``seconds``, the second offset by half a window; the second is
    counted only when the first allows.  Two allowed hits need a boundary of each window
    between them, so they are at least ``seconds`` apart.  A refused hit counts only in the
    window that refused it, so someone retrying all the time gets through again, at the
    latest 3x``seconds`` after the last allowed hit.
    """
    if seconds <= 0:
        return True
    window = 2 * seconds
    now = time.time()
    if not store.hit_rate_limit(f"{key}:a", window, 1, now=now):
        return False
    if receipt is not None:
        receipt.append((f"{key}:a", window, now))
    if not store.hit_rate_limit(f"{key}:b", window, 1, now=now + seconds):
        return False
    if receipt is not None:
        receipt.append((f"{key}:b", window, now + seconds))
    return True
