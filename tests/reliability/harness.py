"""The reliability harness: real gunicorn servers, a bounded load client, store counting.

- :class:`Server` / :func:`serve`: gunicorn with the shipped gunicorn.conf.py on 127.0.0.1,
  like ``tests.servers.gunicorn``, but keeping the master's pid (to find and signal its
  workers) and its stdout/stderr in files (to search the logs afterwards).
- :func:`run_load`: a few client threads posting distinct callbacks for a bounded time and
  count; every payload is kept with what happened to it (acknowledged, refused, error).
- :func:`stored_counts`: rows per callId, read straight from the database afterwards.
- :data:`TALLY`: the session's numbers (requests sent, events acknowledged/stored/lost per
  row), printed by the summary in conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from tests.callbacks.helpers import basic_auth
from tests.conftest import DASHBOARD_PASSWORD, DASHBOARD_USER
from tests.servers import ROOT, gunicorn_bind, listening_socket, port_of

# Settings a shell may export that must not leak into a server under test.
_LEAKY = re.compile(
    r"^(DATABASE_URL|SPOOL_PATH|CALLBACK_|FALLBACK_|DASHBOARD_|BW_|VOICE_BACKEND|PUBLIC_BASE_URL"
    r"|SECRET_KEY|TRUSTED_|MAX_CONTENT_LENGTH|ANSWER_FAILURE_MODE|SAFE_SPEECH|STORE_|SANDBOX_"
    r"|CLICK_TO_CALL_|EVENT_RETENTION_DAYS|REJECTED_LOG_LIMIT|RELIABILITY_|LOG_LEVEL"
    r"|GUNICORN_|WEB_CONCURRENCY|HTTPS?_PROXY|ALL_PROXY|NO_PROXY)",
    re.IGNORECASE,
)
JSON = {"Content-Type": "application/json"}
REQUEST_TIMEOUT = 20.0


# --- the session's numbers ---------------------------------------------------------------------


@dataclass
class RowNumbers:
    sent: int = 0
    acked: int = 0
    stored: int = 0
    lost: int = 0
    notes: list[str] = field(default_factory=list)


class Tally:
    """Counters per row id; the current row is set around each test by conftest.py."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, RowNumbers] = {}
        self.current = "-"

    def _row(self, row: str | None) -> RowNumbers:
        return self.rows.setdefault(row or self.current, RowNumbers())

    def sent(self, n: int = 1) -> None:
        with self.lock:
            self._row(None).sent += n

    def events(self, *, acked: int, stored: int, lost: int) -> None:
        with self.lock:
            numbers = self._row(None)
            numbers.acked += acked
            numbers.stored += stored
            numbers.lost += lost

    def note(self, text: str, row: str | None = None) -> None:
        with self.lock:
            self._row(row).notes.append(text)

    def totals(self) -> RowNumbers:
        total = RowNumbers()
        for numbers in self.rows.values():
            total.sent += numbers.sent
            total.acked += numbers.acked
            total.stored += numbers.stored
            total.lost += numbers.lost
        return total


TALLY = Tally()


class Http(requests.Session):
    """A requests session that counts what it sends and ignores proxy settings."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        TALLY.sent(1)
        return super().request(method, url, *args, **kwargs)


# --- servers -----------------------------------------------------------------------------------


def clean_environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not _LEAKY.match(key)}


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry))
    return sorted(found)


class Server:
    """One gunicorn master (gunicorn.conf.py) on 127.0.0.1 with its logs in files."""

    def __init__(
        self,
        env: Mapping[str, str],
        directory: Path,
        *,
        workers: int = 2,
        app: str = "app:create_app()",
        sock: socket.socket | None = None,
        name: str = "server",
    ) -> None:
        self.env = dict(env)
        self.directory = directory
        self.workers_wanted = workers
        self.app = app
        # Bound once here and handed to gunicorn at start: no other process can take the
        # port in between.
        self.socket = sock or listening_socket()
        self.port = port_of(self.socket)
        self.base = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.out_path = directory / f"{name}-{self.port}.out"
        self.err_path = directory / f"{name}-{self.port}.err"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> Server:
        assert self.socket.fileno() != -1, "a Server starts once (its socket went to gunicorn)"
        env = {
            **clean_environ(),
            **self.env,
            **gunicorn_bind(self.socket),
            "WEB_CONCURRENCY": str(self.workers_wanted),
            # gunicorn >= 25 opens a control socket at one path per user: several test
            # masters would take it from each other.
            "GUNICORN_CMD_ARGS": "--no-control-socket",
        }
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", self.app],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                pass_fds=(self.socket.fileno(),),
            )
        # gunicorn holds the port now; once it exits, connections are refused (as a dead
        # server's are), not queued on a copy kept here.
        self.socket.close()
        self.wait_up(timeout)
        return self

    def wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with requests.Session() as probe:
            probe.trust_env = False
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start:\n{self.logs()[-3000:]}")
                try:
                    probe.get(self.base + "/callbacks/", timeout=5)
                except requests.RequestException:
                    time.sleep(0.05)
                    continue
                if len(self.workers()) >= self.workers_wanted:
                    return
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start:\n{self.logs()[-3000:]}")

    def workers(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        return children(self.process.pid)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def signal_pid(self, pid: int, signum: int) -> None:
        """Signal one of this master's workers (never any other process)."""
        assert pid in self.workers(), f"{pid} is not a worker of {self.name}"
        os.kill(pid, signum)

    def stop(self, timeout: float = 40.0) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def logs(self) -> str:
        text = ""
        for path in (self.out_path, self.err_path):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return text


