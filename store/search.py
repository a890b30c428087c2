"""Text search over disconnects: what is indexed, how a query matches, on each backend.

**Matching rule** (the same on both backends): a disconnect matches when the query, taken
whole (spaces, quotes and punctuation included, nothing is an operator), is a
case-insensitive substring of its search text.  Queries need at least ``MIN_CHARS``
characters: the index is made of three-character pieces.

**The search text** of a disconnect (``search_text``, kept in ``disconnects.search_text``
and written in the same transaction as the disconnect):

- its error message;
- the values (not the keys) of its payload, nested ones included, except the fields that
  are the same on every callback or filtered elsewhere (``SKIPPED_FIELDS``: account,
  application, call URL, event type, cause, direction and the times) and signed tag state (an opaque token
  nobody types; the list shows what it says, and the tag filter finds it exactly);
- the last line of each handler error of the call's callbacks up to the disconnect (the
  exception and its message, e.g. ``ZeroDivisionError: division by zero``).

Passwords are masked before they are indexed, as every page masks them (``masking``): the
values of payload members named ``*password``, and the password of a URL or SIP URI in any
text.  A search for one finds nothing, so search cannot confirm a password a page hides.

**The index**: SQLite, an FTS5 external-content table ``disconnect_search`` over
``disconnects.search_text`` with the trigram tokenizer (case-insensitive), kept in sync by
triggers on insert, update and delete, so every way a disconnect is written (the group
commit, the spool replay, a bulk load) or purged keeps it right; the query is one quoted
FTS5 phrase (its ``"`` doubled), which for trigrams means "this substring".  PostgreSQL, a
``pg_trgm`` GIN index on the same column, queried with ``ILIKE '%query%'`` (``%``, ``_``
and ``\\`` escaped).  When ``pg_trgm`` cannot be created (no privilege), search still
works, without the index (a scan), and the migration logs a warning saying so.

**Numbers on SQLite** (version 8): FTS5 reads the whole list of every trigram of the query,
and digit trigrams are in a few percent of all disconnects (numbers, ids), the ``+1202``
of a callee's number in nearly all: a number's search time grew with the store.
``disconnect_digits`` keys every run of ``DIGITS`` digits of the search text (``gram``)
to its disconnect, kept by triggers as the FTS index is.  A query with such a run and
nothing that case folding could change (ASCII, no letter) is answered from the rarest of
its runs, each candidate checked with ``instr`` on its search text: the same rows, as
FTS5's matching of such a query is the plain substring test.  When even its rarest run is
common (``PROBE_LIMIT`` disconnects or more), FTS5 answers, as before.  PostgreSQL keeps
its GIN index alone: a callee's seven digits stay as fast at a million events; a whole
number, with the country and area code every callee shares, reads more of it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, bindparam, column, func, literal_column, select, table, text
from sqlalchemy.exc import DBAPIError

from masking import REDACTED, mask_passwords, password_attribute

from .rows import clean_text

log = logging.getLogger(__name__)

MIN_CHARS = 3
MAX_CHARS = 4000  # of a disconnect's search text (payloads may be up to 64 KiB)
HANDLER_ERROR_CHARS = 300
SKIPPED_FIELDS = frozenset(
    {
        "accountId",
        "applicationId",
        "callUrl",
        "eventType",
        # Filtered and shown in columns, and the same on most calls: a search for them
        # would read most of the index to find the few of the other filters.
        "cause",
        "direction",
        "eventTime",
        "enqueuedTime",
        "startTime",
        "answerTime",
        "endTime",
    }
)
# The framework's signed tag state (``st2.`` / ``st2c.`` then base64 and a signature).
_SIGNED_TAG = re.compile(r"st2c?\.[A-Za-z0-9_\-.]+")

# The SQLite index, as a table to join: its rowid is the disconnect's event_id.
fts = table("disconnect_search", column("rowid"))
# SQLite: each run of DIGITS digits (gram) of a disconnect's search text (event_id).
digits = table("disconnect_digits", column("gram"), column("event_id"))
DIGITS = 7
_DIGIT_RUN = re.compile(f"[0-9]{{{DIGITS},}}")
_FOLDS = re.compile(r"[^\x00-\x7f]|[A-Za-z]")
# Runs of a query compared, and entries of each counted, to choose the rarest.
PROBED_RUNS = 8
PROBE_LIMIT = 200


def search_text(
    payload: Any, error_message: str | None = None, handler_errors: list[str] | tuple = ()
) -> str:
    """The text a disconnect is found by (see the module's docstring)."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = {"": payload}
    parts: list[str] = [mask_passwords(error_message)] if error_message else []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key not in SKIPPED_FIELDS:
                _values(value, parts, key)
    for detail in handler_errors:
        last = next((line.strip() for line in reversed(detail.splitlines()) if line.strip()), "")
        if last:
            parts.append(mask_passwords(last[:HANDLER_ERROR_CHARS]))
    return clean_text("\n".join(dict.fromkeys(p for p in parts if p)), MAX_CHARS) or ""


def _leaves(value: Any, key: str = "", hidden: bool = False) -> Iterator[tuple[Any, bool]]:
    """Each leaf of a payload value, and whether it lies under a member named ``*password``
    (a password, or a PIN, never indexed)."""
    hidden = hidden or password_attribute(key)
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, str(name), hidden)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key, hidden)
    else:
        yield value, hidden


