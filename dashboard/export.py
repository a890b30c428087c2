"""CSV export of disconnects, safe to open in a spreadsheet.

Every field of a disconnect can come from whoever reached the callback URL, so a cell that
a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) gets a leading apostrophe (OWASP "CSV injection").  Phone numbers in E.164
start with ``+`` and are therefore exported as ``'+12025550123``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = [
    "id",
    "receivedAtIso",
    "eventTime",
    "callId",
    "cause",
    "category",
    "from",
    "to",
    "direction",
    "tag",
    "errorId",
    "errorMessage",
    "sipResponseCode",
    "startTime",
    "answerTime",
    "endTime",
    "flow",
    "durationSeconds",
    "talkSeconds",
]


def neutralise(value: Any) -> str:
    """The cell text for ``value``; formula-like text gets a leading apostrophe."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """Rows shaped like ``filters.disconnect_json`` as CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([neutralise(row.get(column)) for column in COLUMNS])
    return out.getvalue()