@contextlib.contextmanager
def serve(env: Mapping[str, str], directory: Path, **options: Any) -> Iterator[Server]:
    server = Server(env, directory, **options)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def sqlite_env(directory: Path, **extra: str) -> dict[str, str]:
    """A server's settings on its own SQLite file, with the test credentials."""
    from tests.conftest import CALLBACK_PASSWORD, CALLBACK_USER

    directory.mkdir(parents=True, exist_ok=True)
    return {
        "DATABASE_URL": f"sqlite:///{directory / 'events.db'}",
        "SPOOL_PATH": str(directory / "spool.jsonl"),
        "CALLBACK_USERNAME": CALLBACK_USER,
        "CALLBACK_PASSWORD": CALLBACK_PASSWORD,
        "DASHBOARD_USERNAME": DASHBOARD_USER,
        "DASHBOARD_PASSWORD": DASHBOARD_PASSWORD,
        "SECRET_KEY": "reliability-secret-key",
        **extra,
    }


def bandwidth_env(api_url: str, agent: str = "+12025550199") -> dict[str, str]:
    """Outbound calls to a fake (or closed) Bandwidth API, click-to-call on."""
    from tests.calls.fake_bandwidth import ACCOUNT_ID, API_PASSWORD, API_USER

    return {
        "VOICE_BACKEND": "bandwidth",
        "BW_VOICE_API_URL": api_url,
        "BW_ACCOUNT_ID": ACCOUNT_ID,
        "BW_USERNAME": API_USER,
        "BW_PASSWORD": API_PASSWORD,
        "BW_APPLICATION_ID": "app-reliability",
        "BW_FROM_NUMBER": "+12025550100",
        "CLICK_TO_CALL_AGENT": agent,
        # Required with VOICE_BACKEND=bandwidth; nothing calls back in these tests.
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    }


