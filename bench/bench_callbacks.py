"""Callback throughput: the real app's answer route against a hand-written route and a bare one.

Starts gunicorn on 127.0.0.1 three times with the same shipped settings (gunicorn.conf.py,
2 workers by default): the real app (auth, parse, dedupe, store, flow routing, the flow's
signed tag, render), whose flow (bench/constant_flow.py) answers the same document as the
other two, so the ratio measures the framework and not a handler; a route
as a competent developer would write it by hand (bench/handwritten_app.py: HTTP Basic with
a constant-time compare, json.loads, one INSERT per request on a per-thread connection,
constant BXML) in the same durability mode; and a bare Flask route returning a constant
BXML string.  Drives them in alternating rounds with the same bounded wrk load of distinct
answer callbacks; then counts the stored rows of each to find lost events.

    apt-get install wrk
    python bench/bench_callbacks.py [--sqlite-synchronous FULL|NORMAL] [--database-url URL]
        [--rounds 5] [--seconds 4] [--connections 16] [--workers 2] [--port-base N]
        [--ceiling] [--no-linger] [--no-pin]

Targets (issue 16): app / hand-written >= 1.0x in the default durable mode (aim 1.3x),
>= 0.8x with NORMAL, >= 0.7x on PostgreSQL; zero errors and zero lost events.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.handwritten_app import create_table  # noqa: E402
from store.engine import normalize_url  # noqa: E402
from tests.servers import gunicorn, listening_socket  # noqa: E402

USER, PASSWORD = "bench", "bench-secret"


def start_wrk(
    base: str, seconds: int, connections: int, threads: int, prefix: str = ""
) -> subprocess.Popen[str]:
    """Start wrk with answer_load.lua against ``base``; ``prefix`` marks its callIds."""
    env = {
        **os.environ,
        "BENCH_AUTH": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "BENCH_PREFIX": prefix,
    }
    return subprocess.Popen(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "answer_load.lua"),
            base,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wrk_result(process: subprocess.Popen[str], seconds: int) -> dict[str, float]:
    """Wait for wrk; its RESULT line (ok, bad, p50_ms, p99_ms, errors) plus rps."""
    out, err = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        sys.exit(f"wrk failed: {err}")
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT ") :])
    result["rps"] = (result["ok"] + result["bad"]) / seconds
    return result


def run_wrk(
    base: str, seconds: int, connections: int, threads: int, prefix: str = ""
) -> dict[str, float]:
    """One wrk round; with the server's CPU microseconds per answered request."""
    port = int(base.rsplit(":", 1)[1])
    cpu_before = server_cpu_seconds(port)
    result = wrk_result(start_wrk(base, seconds, connections, threads, prefix), seconds)
    answered = result["ok"] + result["bad"]
    result["cpu_us"] = (server_cpu_seconds(port) - cpu_before) * 1e6 / max(1, answered)
    return result


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def _listening_inode(port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            return fields[9]
    return None


def server_cpu_seconds(port: int) -> float:
    """CPU seconds used so far by the gunicorn server listening on ``port`` (master and
    workers, every thread): per request, a figure that other load on a shared machine
    disturbs far less than requests per second do."""
    socket_link = f"socket:[{_listening_inode(port)}]"
    ticks = 0
    for master in _children(os.getpid()):
        try:
            links = [
                os.readlink(f"/proc/{master}/fd/{fd}") for fd in os.listdir(f"/proc/{master}/fd")
            ]
        except OSError:
            continue
        if socket_link not in links:
            continue
        for pid in (master, *_children(master)):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # a worker that exited meanwhile (the master's reaped time has it)
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
            if pid == master:  # the workers it has reaped (restarted ones) count too
                ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")
    sys.exit(f"no server of this run listens on port {port}")


def count_rows(url: str, table: str = "events", where: str = "WHERE route='answer'") -> int:
    engine = sa.create_engine(normalize_url(url))
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}"))  # noqa: S608
        value = int(count.scalar_one())
    engine.dispose()
    return value