def _values(value: Any, parts: list[str], key: str = "") -> None:
    for leaf, hidden in _leaves(value, key):
        if hidden:
            continue
        if isinstance(leaf, str):
            kept = mask_passwords(_SIGNED_TAG.sub(" ", leaf)).strip()
            if kept:
                parts.append(kept)
        elif isinstance(leaf, int | float) and not isinstance(leaf, bool):
            parts.append(str(leaf))


def fts_phrase(query: str) -> str:
    """An FTS5 query that means "this substring": one quoted phrase, quotes doubled."""
    return '"' + query.replace('"', '""') + '"'


def like_pattern(query: str) -> str:
    """An ILIKE pattern that means "this substring" (escape character ``\\``)."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sqlite_match(query: str) -> Any:
    """``disconnect_search MATCH <phrase>`` (join ``fts`` on the disconnect's event_id)."""
    return literal_column("disconnect_search").match(fts_phrase(query))


def postgres_match(search_column: Any, query: str) -> Any:
    return search_column.ilike(like_pattern(query), escape="\\")


def query_digit_runs(query: str) -> list[str]:
    """The ``DIGITS``-digit runs of a query that ``disconnect_digits`` can answer: none when
    the query has a letter or a non-ASCII character (FTS5 folds case; ``instr`` does not)."""
    if _FOLDS.search(query):
        return []
    runs = dict.fromkeys(
        found[i : i + DIGITS]
        for found in _DIGIT_RUN.findall(query)
        for i in range(len(found) - DIGITS + 1)
    )
    grams = list(runs)
    if len(grams) > PROBED_RUNS:  # spread over the query: its start and end may be common
        step = (len(grams) - 1) / (PROBED_RUNS - 1)
        grams = [grams[round(i * step)] for i in range(PROBED_RUNS)]
    return grams


def rarest_digit_run(conn: Connection, grams: list[str]) -> tuple[str, int]:
    """The run with the fewest disconnects (counted up to ``PROBE_LIMIT``), and its count."""
    counts = select(
        *(
            select(func.count())
            .select_from(
                select(digits.c.event_id)
                .where(digits.c.gram == bindparam(f"g{i}", gram))
                .limit(PROBE_LIMIT)
                .subquery()
            )
            .scalar_subquery()
            for i, gram in enumerate(grams)
        )
    )
    found = conn.execute(counts).one()
    return min(zip(grams, (int(n) for n in found), strict=True), key=lambda pair: pair[1])


def _digit_runs(value: str) -> tuple[str, str]:
    """The ``DIGITS``-digit runs of the SQL text expression ``value``: (the run, the FROM
    and WHERE that list them, one row each; to be preceded by a select list).  A trigger
    may not use WITH RECURSIVE: the positions are a table's rows, 1 to ``MAX_CHARS``."""
    run = f"substr({value}, digit_positions.p, {DIGITS})"
    rows = (
        f"digit_positions WHERE digit_positions.p <= length({value}) - {DIGITS - 1}"
        f" AND {run} GLOB '{'[0-9]' * DIGITS}'"
    )
    return run, rows


_NEW_RUN, _NEW_RUNS = _digit_runs("new.search_text")
_OLD_RUN, _OLD_RUNS = _digit_runs("old.search_text")
_ROW_RUN, _ROW_RUNS = _digit_runs("d.search_text")
# Built from the constants above only (S608: no value of a request is in them).
SQLITE_DIGITS_DDL = (
    """CREATE TABLE IF NOT EXISTS disconnect_digits (
        gram TEXT NOT NULL, event_id INTEGER NOT NULL, PRIMARY KEY (gram, event_id)
    ) WITHOUT ROWID""",
    f"""CREATE TRIGGER IF NOT EXISTS disconnect_digits_insert AFTER INSERT ON disconnects
    WHEN new.search_text IS NOT NULL BEGIN
        INSERT OR IGNORE INTO disconnect_digits (gram, event_id)
        SELECT {_NEW_RUN}, new.event_id FROM {_NEW_RUNS};
    END""",  # noqa: S608
    f"""CREATE TRIGGER IF NOT EXISTS disconnect_digits_delete AFTER DELETE ON disconnects
    WHEN old.search_text IS NOT NULL BEGIN
        DELETE FROM disconnect_digits WHERE event_id = old.event_id
        AND gram IN (SELECT {_OLD_RUN} FROM {_OLD_RUNS});
    END""",  # noqa: S608
    f"""CREATE TRIGGER IF NOT EXISTS disconnect_digits_update
    AFTER UPDATE OF search_text ON disconnects BEGIN
        DELETE FROM disconnect_digits WHERE event_id = old.event_id
        AND gram IN (SELECT {_OLD_RUN} FROM {_OLD_RUNS});
        INSERT OR IGNORE INTO disconnect_digits (gram, event_id)
        SELECT {_NEW_RUN}, new.event_id FROM {_NEW_RUNS} AND new.search_text IS NOT NULL;
    END""",  # noqa: S608
)
# The runs of the disconnects stored before version 8 (or by a bulk load without triggers).
SQLITE_DIGITS_BACKFILL = (
    f"INSERT OR IGNORE INTO disconnect_digits (gram, event_id) SELECT {_ROW_RUN}, d.event_id"  # noqa: S608
    f" FROM disconnects AS d CROSS JOIN {_ROW_RUNS} AND d.search_text IS NOT NULL"
)


def create_digits_index(conn: Connection) -> None:
    """SQLite: ``disconnect_digits``, its triggers, and the runs of the stored disconnects."""
    if conn.dialect.name != "sqlite":
        return
    conn.execute(text("CREATE TABLE IF NOT EXISTS digit_positions (p INTEGER PRIMARY KEY)"))
    conn.execute(
        text("INSERT OR IGNORE INTO digit_positions (p) VALUES (:p)"),
        [{"p": p} for p in range(1, MAX_CHARS + 1)],
    )
    for statement in SQLITE_DIGITS_DDL:
        conn.execute(text(statement))
    conn.execute(text(SQLITE_DIGITS_BACKFILL))


SQLITE_DDL = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS disconnect_search USING fts5(
        search_text, content='disconnects', content_rowid='event_id', tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS disconnect_search_insert AFTER INSERT ON disconnects
    WHEN new.search_text IS NOT NULL BEGIN
        INSERT INTO disconnect_search(rowid, search_text) VALUES (new.event_id, new.search_text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS disconnect_search_delete AFTER DELETE ON disconnects
    WHEN old.search_text IS NOT NULL BEGIN
        INSERT INTO disconnect_search(disconnect_search, rowid, search_text)
        VALUES ('delete', old.event_id, old.search_text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS disconnect_search_update
    AFTER UPDATE OF search_text ON disconnects BEGIN
        INSERT INTO disconnect_search(disconnect_search, rowid, search_text)
        SELECT 'delete', old.event_id, old.search_text WHERE old.search_text IS NOT NULL;
        INSERT INTO disconnect_search(rowid, search_text)
        SELECT new.event_id, new.search_text WHERE new.search_text IS NOT NULL;
    END""",
)


def create_search_index(conn: Connection) -> None:
    """The index of the backend, then the search text of the disconnects stored before it."""
    if conn.dialect.name == "sqlite":
        for statement in SQLITE_DDL:
            conn.execute(text(statement))
    else:
        _postgres_index(conn)
    _backfill(conn)


def ensure_index(conn: Connection) -> bool:
    """Create the PostgreSQL index if it is missing (``pg_trgm`` could not be created when
    the store was migrated); whether search is indexed now."""
    if conn.dialect.name == "sqlite":
        return True
    _postgres_index(conn)
    return bool(
        conn.execute(text("SELECT to_regclass('ix_disconnects_search') IS NOT NULL")).scalar()
    )


def _postgres_index(conn: Connection) -> None:
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as exc:
        log.warning(
            "text search runs without an index: cannot create the pg_trgm extension (%s); "
            "ask the database owner to run CREATE EXTENSION pg_trgm, then "
            "flask --app app store migrate",
            str(exc.orig).strip().splitlines()[0] if exc.orig else exc,
        )
        return
    # The extension may live in another schema than ours: name its operator class fully.
    schema = conn.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        )
    ).scalar_one()
    quoted = '"' + str(schema).replace('"', '""') + '"'
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ix_disconnects_search ON disconnects "
            f"USING gin (search_text {quoted}.gin_trgm_ops)"
        )
    )


BACKFILL_BATCH = 5000


def _backfill(conn: Connection) -> None:
    """Search text for disconnects stored before version 5 (handler errors left out)."""
    after = 0
    while True:
        rows = conn.execute(
            text(
                "SELECT d.event_id, e.payload, e.error_message FROM disconnects d"
                " JOIN events e ON e.id = d.event_id"
                " WHERE d.search_text IS NULL AND d.event_id > :after"
                " ORDER BY d.event_id LIMIT :batch"
            ),
            {"after": after, "batch": BACKFILL_BATCH},
        ).all()
        if not rows:
            return
        conn.execute(
            text("UPDATE disconnects SET search_text = :text WHERE event_id = :id"),
            [{"id": row[0], "text": search_text(row[1], row[2])} for row in rows],
        )
        after = int(rows[-1][0])


def remask(conn: Connection) -> int:
    """Mask the passwords in search texts indexed before they were masked (schemas 10 and
    11): a text whose disconnect's payload names a password, or that holds an ``@`` or a
    ``%`` (a URL's or URI's ``@``, written or percent-encoded once or more), in batches as
    :func:`_backfill` reads.  The triggers (SQLite) and the GIN index (PostgreSQL) follow
    the update.  The number of texts changed."""
    changed, after = 0, 0
    while True:
        rows = conn.execute(
            text(
                "SELECT d.event_id, d.search_text, e.payload FROM disconnects d"
                " JOIN events e ON e.id = d.event_id WHERE d.event_id > :after"
                " AND d.search_text IS NOT NULL AND (lower(e.payload) LIKE '%password%'"
                " OR d.search_text LIKE '%@%' OR d.search_text LIKE '%\\%%' ESCAPE '\\')"
                " ORDER BY d.event_id LIMIT :batch"
            ),
            {"after": after, "batch": BACKFILL_BATCH},
        ).all()
        if not rows:
            return changed
        updates = []
        for event_id, old, payload in rows:
            secrets: set[str] = set()
            try:
                _password_values(json.loads(payload), secrets)
            except (TypeError, ValueError):
                pass
            lines = [REDACTED if line in secrets else line for line in old.split("\n")]
            new = mask_passwords("\n".join(lines))
            if new != old:
                updates.append({"new": new, "id": event_id})
        if updates:
            conn.execute(
                text("UPDATE disconnects SET search_text = :new WHERE event_id = :id"), updates
            )
        changed += len(updates)
        after = int(rows[-1][0])


def _password_values(value: Any, found: set[str]) -> None:
    """The values of members named ``*password`` in a payload, as the search text has them."""
    for leaf, hidden in _leaves(value):
        if hidden and isinstance(leaf, str | int | float):
            found.add(_SIGNED_TAG.sub(" ", str(leaf)).strip())
