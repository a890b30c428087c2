"""Callbacks while hundreds of clients trickle their requests, against the shipped server.

Starts gunicorn on 127.0.0.1 with the shipped settings (gunicorn.conf.py, 2 workers) and
sends answer callbacks from --senders threads, each on a fresh connection (as Bandwidth
does), for --seconds twice in one run:

1. baseline: nothing else connected;
2. under attack: --slow-headers connections send a request one header line per second and
   never finish it, and --slow-bodies connections send complete headers announcing a body
   and then a few bytes of it per second.  When the server closes one, it is opened again,
   so that many stay open all the time.

For each phase: callbacks sent, answered 200, failed (a timeout is Bandwidth's 15 s), p50,
p99 and max latency; then the ratio of the p99s.  At the end, the callIds answered 200 are
looked up in the store: every acknowledged callback must be stored (lost = acknowledged and
not stored).  Target: p99 under attack < 1 s, 0 failed, 0 lost.

Then GET callbacks with ever longer request lines (1 KiB as the baseline, up to 32 MiB):
the answer, the seconds until it (or the close), and the workers' CPU seconds they cost.
Before, gunicorn parsed request lines of any length up to 1 MiB+ with a cost growing with the
square of the length; now 64-72 KiB get 413 from the app and longer ones 414 or a closed
connection from the server.

    python bench/bench_slow_clients.py [--seconds 20] [--slow-headers 200] [--slow-bodies 100]
    python bench/bench_slow_clients.py --before   # gthread, limit_request_line 0: starves
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.callbacks.helpers import answer_event  # noqa: E402
from tests.servers import app_env, gunicorn, listening_socket  # noqa: E402

USER, PASSWORD = "bench", "bench-secret"
CALLBACK_TIMEOUT = 15.0  # Bandwidth's default callbackTimeout


def answer_payload(call_id: str) -> bytes:
    return json.dumps(answer_event(callId=call_id)).encode()


class SlowClients:
    """Connections trickling a request: one header line, or a few body bytes, per second."""

    def __init__(self, address: tuple[str, int], headers: int, bodies: int) -> None:
        self.address = address
        self.kinds = ["header"] * headers + ["body"] * bodies
        self.open: dict[int, socket.socket] = {}
        self.opened = 0
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self, slot: int) -> None:
        sock = socket.create_connection(self.address, timeout=5)
        if self.kinds[slot] == "header":
            sock.sendall(b"POST /callbacks/answer HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        else:
            sock.sendall(
                b"POST /callbacks/answer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
            )
        sock.setblocking(False)
        self.open[slot] = sock
        self.opened += 1

    def start(self) -> None:
        for slot in range(len(self.kinds)):
            self._connect(slot)
        self.thread.start()

    def _run(self) -> None:
        tick = 0
        while not self.stop.wait(1.0):
            tick += 1
            for slot in range(len(self.kinds)):
                sock = self.open.get(slot)
                chunk = f"X-Slow-{tick}: x\r\n".encode() if self.kinds[slot] == "header" else b'"a'
                try:
                    if sock is None or self._server_closed(sock):
                        raise ConnectionResetError
                    sock.send(chunk)
                except OSError:
                    if sock is not None:
                        self.closed_by_server += 1
                        sock.close()
                    self.open.pop(slot, None)
                    try:
                        self._connect(slot)
                    except OSError:
                        pass  # counted as not open; tried again next second

    @staticmethod
    def _server_closed(sock: socket.socket) -> bool:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            # Readable means an answer (400, a timeout) or EOF: either way it is gone.
            return bool(sel.select(0))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.open.values():
            sock.close()


def send_callbacks(base: str, seconds: float, senders: int, phase: str) -> dict[str, object]:
    latencies: list[float] = []
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def sender() -> None:
        while time.monotonic() < deadline:
            call_id = f"c-bench-{phase}-{uuid.uuid4().hex}"
            started = time.perf_counter()
            try:
                reply = requests.post(
                    f"{base}/callbacks/answer",
                    data=answer_payload(call_id),
                    headers={"Content-Type": "application/json", "Connection": "close"},
                    auth=(USER, PASSWORD),
                    timeout=CALLBACK_TIMEOUT,
                )
                outcome = None if reply.status_code == 200 else f"HTTP {reply.status_code}"
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if outcome is None:
                    acknowledged.append(call_id)
                else:
                    failures.append(outcome)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "acknowledged": acknowledged, "failures": failures}


def server_cpu_seconds(port: int) -> float:
    """User+system CPU time of the gunicorn processes listening on ``port`` (Linux /proc:
    the processes holding the listening socket, i.e. the master and its workers)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            inode = fields[9]
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            fds = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            if f"socket:[{inode}]" not in fds:
                continue
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


def long_line(address: tuple[str, int], query_bytes: int) -> tuple[float, str]:
    """Send a GET callback whose query string has ``query_bytes``; (seconds, answer)."""
    call_id = f"c-bench-line-{uuid.uuid4().hex}"
    fields = urlencode({"eventType": "disconnect", "callId": call_id, "cause": "error"})
    padding = "x" * max(0, query_bytes - len(fields) - len("&errorMessage="))
    request = (
        f"GET /callbacks/disconnect?{fields}&errorMessage={padding} HTTP/1.1\r\n".encode()
        + b"Host: 127.0.0.1\r\nConnection: close\r\nAuthorization: Basic "
        + base64.b64encode(f"{USER}:{PASSWORD}".encode())
        + b"\r\n\r\n"
    )
    started = time.perf_counter()
    with socket.create_connection(address, timeout=60) as sock:
        try:
            sock.sendall(request)
            answer = sock.recv(64).split(b"\r\n")[0].decode() or "closed"
        except OSError as exc:
            answer = f"closed ({type(exc).__name__})"
    return time.perf_counter() - started, answer