# --ceiling: the app with its store write replaced by an instant "inserted"
# (bench/storeless_app.py), to tell what the write path costs from what the rest costs.
CEILING = "app, no store"
# --no-linger: the app whose commits do not wait for the rest of a burst (bench/nolinger_app.py).
NO_LINGER = "app, no linger"
# --no-pin: the app and the hand-written route with their workers left to roam the CPUs
# (PIN_WORKERS=0; gunicorn.conf.py pins each worker to its own CPU).
NO_PIN = "app, not pinned"
NO_PIN_HAND = "hand, not pinned"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="as shipped (WEB_CONCURRENCY)")
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=("FULL", "NORMAL"))
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--port-base", type=int, default=None, help="ports N, N+1, N+2 (N+3)")
    parser.add_argument(
        "--ceiling", action="store_true", help=f"add the row {CEILING!r} (nothing stored)"
    )
    parser.add_argument(
        "--no-linger",
        action="store_true",
        help=f"add the row {NO_LINGER!r} (commits do not wait for the rest of a burst)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help=f"add the rows {NO_PIN!r} and {NO_PIN_HAND!r} (PIN_WORKERS=0)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        hand_url = args.database_url or f"sqlite:///{tmp}/hand.db"
        hand_database = hand_url.removeprefix("sqlite:///")
        create_table(hand_database)
        env = {
            "DATABASE_URL": url,
            "SPOOL_PATH": f"{tmp}/spool.jsonl",
            "STORE_SQLITE_SYNCHRONOUS": args.sqlite_synchronous,
            "CALLBACK_USERNAME": USER,
            "CALLBACK_PASSWORD": PASSWORD,
            "SECRET_KEY": "bench",
            "DASHBOARD_PASSWORD": "bench",
            "VOICE_FLOWS": "bench.constant_flow",
            "HAND_DATABASE": hand_database,
            "HAND_SYNCHRONOUS": args.sqlite_synchronous,
            "HAND_AUTH": f"{USER}:{PASSWORD}",
        }
        base_port = args.port_base or 0
        apps = {
            "bare route": "bench.bare_app:create_app()",
            "hand-written": "bench.handwritten_app:create_app()",
            "app answer": "app:create_app()",
        }
        if args.ceiling:
            apps[CEILING] = "bench.storeless_app:create_app()"
        if args.no_linger:
            apps[NO_LINGER] = "bench.nolinger_app:create_app()"
        if args.no_pin:
            apps[NO_PIN] = "app:create_app()"
            apps[NO_PIN_HAND] = "bench.handwritten_app:create_app()"
        # The servers storing callbacks in the app's database mark their callIds apart.
        prefixes = {"app answer": "app", NO_LINGER: "nolinger", NO_PIN: "nopin"}
        spools = {
            "app answer": f"{tmp}/spool.jsonl",
            NO_LINGER: f"{tmp}/spool-nolinger.jsonl",
            NO_PIN: f"{tmp}/spool-nopin.jsonl",
        }
        unpinned = {NO_PIN, NO_PIN_HAND}
        # The hand-written servers share one table: their callIds tell their rows apart.
        hand_prefixes = {"hand-written": "hand", NO_PIN_HAND: "handnopin"}

        marks = {**prefixes, **hand_prefixes}  # each server's callId prefix, if it has one

        def hand_rows(name: str) -> int:
            where = f"WHERE call_id LIKE 'c-bench-{hand_prefixes[name]}-%'"
            return count_rows(hand_url, "hand_events", where)

        def stored_rows(name: str) -> int:
            return count_rows(url, where=f"WHERE call_id LIKE 'c-bench-{prefixes[name]}-%'")

        results: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
        with contextlib.ExitStack() as servers:
            bases = {}
            for number, (name, app) in enumerate(apps.items()):
                sock = listening_socket(base_port + number if base_port else 0)
                server_env = {**env, "SPOOL_PATH": spools.get(name, env["SPOOL_PATH"])}
                # Explicit both ways: a PIN_WORKERS in the shell must not relabel the rows.
                server_env["PIN_WORKERS"] = "0" if name in unpinned else "1"
                bases[name] = servers.enter_context(
                    gunicorn(server_env, workers=args.workers, app=app, sock=sock)
                )
            for name, base in bases.items():
                run_wrk(base, 2, args.connections, args.threads, marks.get(name, ""))  # warm-up
            warm_rows = {name: stored_rows(name) for name in apps if name in prefixes}
            warm_hand = {name: hand_rows(name) for name in apps if name in hand_prefixes}
            # Rounds alternate between the servers, so a noisy neighbour on this shared
            # machine hits them alike; medians are compared.
            for _ in range(args.rounds):
                for name, base in bases.items():
                    results[name].append(
                        run_wrk(
                            base,
                            args.seconds,
                            args.connections,
                            args.threads,
                            marks.get(name, ""),
                        )
                    )
        stored = {name: stored_rows(name) - warm for name, warm in warm_rows.items()}
        stored.update({name: hand_rows(name) - warm for name, warm in warm_hand.items()})
        spool_lines = {
            name: len(Path(path).read_text().splitlines()) if Path(path).exists() else 0
            for name, path in spools.items()
        }

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    def lost(name: str) -> str:
        if name not in stored:
            return "-"
        acked = int(sum(r["ok"] for r in results[name]))
        kept = stored[name] + spool_lines.get(name, 0)
        return str(max(0, acked - kept))

    store_name = (
        f"sqlite synchronous={args.sqlite_synchronous}"
        if not args.database_url
        else args.database_url.split(":")[0]
    )
    print(
        f"workers={args.workers} connections={args.connections} "
        f"rounds={args.rounds}x{args.seconds}s store={store_name}"
    )
    print(
        f"{'':17}{'req/s':>10}{'(min-max)':>14}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'errors':>8}{'lost':>6}{'cpu us/req':>12}"
    )
    for name, rounds in results.items():
        rps = [r["rps"] for r in rounds]
        print(
            f"{name:17}{median(name, 'rps'):>10.0f}{f'({min(rps):.0f}-{max(rps):.0f})':>14}"
            f"{median(name, 'p50_ms'):>9.1f}{median(name, 'p99_ms'):>9.1f}"
            f"{int(sum(r['bad'] for r in rounds)):>9}{int(sum(r['errors'] for r in rounds)):>8}"
            f"{lost(name):>6}{median(name, 'cpu_us'):>12.0f}"
        )

    def paired(name: str, baseline: str) -> float:
        """The median of the rounds' ratios: each round of ``name`` against the round of
        ``baseline`` run right after or before it, so slow swings of the machine cancel."""
        pairs = zip(results[name], results[baseline], strict=True)
        return statistics.median(mine["rps"] / theirs["rps"] for mine, theirs in pairs)

    app_rps = median("app answer", "rps")
    print(
        f"ratio app/hand-written (medians): {app_rps / median('hand-written', 'rps'):.2f}x"
        f"   app/bare: {app_rps / median('bare route', 'rps'):.2f}x"
        f"   (median of paired rounds: {paired('app answer', 'hand-written'):.2f}x)"
    )
    print(
        "servers' CPU per request, hand-written/app (medians): "
        f"{median('hand-written', 'cpu_us') / median('app answer', 'cpu_us'):.2f}x"
    )
    if args.ceiling:
        print(
            f"ratio {CEILING}/hand-written (medians): "
            f"{median(CEILING, 'rps') / median('hand-written', 'rps'):.2f}x"
        )
    if args.no_pin:
        print(
            f"not pinned: ratio app/hand-written (medians): "
            f"{median(NO_PIN, 'rps') / median(NO_PIN_HAND, 'rps'):.2f}x"
            f" (paired rounds: {paired(NO_PIN, NO_PIN_HAND):.2f}x);"
            f" pinned/not pinned: app {app_rps / median(NO_PIN, 'rps'):.2f}x,"
            f" hand-written {median('hand-written', 'rps') / median(NO_PIN_HAND, 'rps'):.2f}x"
        )
    if args.no_linger:
        print(
            f"ratio app/{NO_LINGER} (medians): {app_rps / median(NO_LINGER, 'rps'):.2f}x"
            f" (paired rounds: {paired('app answer', NO_LINGER):.2f}x)"
            "   CPU per request: "
            f"{median('app answer', 'cpu_us') / median(NO_LINGER, 'cpu_us'):.2f}x"
        )
    print(f"app spooled: {spool_lines['app answer']}")


if __name__ == "__main__":
    main()
