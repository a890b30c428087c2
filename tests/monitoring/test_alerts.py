"""Alert rules: failures counted from real callbacks, posted to a webhook on 127.0.0.1 once
per rule and window (also when two apps on one database evaluate at the same moment), and a
webhook that is down is logged without its secret path."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from callbacks import Flow
from callbacks.testing import example_payload
from monitoring.alerts import dashboard_link
from store import get_store
from tests.callbacks.helpers import Bandwidth, call_id, disconnect_event
from tests.monitoring.conftest import HOOK_PATH, posts, wait_for
from tests.pg import fresh_postgres_url
from tests.servers import closed_port

DAY = 86400.0


def alert_app(app_config, webhook_url, rules, interval=3600.0, **extra):
    from app import create_app

    app = create_app(
        {
            **app_config,
            "ALERT_RULES": rules,
            "ALERT_WEBHOOK_URL": webhook_url,
            "ALERT_CHECK_SECONDS": interval,
            **extra,
        }
    )
    app.extensions["alerts"].retry_backoff = 0.01
    return app


def crash_answers(app, count):
    """``count`` answer callbacks whose handler raises (the caller hears the safe document)."""
    if "crashing" not in app.extensions["flows"]:
        flow = Flow("crashing")

        @flow.on("answer")
        def crash(event):
            raise RuntimeError("boom")

        app.extensions["flows"].register(flow, default=True)
    bandwidth = Bandwidth(app.test_client())
    for _ in range(count):
        reply = bandwidth.post("answer", example_payload("answer", callId=call_id()))
        assert reply.status_code == 200 and "Hangup" in reply.get_data(as_text=True)


def test_an_alert_is_posted_once_per_window(app_config, webhook, stop_alerts):
    app = alert_app(
        app_config, webhook.url(HOOK_PATH), "handler-error>2/1d,busy>5/1d", interval=0.05
    )
    stop_alerts.append(app)
    alerts = app.extensions["alerts"]
    crash_answers(app, 3)

    [post] = posts(webhook)
    assert post.path == HOOK_PATH
    text = post.payload["text"]
    assert text.startswith("3 handler-error in the last 1 day at http://127.0.0.1:8000 ")
    assert "(alert rule: more than 2 handler-error in 1 day)" in text
    assert "Dashboard: http://127.0.0.1:8000/dashboard?category=handler-error&all=1&since=" in text
    assert set(post.payload) == {"text"}

    crash_answers(app, 3)  # still over the threshold, in the same window
    with app.app_context():
        wait_for(lambda: get_store().alert_count("handler-error", 0) == 6)
    seen = alerts.ticks
    wait_for(lambda: alerts.ticks >= seen + 2)  # evaluated again, after the new counts
    assert len(webhook.requests) == 1
    with app.app_context():
        [firing] = get_store().alert_firings()
    assert (firing["rule"], firing["count"], firing["status"]) == (
        "handler-error>2/86400s",
        3,
        "sent",
    )


def test_disconnect_causes_and_rejected_callbacks_are_counted(app_config, webhook, stop_alerts):
    app = alert_app(app_config, webhook.url("/hook"), "callback-error>2/1h,rejected-payload>0/1h")
    stop_alerts.append(app)
    bandwidth = Bandwidth(app.test_client())
    failed = disconnect_event(cause="callback-error")
    for payload in (failed, failed, disconnect_event(cause="callback-error")):
        assert bandwidth.post("disconnect", payload).status_code == 204  # one duplicate
    assert bandwidth.post("disconnect", {"eventType": "disconnect"}).status_code == 422
    alerts = app.extensions["alerts"]
    alerts.stop()  # no thread: this test evaluates by hand
    fired = alerts.tick()
    assert [rule.category for rule in fired] == ["rejected-payload"]  # 2 callback-errors: not > 2
    assert bandwidth.post("disconnect", disconnect_event(cause="callback-error")).status_code == 204
    assert [rule.category for rule in alerts.tick()] == ["callback-error"]
    texts = [post.payload["text"] for post in posts(webhook, 2)]
    assert "Dashboard: http://127.0.0.1:8000/dashboard/rejected" in texts[0]
    assert texts[1].startswith("3 callback-error in the last 1 h")
    assert "/dashboard?cause=callback-error&since=" in texts[1]


def both_databases():
    return pytest.mark.parametrize(
        "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
    )


@both_databases()
def test_two_apps_evaluating_at_once_send_one_alert(app_config, webhook, database, tmp_path):
    """Two apps (two workers, or two servers) share the counts and the firing through the
    store: each counted 2 failures, neither alone is over 3, together they are, and when
    both evaluate at the same moment, again and again, the webhook gets one post."""
    if database == "postgresql":
        with fresh_postgres_url() as url:
            _two_apps_send_one_alert({**app_config, "DATABASE_URL": url}, webhook, tmp_path)
    else:
        _two_apps_send_one_alert(app_config, webhook, tmp_path)


def _two_apps_send_one_alert(app_config, webhook, tmp_path):
    apps = [
        alert_app(
            {**app_config, "SPOOL_PATH": str(tmp_path / f"spool{n}.jsonl")},
            webhook.url("/hook"),
            "handler-error>3/1h",
        )
        for n in range(2)
    ]
    try:
        for app in apps:
            crash_answers(app, 2)
            app.extensions["alerts"].stop()  # evaluated by hand below, not by the threads
        now = time.time()  # one instant for both: the same window
        for _ in range(5):
            start = threading.Barrier(2)

            def evaluate(app, start=start):
                start.wait()
                return app.extensions["alerts"].tick(now=now)

            with ThreadPoolExecutor(2) as pool:
                list(pool.map(evaluate, apps))
        with apps[0].app_context():
            firings = get_store().alert_firings()
        assert [(f["rule"], f["count"]) for f in firings] == [("handler-error>3/3600s", 4)]
        assert len(posts(webhook)) == 1
    finally:
        for app in apps:
            app.extensions["alerts"].stop()
            get_store(app).dispose()


def test_the_next_window_alerts_again(app_config, webhook):
    app = alert_app(app_config, webhook.url("/hook"), "handler-error>0/1h")
    alerts = app.extensions["alerts"]
    crash_answers(app, 1)
    alerts.stop()
    alerts.flush()
    counted = 527_778 * 3600 - 10  # 10 s before an hour starts
    with app.app_context():
        get_store().add_alert_counts({("handler-error", counted): 1})
    assert alerts.tick(now=counted + 5) and not alerts.tick(now=counted + 9)
    assert alerts.tick(now=counted + 15)  # the next hour's window: within the rule's hour
    assert not alerts.tick(now=counted + 30)
    assert len(posts(webhook, 2)) == 2


@pytest.mark.parametrize("down", ["refused", "500"])
def test_a_webhook_that_is_down_is_logged_without_its_secret(app_config, webhook, caplog, down):
    if down == "refused":
        url = f"http://127.0.0.1:{closed_port()}{HOOK_PATH}"
    else:
        webhook.reply(HOOK_PATH, "<html>down</html>", status=500)
        url = webhook.url(HOOK_PATH)
    app = alert_app(app_config, url, "handler-error>0/1h")
    crash_answers(app, 1)
    alerts = app.extensions["alerts"]
    alerts.stop()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert alerts.tick()  # tried, failed, and nothing raised
    [line] = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert line.startswith(
        f"alert not delivered to the webhook at {url.split('/services')[0]} after 3 tries"
    )
    assert line.endswith("ConnectionError" if down == "refused" else "HTTP 500")
    ours = [r for r in caplog.records if r.name != "werkzeug"]  # not the test's receiver
    assert ours and all(
        "very-secret" not in r.getMessage() and "very-secret" not in (r.exc_text or "")
        for r in ours
    )
    if down == "500":
        assert len(webhook.requests) == 3
    with app.app_context():
        [firing] = get_store().alert_firings()
    assert firing["status"] == "failed"
    assert not alerts.tick()  # this window's alert was claimed: not sent twice


def test_the_dashboard_links():
    since = 1_700_000_000.0
    base = "https://cb.example.com/"
    assert (
        dashboard_link(base, "busy", since)
        == "https://cb.example.com/dashboard?cause=busy&since=2023-11-14T22%3A13%3A20Z"
    )
    assert dashboard_link(base, "invalid-reply", since).startswith(
        "https://cb.example.com/dashboard?category=invalid-reply&all=1&since="
    )
    assert (
        dashboard_link(base, "rejected-payload", since)
        == "https://cb.example.com/dashboard/rejected"
    )


def test_the_banner_names_the_metrics_route_and_the_rules_without_the_webhook_path(app_config):
    from app import banner

    app = alert_app(
        {**app_config, "METRICS_TOKEN": "a-long-enough-metrics-token"},
        f"https://hooks.example.com{HOOK_PATH}",
        "busy>2/1h,handler-error>0/10m",
    )
    text = banner(app)
    assert (
        "  metrics        http://127.0.0.1:8000/metrics  (Authorization: Bearer METRICS_TOKEN)"
        in text
    )
    assert (
        "  alerts         more than 2 busy in 1 h; more than 0 handler-error in 10 min -> "
        "webhook at https://hooks.example.com\n" in text
    )
    assert "very-secret" not in text and "a-long-enough" not in text


def test_purge_forgets_old_alert_counts_and_alerts(app):
    with app.app_context():
        store = get_store()
        old, new = int(time.time() - 40 * DAY), int(time.time())
        store.add_alert_counts({("busy", old): 3, ("busy", new - new % 10): 2})
        assert store.claim_alert("busy>0/3600s", old - old % 3600, 3)
        assert store.claim_alert("busy>0/3600s", new - new % 3600, 2)
        assert store.purge(30) == 2
        assert store.alert_count("busy", 0) == 2
        assert [f["count"] for f in store.alert_firings()] == [2]


def test_the_alerts_commands(app_config, webhook):
    app = alert_app(app_config, webhook.url(HOOK_PATH), "handler-error>0/1h")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["alerts", "test"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Delivered to the webhook at {webhook.base_url}.\n"
    [post] = posts(webhook)
    assert post.payload == {
        "text": "Test message from the voice callbacks app at http://127.0.0.1:8000: "
        "alerts will arrive here."
    }
    crash_answers(app, 1)
    app.extensions["alerts"].stop()
    app.extensions["alerts"].tick()
    listing = runner.invoke(args=["alerts", "list"]).output.splitlines()
    assert listing[:2] == [
        f"webhook at {webhook.base_url}",
        "rule handler-error>0/3600s: more than 0 handler-error in 1 h",
    ]
    assert listing[2].startswith("alert handler-error>0/3600s window ")
    assert listing[2].endswith(" UTC: 1 counted, sent")
    assert HOOK_PATH not in "\n".join(listing)


def test_the_alerts_commands_say_what_is_missing(runner):
    result = runner.invoke(args=["alerts", "list"])
    assert result.exit_code == 1
    assert "no alert rules: set ALERT_RULES and ALERT_WEBHOOK_URL" in result.output


def test_alerts_test_with_the_webhook_down(app_config):
    app = alert_app(app_config, f"http://127.0.0.1:{closed_port()}{HOOK_PATH}", "busy>0/1h")
    result = app.test_cli_runner().invoke(args=["alerts", "test"])
    assert result.exit_code == 1
    assert "did not take the message" in result.output and HOOK_PATH not in result.output


def test_counts_made_while_the_database_is_down_alert_once_it_is_back(
    app_config, webhook, tmp_path
):
    from store import StoreUnavailable

    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be\n")
    app = alert_app(
        {
            **app_config,
            "DATABASE_URL": f"sqlite:///{blocker / 'events.db'}",
            "STORE_BUSY_TIMEOUT": 0.2,
        },
        webhook.url("/hook"),
        "spooled>1/1h",
    )
    alerts = app.extensions["alerts"]
    bandwidth = Bandwidth(app.test_client())
    for _ in range(2):
        assert bandwidth.post("disconnect", disconnect_event()).status_code == 204  # spooled
    alerts.stop()
    with pytest.raises(StoreUnavailable):
        alerts.tick()
    blocker.unlink()
    blocker.mkdir()  # the database is back
    assert [rule.category for rule in alerts.tick()] == ["spooled"]
    assert posts(webhook)[0].payload["text"].startswith("2 spooled in the last 1 h")
