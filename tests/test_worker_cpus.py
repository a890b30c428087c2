"""Each gunicorn worker on its own CPUs (worker_cpus.py, gunicorn.conf.py's fork hooks)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

import worker_cpus
from tests.servers import app_env, gunicorn

REQUEST_TIMEOUT = 20

needs_affinity = pytest.mark.skipif(
    worker_cpus.allowed() is None, reason="this system cannot pin processes to CPUs"
)
needs_two_cpus = pytest.mark.skipif(
    len(worker_cpus.allowed() or ()) < 2, reason="pinning needs at least two CPUs to choose from"
)


@pytest.mark.parametrize(
    ("available", "workers", "expected"),
    [
        ({0, 1}, 2, [{0}, {1}]),
        (range(8), 2, [{0, 1, 2, 3}, {4, 5, 6, 7}]),
        (range(5), 2, [{0, 1}, {2, 3, 4}]),
        ({0, 1}, 4, [{0}, {1}]),  # more workers than CPUs: each CPU is a group
        ({2, 5, 7}, 3, [{2}, {5}, {7}]),  # a cpuset with gaps
        ({3}, 2, []),  # one CPU: nothing to choose
        ({0, 1, 2}, 1, [{0, 1, 2}]),
    ],
)
def test_the_cpus_are_split_into_one_group_per_worker(available, workers, expected):
    assert worker_cpus.groups(available, workers) == [frozenset(group) for group in expected]


def test_a_new_worker_takes_the_group_with_the_fewest_live_workers():
    first = worker_cpus.for_new_worker({0, 1}, 2, [])
    second = worker_cpus.for_new_worker({0, 1}, 2, [first])
    assert {first, second} == {frozenset({0}), frozenset({1})}
    # The worker on CPU 0 died: its replacement takes CPU 0, not a second place on CPU 1.
    assert worker_cpus.for_new_worker({0, 1}, 2, [frozenset({1})]) == frozenset({0})
    # Three workers on two CPUs: the third shares, then the fourth evens it out.
    third = worker_cpus.for_new_worker({0, 1}, 4, [first, second])
    fourth = worker_cpus.for_new_worker({0, 1}, 4, [first, second, third])
    assert {third, fourth} == {frozenset({0}), frozenset({1})}
    assert worker_cpus.for_new_worker({0}, 2, []) is None  # one CPU: nothing to choose
    assert worker_cpus.for_new_worker(None, 2, []) is None  # a system that cannot pin


def test_after_the_number_of_workers_changed_a_new_worker_avoids_the_busy_cpus():
    # Two workers on four CPUs took {0, 1} and {2, 3}; one more (TTIN) splits the CPUs in
    # three, none of which matches a live worker's: it must still avoid sharing if it can.
    live = [frozenset({0, 1}), frozenset({2, 3})]
    assert worker_cpus.for_new_worker(range(4), 3, live) == frozenset({0})  # all share
    # Down to two workers (TTOU): the one left on CPU 1 of an earlier split keeps the new
    # one off the group holding CPU 1.
    assert worker_cpus.for_new_worker(range(4), 2, [frozenset({1})]) == frozenset({2, 3})


@needs_affinity
def test_where_the_system_cannot_pin_no_cpus_are_known(monkeypatch):
    assert worker_cpus.allowed() == frozenset(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_setaffinity")  # as on macOS
    assert worker_cpus.allowed() is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, True),
        ("", True),
        ("1", True),
        ("on", True),
        ("TRUE", True),
        ("0", False),
        ("off", False),
        ("No", False),
    ],
)
def test_pin_workers_is_on_unless_switched_off(raw, expected):
    assert worker_cpus.enabled(raw) is expected


@pytest.mark.parametrize("raw", ["2", "maybe", "enabled"])
def test_a_wrong_pin_workers_value_names_the_setting(raw):
    with pytest.raises(ValueError, match="PIN_WORKERS must be 1 or 0 \\(or on/off"):
        worker_cpus.enabled(raw)


def worker_cpus_seen(base: str, count: int, exclude: frozenset[int] = frozenset()) -> dict:
    """{pid: CPUs} of ``count`` workers other than ``exclude``, from fresh connections."""
    seen: dict[int, frozenset[int]] = {}
    deadline = time.monotonic() + 60
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only workers {seen} answered"
        with requests.Session() as session:
            pid, cpus = session.get(base + "/cpus", timeout=REQUEST_TIMEOUT).text.split()
        if int(pid) not in exclude:
            seen[int(pid)] = frozenset(int(cpu) for cpu in cpus.split(","))
    return seen


@needs_two_cpus
def test_the_shipped_workers_run_on_cpus_of_their_own_and_a_restart_takes_the_freed_ones(
    tmp_path,
):
    allowed = frozenset(os.sched_getaffinity(0))
    with gunicorn(app_env(tmp_path), app="tests.pid_app:create_app()") as base:
        workers = worker_cpus_seen(base, 2)
        first, second = workers.values()
        assert first and second and not first & second, workers
        assert first | second <= allowed
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replacement = worker_cpus_seen(base, 2, exclude=frozenset({victim}))
        assert sorted(replacement.values(), key=min) == sorted(workers.values(), key=min)


@needs_two_cpus
def test_with_pin_workers_off_each_worker_may_run_anywhere(tmp_path):
    allowed = frozenset(os.sched_getaffinity(0))
    env = {**app_env(tmp_path), "PIN_WORKERS": "0"}
    with gunicorn(env, app="tests.pid_app:create_app()") as base:
        assert list(worker_cpus_seen(base, 2).values()) == [allowed, allowed]


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(("info", message % args))

    def warning(self, message: str, *args: object) -> None:
        self.lines.append(("warning", message % args))


@needs_two_cpus
def test_pin_keeps_a_process_on_its_cpus_and_says_so():
    cpu = min(os.sched_getaffinity(0))
    child = subprocess.Popen(["sleep", "60"])
    try:
        log = Log()
        worker_cpus.pin(frozenset({cpu}), log, pid=child.pid)
        assert os.sched_getaffinity(child.pid) == {cpu}
        assert log.lines == [("info", f"worker {child.pid} runs on CPUs [{cpu}]")]
    finally:
        child.kill()
        child.wait()


@needs_affinity
def test_a_worker_whose_cpus_cannot_be_had_runs_unpinned_with_a_warning():
    log = Log()
    before = os.sched_getaffinity(0)
    worker_cpus.pin(frozenset({1_000_000}), log)  # no such CPU
    assert os.sched_getaffinity(0) == before
    assert len(log.lines) == 1
    level, line = log.lines[0]
    assert level == "warning"
    assert line.startswith(f"worker {os.getpid()} not pinned to CPUs [1000000]")