def flask_cli(env: Mapping[str, str], *args: str, timeout: float = 60.0) -> str:
    """``flask --app app ARGS`` in a subprocess with a server's settings; its output."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- callbacks and load ------------------------------------------------------------------------


def new_prefix(row: str) -> str:
    return f"c-rel-{row.lower()}-{uuid.uuid4().hex[:10]}"


def deliver(
    http: requests.Session,
    base: str,
    route: str,
    payload: Any,
    *,
    auth: Mapping[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> requests.Response:
    headers = {**JSON, **(basic_auth() if auth is None else auth)}
    return http.post(
        f"{base}/callbacks/{route}", data=json.dumps(payload), headers=headers, timeout=timeout
    )


@dataclass
class LoadResult:
    acked: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[dict[str, Any], int, str]] = field(default_factory=list)
    errors: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    bodies: Counter[bytes] = field(default_factory=Counter)
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seconds_elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def sent(self) -> int:
        return len(self.acked) + len(self.refused) + len(self.errors)

    def p99_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        return (
            f"{self.sent} sent, {len(self.acked)} acked, {len(self.refused)} non-2xx, "
            f"{len(self.errors)} errors, {rate:.0f} req/s, p99 {self.p99_ms():.0f} ms"
        )


def run_load(
    base: str,
    route: str,
    make_payload: Callable[[int], dict[str, Any]],
    *,
    threads: int = 4,
    seconds: float = 3.0,
    max_requests: int = 3000,
    during: Callable[[LoadResult], None] | None = None,
    keep_bodies: bool = False,
    auth: Mapping[str, str] | None = None,
) -> LoadResult:
    """Post distinct callbacks from ``threads`` keep-alive clients for at most ``seconds``
    and ``max_requests``; ``during(result)`` runs in this thread meanwhile (faults, polls)."""
    result = LoadResult()
    counter = iter(range(max_requests))
    counter_lock = threading.Lock()
    deadline = result.started + seconds

    def client() -> None:
        with Http() as http:
            while time.monotonic() < deadline:
                with counter_lock:
                    index = next(counter, None)
                if index is None:
                    return
                payload = make_payload(index)
                begun = time.perf_counter()
                try:
                    reply = deliver(http, base, route, payload, auth=auth, timeout=15)
                except requests.RequestException as exc:
                    with result.lock:
                        result.errors.append((payload, type(exc).__name__))
                    time.sleep(0.05)  # a dead server refuses at once: do not spin
                    continue
                took = time.perf_counter() - begun
                with result.lock:
                    result.latencies.append(took)
                    if 200 <= reply.status_code < 300:
                        result.acked.append(payload)
                        if keep_bodies:
                            result.bodies[reply.content] += 1
                    else:
                        result.refused.append((payload, reply.status_code, reply.text[:300]))

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    if during is not None:
        during(result)
    for worker in workers:
        worker.join(timeout=seconds + 30)
    result.seconds = result.seconds_elapsed()
    return result


def resend(
    base: str,
    route: str,
    payloads: list[dict[str, Any]],
    *,
    attempts: int = 6,
    pause: float = 0.3,
) -> list[dict[str, Any]]:
    """Deliver again until acknowledged (as Bandwidth would); returns those never acked."""
    pending = list(payloads)
    with Http() as http:
        for _ in range(attempts):
            left = []
            for payload in pending:
                try:
                    reply = deliver(http, base, route, payload, timeout=15)
                except requests.RequestException:
                    left.append(payload)
                    continue
                if not 200 <= reply.status_code < 300:
                    left.append(payload)
            pending = left
            if not pending:
                break
            time.sleep(pause)
    return pending


# --- the store, read back ----------------------------------------------------------------------


def engine_for(url: str) -> sa.Engine:
    from store.core import normalize_url

    return sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)


def stored_counts(url: str, prefix: str, route: str | None = None) -> Counter[str]:
    """Stored rows per callId for callIds starting with ``prefix`` (optionally one route)."""
    query = "SELECT call_id, count(*) FROM events WHERE call_id LIKE :prefix"
    params: dict[str, Any] = {"prefix": prefix + "%"}
    if route is not None:
        query += " AND route = :route"
        params["route"] = route
    query += " GROUP BY call_id"
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return Counter({cid: int(n) for cid, n in conn.execute(sa.text(query), params)})
    finally:
        engine.dispose()


def scalar(url: str, query: str, **params: Any) -> Any:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return [dict(row) for row in conn.execute(sa.text(query), params).mappings()]
    finally:
        engine.dispose()


def account(acked: list[dict[str, Any]], counts: Counter[str]) -> tuple[int, int, list[str]]:
    """(stored, lost, duplicated callIds) of acknowledged events, one event per callId."""
    ids = {payload["callId"] for payload in acked}
    lost = sorted(cid for cid in ids if counts.get(cid, 0) == 0)
    doubled = sorted(cid for cid, n in counts.items() if n > 1)
    return len(ids) - len(lost), len(lost), doubled


# --- dashboard ---------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


def login(http: requests.Session, base: str) -> None:
    """Log ``http`` in to the dashboard with the test operator's credentials."""
    page = http.get(f"{base}/dashboard/login")
    reply = http.post(
        f"{base}/dashboard/login",
        data={
            "csrf_token": csrf_token(page.text),
            "username": DASHBOARD_USER,
            "password": DASHBOARD_PASSWORD,
        },
        allow_redirects=False,
    )
    assert reply.status_code == 303, reply.text[:500]


def api_events(http: requests.Session, base: str, call_id: str) -> list[dict[str, Any]]:
    reply = http.get(
        f"{base}/api/calls/{call_id}/events", auth=(DASHBOARD_USER, DASHBOARD_PASSWORD)
    )
    assert reply.status_code == 200, reply.text[:300]
    events: list[dict[str, Any]] = reply.json()["events"]
    return events


def click_to_call(
    http: requests.Session, base: str, number: str, **extra: str
) -> requests.Response:
    """The visitor's form, filled and sent (no redirects followed)."""
    page = http.get(f"{base}/click-to-call")
    assert page.status_code == 200, page.text[:300]
    data = {"number": number, "csrf_token": csrf_token(page.text), **extra}
    return http.post(f"{base}/click-to-call", data=data, allow_redirects=False)


def reset(bandwidth: Any) -> None:
    """Forget a FakeBandwidth's requests and scripted replies."""
    with bandwidth.lock:
        bandwidth.received.clear()
        bandwidth.replies.clear()
