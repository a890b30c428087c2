"""Which CPUs each gunicorn worker runs on (gunicorn.conf.py's pre_fork and post_fork).

A worker is one Python process: its event loop, its request threads and the store's commit
threads hand each callback from one to the next, and only one of them runs Python at a
time.  Left to the scheduler, those threads wake on whichever CPU is free, so every hand-off
moves the request's data between CPU caches.  Kept on one CPU (or one share of them, when
there are more CPUs than workers), the hand-offs stay in one cache: at the shipped settings
(2 workers, 2 CPUs) the server answered 13-36% more callbacks per second, with 3-14% less
CPU per callback (bench/README.md).

The CPUs allowed to the server (its affinity: a container's cpuset, say) are split into one
group per worker, or each CPU is a group when workers outnumber them.  A new worker takes
the group fewest live workers may run on, so a restarted worker takes its predecessor's.
Live workers stay where they are: after the number of workers changes while the server
runs (TTIN, TTOU), a restart of the server spreads them evenly again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def enabled(raw: str | None) -> bool:
    """PIN_WORKERS: on unless set to 0/false/no/off; ValueError naming it for other values."""
    if raw is None or raw.strip() == "":
        return True
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"PIN_WORKERS must be 1 or 0 (or on/off, true/false, yes/no), got {raw!r}")


def allowed() -> frozenset[int] | None:
    """The CPUs this process may run on; None where the system cannot pin (macOS, say)."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return None
    return frozenset(os.sched_getaffinity(0))


def groups(available: Iterable[int], workers: int) -> list[frozenset[int]]:
    """Split ``available`` CPUs into min(workers, CPUs) groups of consecutive CPUs, their
    sizes differing by one at most; no groups (no pinning) with fewer than two CPUs."""
    cpus = sorted(available)
    if len(cpus) < 2:
        return []
    count = min(max(1, workers), len(cpus))
    return [
        frozenset(cpus[n * len(cpus) // count : (n + 1) * len(cpus) // count]) for n in range(count)
    ]


def for_new_worker(
    available: Iterable[int] | None, workers: int, taken: Sequence[frozenset[int] | None]
) -> frozenset[int] | None:
    """The CPUs of a worker about to start, given those of the live ones (``taken``); None
    when there is nothing to choose (one CPU, or none known)."""
    choices = groups(available or (), workers)
    if not choices:
        return None

    def load(group: frozenset[int]) -> int:
        """Live workers that may run on a CPU of ``group`` (their groups differ from these
        after the number of workers changed)."""
        return sum(1 for cpus in taken if cpus and cpus & group)

    return min(choices, key=lambda group: (load(group), min(group)))


def pin(cpus: frozenset[int], log: Any, pid: int = 0) -> None:
    """Keep process ``pid`` (0: this one) on ``cpus``, and say so in ``log``; a CPU taken
    away since it was chosen leaves the process unpinned with a warning, rather than not
    running at all (a worker failing at start would be restarted in a loop)."""
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as exc:
        log.warning("worker %s not pinned to CPUs %s: %s", pid or os.getpid(), sorted(cpus), exc)
    else:
        log.info("worker %s runs on CPUs %s", pid or os.getpid(), sorted(cpus))