def measure_long_lines(base: str) -> list[str]:
    """How fast over-long request lines are refused, and what they cost the workers."""
    host, port = base.removeprefix("http://").split(":")
    address = (host, int(port))
    rows = ["query string            answer                              seconds  server CPU s"]
    for label, size in [
        ("1 KiB (baseline)", 1024),
        ("66 KiB", 66 * 1024),
        ("80 KiB", 80 * 1024),
        ("1 MiB", 1 << 20),
        ("8 MiB", 8 << 20),
        ("32 MiB", 32 << 20),
    ]:
        cpu = server_cpu_seconds(int(port))
        seconds, answer = long_line(address, size)
        time.sleep(0.5)  # let the workers finish with it before reading their CPU time
        used = server_cpu_seconds(int(port)) - cpu
        rows.append(f"{label:24}{answer[:36]:36}{seconds:>8.3f}{used:>14.2f}")
    return rows


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def stored_call_ids(url: str) -> set[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT call_id FROM events WHERE route = 'answer'"))
        ids = {row[0] for row in rows}
    engine.dispose()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--senders", type=int, default=4, help="concurrent callback senders")
    parser.add_argument("--slow-headers", type=int, default=200)
    parser.add_argument("--slow-bodies", type=int, default=100)
    parser.add_argument("--worker-class", default=None, help="override the shipped one")
    parser.add_argument(
        "--before", action="store_true", help="the set-up before: gthread, no line limit"
    )
    parser.add_argument("--port", type=int, default=0, help="default: one the kernel picks")
    parser.add_argument("--no-long-lines", action="store_true", help="skip that measurement")
    args = parser.parse_args()

    if args.before:
        args.worker_class = "gthread --limit-request-line 0"
    if args.worker_class:
        os.environ["GUNICORN_CMD_ARGS"] = f"--worker-class {args.worker_class}"
    phases: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = app_env(
            Path(tmp), CALLBACK_USERNAME=USER, CALLBACK_PASSWORD=PASSWORD, SECRET_KEY="bench"
        )
        url = env["DATABASE_URL"]
        with gunicorn(env, sock=listening_socket(args.port)) as base:
            send_callbacks(base, 2, args.senders, "warmup")
            phases["baseline"] = send_callbacks(base, args.seconds, args.senders, "baseline")
            host, port = base.removeprefix("http://").split(":")
            slow = SlowClients((host, int(port)), args.slow_headers, args.slow_bodies)
            slow.start()
            try:
                phases["slow clients"] = send_callbacks(base, args.seconds, args.senders, "attack")
                still_open = len(slow.open)
            finally:
                slow.close()
            long_lines = [] if args.no_long_lines else measure_long_lines(base)
        stored = stored_call_ids(url)
        spool = Path(env["SPOOL_PATH"])
        spooled = spool.read_text() if spool.exists() else ""

    worker = args.worker_class or "shipped (gunicorn.conf.py)"
    print(
        f"worker class: {worker}; {args.senders} senders x {args.seconds:.0f} s per phase; "
        f"slow clients: {args.slow_headers} header + {args.slow_bodies} body"
    )
    print(f"{'phase':14}{'sent':>7}{'200':>7}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    p99s = {}
    for name, result in phases.items():
        latencies = [x * 1000 for x in result["latencies"]]  # type: ignore[attr-defined]
        p99s[name] = percentile(latencies, 0.99)
        print(
            f"{name:14}{len(latencies):>7}{len(result['acknowledged']):>7}"  # type: ignore[arg-type]
            f"{len(result['failures']):>8}{statistics.median(latencies):>9.1f}"  # type: ignore[arg-type]
            f"{p99s[name]:>9.1f}{max(latencies):>9.1f}"
        )
        failures = result["failures"]
        if failures:
            kinds = {kind: failures.count(kind) for kind in set(failures)}  # type: ignore[attr-defined]
            print(f"{'':14}failures: {kinds}")
    print(
        f"slow connections open at the end: {still_open}/{args.slow_headers + args.slow_bodies}"
        f" (opened {slow.opened}, closed by the server {slow.closed_by_server})"
    )
    print(f"p99 ratio slow clients / baseline: {p99s['slow clients'] / p99s['baseline']:.2f}x")
    acked = [cid for r in phases.values() for cid in r["acknowledged"]]  # type: ignore[attr-defined]
    lost = [cid for cid in acked if cid not in stored and cid not in spooled]
    print(f"acknowledged: {len(acked)}  stored: {len(stored & set(acked))}  lost: {len(lost)}")
    verdict = p99s["slow clients"] < 1000 and not lost and not phases["slow clients"]["failures"]
    print(
        f"target p99 < 1000 ms under slow clients, 0 failed, 0 lost: {'met' if verdict else 'MISSED'}"
    )
    print("\n".join(long_lines))


if __name__ == "__main__":
    main()
