"""ALERT_RULES and the other monitoring settings: read, or refused at start-up in one line."""

from __future__ import annotations

import pytest

import config
from monitoring.rules import AlertRule, parse_rules

WEBHOOK = "https://hooks.example.com/services/T000/B000/secret-part"


def test_rules_are_read():
    rules = parse_rules(
        "handler-error>5/10m, callback_error > 3 / 5min,busy>0/hour,credential-failure>10/2 hours"
    )
    assert rules == [
        AlertRule("handler-error", 5, 600),
        AlertRule("callback-error", 3, 300),
        AlertRule("busy", 0, 3600),
        AlertRule("credential-failure", 10, 7200),
    ]
    assert rules[0].describe() == "more than 5 handler-error in 10 min"
    assert rules[2].key == "busy>0/3600s"
    assert parse_rules(None) == parse_rules("") == parse_rules(" , ") == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "handler-eror>5/10m",
            "ALERT_RULES: 'handler-eror>5/10m': unknown category 'handler-eror'",
        ),
        (
            "handler-error 5/10m",
            "is not CATEGORY>COUNT/PERIOD (e.g. handler-error>5/10m; separate rules with commas)",
        ),
        ("handler-error", "is not CATEGORY>COUNT/PERIOD"),
        ("handler-error>=5/10m", "rules count 'more than': use '>'"),
        ("handler-error<5/10m", "rules count 'more than': use '>'"),
        ("handler-error>five/10m", "the count must be a whole number >= 0, got 'five'"),
        ("handler-error>-1/10m", "the count must be a whole number >= 0, got '-1'"),
        ("handler-error>5/10", "the period needs a unit s, m, h or d (like 10m), got '10'"),
        ("handler-error>5/10ms", "the period needs a unit s, m, h or d (like 10m), got '10ms'"),
        ("handler-error>5/10 fortnights", "the period needs a unit"),
        ("handler-error>5/30s", "the period must be from 1 minute to 1 day"),
        ("handler-error>5/2d", "the period must be from 1 minute to 1 day"),
        ("busy>1/1h,busy>1/60m", "ALERT_RULES: 'busy>1/60m' repeats an earlier rule"),
        ("busy>1/1h;timeout>1/1h", "is not CATEGORY>COUNT/PERIOD"),
    ],
)
def test_a_bad_rule_stops_start_up_in_one_line(app_config, rules, message):
    from app import create_app

    app_config.update(ALERT_RULES=rules, ALERT_WEBHOOK_URL=WEBHOOK)
    with pytest.raises(config.ConfigError) as caught:
        create_app(app_config)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ALERT_RULES": "busy>1/1h"}, "ALERT_RULES needs ALERT_WEBHOOK_URL"),
        (
            {"ALERT_RULES": "busy>1/1h", "ALERT_WEBHOOK_URL": "hooks.example.com/secret"},
            "ALERT_WEBHOOK_URL must be an http(s) URL with a host",
        ),
        (
            {"ALERT_RULES": "busy>1/1h", "ALERT_WEBHOOK_URL": "ftp://hooks.example.com/secret"},
            "ALERT_WEBHOOK_URL must be an http(s) URL with a host",
        ),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
        ({"ALERT_CHECK_SECONDS": 0}, "ALERT_CHECK_SECONDS must be a number of seconds > 0"),
    ],
)
def test_other_monitoring_settings_are_checked(app_config, settings, message):
    from app import create_app

    app_config.update(settings)
    with pytest.raises(config.ConfigError) as caught:
        create_app(app_config)
    assert message in str(caught.value)
    assert "/secret" not in str(caught.value)  # a webhook's path is its secret


def test_the_settings_come_from_the_environment():
    found = config.from_environ(
        {"ALERT_RULES": "busy>1/1h", "ALERT_CHECK_SECONDS": "0.5", "METRICS_TOKEN": "t" * 20}
    )
    assert found == {
        "ALERT_RULES": "busy>1/1h",
        "ALERT_CHECK_SECONDS": 0.5,
        "METRICS_TOKEN": "t" * 20,
    }
