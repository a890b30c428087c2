"""The reliability suite's plumbing: the ``row`` marker, shared servers, the summary.

Every test carries ``@pytest.mark.row("L1")`` (a row of the reliability table: L load,
F faults, B bad inputs; S scale-out, D deploy readiness).  At the end of the session a
one-screen summary lists the rows by outcome and the numbers the tests recorded in
``harness.TALLY``: requests sent, events acknowledged, stored and lost (lost must be 0).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.calls.fake_bandwidth import FakeBandwidth
from tests.reliability.harness import (
    TALLY,
    Http,
    Server,
    bandwidth_env,
    flask_cli,
    login,
    sqlite_env,
)
from tests.servers import listening_socket, port_of

_ROWS_BY_NODE: dict[str, str] = {}
_OUTCOMES: dict[str, list[str]] = {}
_ORDER = "LFBSD"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "row(id): the reliability table row a test proves (L1..L4, F1..F12, B1..B21)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("row")
        if marker is not None:
            _ROWS_BY_NODE[item.nodeid] = str(marker.args[0])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    row = _ROWS_BY_NODE.get(report.nodeid)
    if row is None:
        return
    outcome = None
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    elif report.failed:
        outcome = "failed"
    elif report.when == "call":
        outcome = report.outcome
    elif report.skipped:
        outcome = "skipped"
    if outcome is not None:
        _OUTCOMES.setdefault(row, []).append(outcome)


def _row_key(row: str) -> tuple[int, int, str]:
    digits = "".join(c for c in row if c.isdigit())
    return (_ORDER.find(row[0]) % 10, int(digits or 0), row)


def _row_state(outcomes: list[str]) -> str:
    """failed / xpassed / skipped win; a row whose other tests passed passes (its xfail
    tests, known bugs in other rooms, are listed apart)."""
    for state in ("failed", "xpassed", "skipped"):
        if state in outcomes:
            return state
    return "passed" if "passed" in outcomes else "xfailed"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _OUTCOMES:
        return
    by_state: dict[str, list[str]] = {}
    for row in sorted(_OUTCOMES, key=_row_key):
        by_state.setdefault(_row_state(_OUTCOMES[row]), []).append(row)
    write = terminalreporter.write_line
    terminalreporter.section("reliability summary")
    passed = by_state.get("passed", [])
    write(f"rows passed ({len(passed)}/{len(_OUTCOMES)}): {' '.join(passed)}")
    known = [row for row in sorted(_OUTCOMES, key=_row_key) if "xfailed" in _OUTCOMES[row]]
    if known:
        write(f"rows with a known bug in another room (xfail, strict): {' '.join(known)}")
    for state in ("failed", "xpassed", "skipped", "xfailed"):
        if by_state.get(state):
            write(f"rows {state}: {' '.join(by_state[state])}")
    total = TALLY.totals()
    write(
        f"requests sent: {total.sent}   events acknowledged: {total.acked}   "
        f"events stored: {total.stored}   events lost: {total.lost}"
    )
    for row in sorted(TALLY.rows, key=lambda r: _row_key(r) if r != "-" else (9, 0, r)):
        numbers = TALLY.rows[row]
        if numbers.notes:
            write(f"  {row}: " + "; ".join(numbers.notes))


@pytest.fixture(autouse=True)
def _current_row(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("row")
    TALLY.current = str(marker.args[0]) if marker else "-"
    yield
    TALLY.current = "-"


# --- the shared server: the real app, 4 workers, SQLite, a fake Bandwidth -----------------------


@pytest.fixture(scope="session")
def main_bandwidth() -> Iterator[FakeBandwidth]:
    fake = FakeBandwidth()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def main_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("main")


@pytest.fixture(scope="session")
def main_socket() -> socket.socket:
    """The main server's listening socket, bound before its settings name the port."""
    return listening_socket()


@pytest.fixture(scope="session")
def main_port(main_socket: socket.socket) -> int:
    return port_of(main_socket)


@pytest.fixture(scope="session")
def main_env(main_dir: Path, main_bandwidth: FakeBandwidth, main_port: int) -> dict[str, str]:
    return {
        **sqlite_env(main_dir),
        **bandwidth_env(main_bandwidth.base_url),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{main_port}",
        "TRUSTED_HOSTS": "127.0.0.1",
        "STORE_TEST_CRASH_FILE": str(main_dir / "crash"),
    }


# The shipped app plus the test-only knobs (the crash file among them).
HARNESS_APP = "tests.reliability.harness_app:create_app()"


@pytest.fixture(scope="session")
def main_server(
    main_env: dict[str, str], main_dir: Path, main_socket: socket.socket
) -> Iterator[Server]:
    """The real app under gunicorn: 4 workers (the shipped worker class), SQLite, TRUSTED_HOSTS=127.0.0.1."""
    flask_cli(main_env, "store", "migrate")  # once, before the servers (README: deploying)
    server = Server(main_env, main_dir, workers=4, sock=main_socket, name="main", app=HARNESS_APP)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def main_operator(main_server: Server) -> Iterator[Http]:
    """One dashboard login on the main server (logins are rate limited per address)."""
    with Http() as http:
        login(http, main_server.base)
        yield http
