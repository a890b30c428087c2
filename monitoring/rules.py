"""ALERT_RULES: "more than N failures of a category in M minutes", written as a short string.

    ALERT_RULES="handler-error>5/10m, callback-error>3/5m, credential-failure>0/1h"

Each rule is ``CATEGORY>COUNT/PERIOD``: the rule fires when more than COUNT callbacks of
that category (or disconnects with that cause) arrived within the last PERIOD.  PERIOD is a
number and a unit (``30s``, ``10m``/``10min``, ``2h``, ``1d``; the number may be left out:
``/hour``), from one minute to one day.  Underscores may stand for hyphens
(``handler_error``).  A rule that cannot work raises :class:`RuleError` with one line naming
the rule, which stops start-up (``config.check``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config import TIME_UNITS
from monitoring.categories import ALERT_CATEGORIES, CALLBACK_FAILURES, CAUSES

MIN_PERIOD = 60
MAX_PERIOD = 86400
_RULE = re.compile(r"^([a-z][a-z0-9_-]*)\s*(>=|=>|<=|<|=|>)\s*([^/\s]*)\s*/\s*(\d*)\s*([a-z]*)$")


class RuleError(ValueError):
    """An alert rule that cannot be used; the message names it."""


@dataclass(frozen=True)
class AlertRule:
    category: str
    threshold: int  # fires when the count is greater than this
    period: int  # seconds

    @property
    def key(self) -> str:
        """The rule's identity in the store (one alert per key and window)."""
        return f"{self.category}>{self.threshold}/{self.period}s"

    def describe(self) -> str:
        """``more than 5 handler-error in 10 min``."""
        return f"more than {self.threshold} {self.category} in {describe_period(self.period)}"


def describe_period(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            count = seconds // size
            if unit == "day":
                return "1 day" if count == 1 else f"{count} days"
            return f"{count} {unit}"
    return f"{seconds} s"


def parse_rules(value: object, name: str = "ALERT_RULES") -> list[AlertRule]:
    """The rules of a setting (None or empty: no rules).  Raises RuleError naming the rule."""
    if value is None:
        return []
    rules: list[AlertRule] = []
    for part in str(value).split(","):
        text = part.strip()
        if not text:
            continue
        rule = parse_rule(text, name)
        rules.append(rule)
        if len({r.key for r in rules}) < len(rules):
            raise RuleError(f"{name}: {text!r} repeats an earlier rule")
    return rules


def parse_rule(text: str, name: str = "ALERT_RULES") -> AlertRule:
    example = "e.g. handler-error>5/10m"
    match = _RULE.match(text.lower())
    if match is None:
        raise RuleError(
            f"{name}: {text!r} is not CATEGORY>COUNT/PERIOD ({example}; separate rules with commas)"
        )
    raw_category, operator, raw_count, raw_multiple, raw_unit = match.groups()
    category = raw_category.replace("_", "-")
    if category not in ALERT_CATEGORIES:
        raise RuleError(
            f"{name}: {text!r}: unknown category {raw_category!r}; use one of "
            f"{', '.join(CALLBACK_FAILURES)} or a disconnect cause ({', '.join(CAUSES)})"
        )
    if operator != ">":
        raise RuleError(f"{name}: {text!r}: rules count 'more than': use '>' ({example})")
    if not raw_count.isdigit():
        raise RuleError(
            f"{name}: {text!r}: the count must be a whole number >= 0, got {raw_count!r}"
        )
    if raw_unit not in TIME_UNITS and len(raw_unit) > 2 and raw_unit.endswith("s"):
        raw_unit = raw_unit[:-1]  # minutes, hours, days (not "ms")
    unit = TIME_UNITS.get(raw_unit)
    if unit is None:
        raise RuleError(
            f"{name}: {text!r}: the period needs a unit s, m, h or d (like 10m), "
            f"got {raw_multiple + raw_unit!r}"
        )
    period = int(raw_multiple or 1) * unit
    if not MIN_PERIOD <= period <= MAX_PERIOD:
        raise RuleError(f"{name}: {text!r}: the period must be from 1 minute to 1 day")
    return AlertRule(category, int(raw_count), period)
