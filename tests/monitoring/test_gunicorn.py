"""/metrics under real gunicorn with two workers: Prometheus' multiprocess mode adds up what
every worker counted, whichever worker answers the scrape, and keeps an exited worker's
counts."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.callbacks.helpers import basic_auth, disconnect_event
from tests.monitoring.conftest import BEARER, TOKEN, sample
from tests.servers import app_env, gunicorn

pytestmark = pytest.mark.slow


def post_disconnects(base: str, count: int) -> None:
    def post(_n: int) -> int:
        # A new connection each: the kernel hands connections to either worker.
        reply = requests.post(
            base + "/callbacks/disconnect",
            data=json.dumps(disconnect_event(cause="busy")),
            headers={**basic_auth(), "Content-Type": "application/json", "Connection": "close"},
            timeout=30,
        )
        return reply.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, range(count))) == {204}


def worker_files(directory) -> set[str]:
    return {name for name in os.listdir(directory) if name.startswith("counter_")}


def busy_total(base: str) -> float:
    reply = requests.get(base + "/metrics", headers=BEARER, timeout=30)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return sample(reply.text, "voice_disconnects_total", cause="busy")


def test_two_workers_counts_are_summed_and_outlive_a_worker(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left over from the last run")
    env = app_env(tmp_path, METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(directory))
    with gunicorn(env, workers=2, log_path=tmp_path / "gunicorn.log") as base:
        assert "counter_1.db" not in os.listdir(directory)  # emptied at start
        sent = 0
        deadline = time.monotonic() + 60
        while len(worker_files(directory)) < 2:  # until both workers have counted some
            assert time.monotonic() < deadline, "one worker took every connection"
            post_disconnects(base, 20)
            sent += 20
        # Each scrape is answered by one worker, and every one tells the sum of both.
        assert [busy_total(base) for _ in range(6)] == [sent] * 6

        pid = int(sorted(worker_files(directory))[0].split("_")[1].split(".")[0])
        os.kill(pid, signal.SIGTERM)  # gunicorn starts another worker in its place
        deadline = time.monotonic() + 30
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "the worker did not exit"
            time.sleep(0.05)
        post_disconnects(base, 10)
        assert busy_total(base) == sent + 10  # the exited worker's counts are still there


def test_two_workers_send_one_alert(tmp_path):
    """Both workers count busy disconnects and evaluate the rule every 0.2 s: the webhook
    gets one alert, built from both workers' counts."""
    import sqlite3

    from tests.monitoring.conftest import HOOK_PATH, posts, wait_for
    from tests.sandbox.receiver import Receiver

    def counted() -> int:
        with sqlite3.connect(tmp_path / "events.db") as db:
            return int(db.execute("SELECT coalesce(sum(count), 0) FROM alert_counts").fetchone()[0])

    with Receiver() as webhook:
        env = app_env(
            tmp_path,
            ALERT_RULES="busy>15/1d",
            ALERT_WEBHOOK_URL=webhook.url(HOOK_PATH),
            ALERT_CHECK_SECONDS="0.2",
        )
        with gunicorn(env, workers=2, log_path=tmp_path / "gunicorn.log") as base:
            post_disconnects(base, 20)
            [alert] = posts(webhook)
            first = re.match(r"(\d+) busy in the last 1 day at ", alert.payload["text"])
            assert first and 15 < int(first.group(1)) <= 20  # over the threshold, once
            post_disconnects(base, 10)
            wait_for(lambda: counted() == 30)
            assert len(webhook.requests) == 1
        log = (tmp_path / "gunicorn.log").read_text()
        assert len(re.findall(r'"alert: \d+ busy in the last 1 day', log)) == 1
        assert HOOK_PATH not in log


def test_the_servers_metrics_directory_is_its_own_and_removed_at_exit(tmp_path):
    import subprocess
    import sys

    from tests.servers import ROOT

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = app_env(tmp_path, METRICS_TOKEN=TOKEN, TMPDIR=str(scratch))
    with gunicorn(env, workers=2) as base:
        post_disconnects(base, 4)
        assert busy_total(base) == 4
        [directory] = [p for p in scratch.iterdir() if p.name.startswith("voice-metrics-")]
        assert worker_files(directory)
    assert list(scratch.iterdir()) == []  # gone with the server

    refused = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env={**os.environ, **env, "METRICS_TOKEN": "short", "PORT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: METRICS_TOKEN must be at least 16 characters "
        "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
    )
    assert list(scratch.iterdir()) == []  # also when a setting stopped it
