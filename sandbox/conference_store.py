"""Conferences and their members in the database, so that members run by different drivers
(workers, servers) share one conference.  Statements over ``sandbox_conferences`` and
``sandbox_conference_members`` (``sandbox.db``), through its connections.

Joining and leaving are one transaction each, with the conference row locked (PostgreSQL:
``FOR UPDATE``; SQLite serialises writers), so a call joining while the last member leaves
either joins in time or starts a new conference, never a completed one.  A unique index on
(account, name) of live conferences makes two first joiners in two processes share one.

A conference's events go out one at a time, in the order of what happened, although its
members' runners send them: each event gets a number in the transaction that makes it
happen (``state["next"]``), and its sender waits for its turn (``state["sent"]``, see
``turn``) before sending it and running its reply.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exc, func, insert, or_, select, update

from sandbox.db import SandboxDB
from sandbox.tables import conference_members, conferences

MAX_MEMBERS = 20


def new_conference_id() -> str:
    """``conf-`` + 8 hex + ``-`` + a UUID, like Bandwidth's conference ids."""
    return f"conf-{secrets.token_hex(4)}-{uuid.uuid4()}"


TURN_POLL_SECONDS = 0.01


@dataclass
class Joined:
    conference: dict[str, Any]
    created: bool = False  # this call created the conference
    rejoined: bool = False  # it was a member already (a driver resumed it)
    full: bool = False  # 20 members already: not joined
    turn: int = 0  # the number of its first event (conferenceCreated, else the join)


@dataclass
class Left:
    member: bool  # it was an active member (False: nothing happened)
    completed: bool  # it was the last one: the conference is completed
    conference: dict[str, Any] | None
    recording: dict[str, Any] | None  # the conference's recording, ended with it
    turn: int = 0  # the number of its exit event (conferenceCompleted: the next one)


def _take_turns(state: dict[str, Any], count: int) -> int:
    """Number the next ``count`` events of a conference; the first one's number."""
    first = int(state.get("next", 1))
    state["next"] = first + count
    return first


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _conference(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    item = dict(row._mapping)
    item["config"] = json.loads(item["config"])
    item["state"] = json.loads(item["state"])
    return item


def _member(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item.update(json.loads(item.pop("details")))
    return item


class ConferenceStore:
    def __init__(self, db: SandboxDB) -> None:
        self.db = db

    # --- joining and leaving ------------------------------------------------------------

    def join(
        self,
        account_id: str,
        name: str,
        call_id: str,
        details: dict[str, Any],
        config: Callable[[], dict[str, Any]],
    ) -> Joined:
        """Put ``call_id`` in the live conference ``name``, creating it (with ``config()``)
        when there is none."""
        try:
            return self._join(account_id, name, call_id, details, config)
        except exc.IntegrityError:  # another process created it first: join that one
            return self._join(account_id, name, call_id, details, config)

    def _join(
        self,
        account_id: str,
        name: str,
        call_id: str,
        details: dict[str, Any],
        config: Callable[[], dict[str, Any]],
    ) -> Joined:
        now = time.time()
        with self.db.writing() as conn:
            row = conn.execute(
                select(conferences)
                .where(
                    conferences.c.account_id == account_id,
                    conferences.c.name == name,
                    conferences.c.active == 1,
                )
                .with_for_update()
            ).first()
            joined = Joined(_conference(row) or {})
            if row is None:
                joined.created = True
                joined.conference = {
                    "conference_id": new_conference_id(),
                    "account_id": account_id,
                    "name": name,
                    "created_at": now,
                    "completed_at": None,
                    "active": 1,
                    "config": config(),
                    "state": {},
                }
                conn.execute(
                    insert(conferences).values(
                        {
                            **joined.conference,
                            "config": _dumps(joined.conference["config"]),
                            "state": "{}",
                        }
                    )
                )
            conference_id = joined.conference["conference_id"]
            members = conference_members.c
            existing = conn.execute(
                select(members.active).where(
                    members.conference_id == conference_id, members.call_id == call_id
                )
            ).first()
            if existing is not None and existing[0]:
                joined.rejoined = True
                return joined
            count = conn.execute(
                select(func.count()).where(
                    members.conference_id == conference_id, members.active == 1
                )
            ).scalar()
            if int(count or 0) >= MAX_MEMBERS:
                joined.full = True
                return joined
            state = joined.conference["state"]
            joined.turn = _take_turns(state, 2 if joined.created else 1)
            conn.execute(
                update(conferences)
                .where(conferences.c.conference_id == conference_id)
                .values(state=_dumps(state))
            )
            values = {"joined_at": now, "left_at": None, "active": 1, "details": _dumps(details)}
            if existing is None:
                conn.execute(
                    insert(conference_members).values(
                        conference_id=conference_id, call_id=call_id, **values
                    )
                )
            else:  # it left earlier and comes back
                conn.execute(
                    update(conference_members)
                    .where(members.conference_id == conference_id, members.call_id == call_id)
                    .values(values)
                )
            return joined

    def leave(self, conference_id: str, call_id: str) -> Left:
        """Take ``call_id`` out; the last one out completes the conference (and ends its
        recording, returned)."""
        now = time.time()
        members = conference_members.c
        with self.db.writing() as conn:
            left = conn.execute(
                update(conference_members)
                .where(
                    members.conference_id == conference_id,
                    members.call_id == call_id,
                    members.active == 1,
                )
                .values(active=0, left_at=now)
            ).rowcount
            row = _conference(
                conn.execute(
                    select(conferences)
                    .where(conferences.c.conference_id == conference_id)
                    .with_for_update()
                ).first()
            )
            if not left or row is None or not row["active"]:
                return Left(bool(left), False, row, None)
            remaining = conn.execute(
                select(func.count()).where(
                    members.conference_id == conference_id, members.active == 1
                )
            ).scalar()
            state = row["state"]
            last = int(remaining or 0) == 0
            turn = _take_turns(state, 2 if last else 1)
            values: dict[str, Any] = {}
            recording = None
            if last:
                recording = state.pop("recording", None)
                values = {"active": 0, "completed_at": now}
                row.update(values)
            conn.execute(
                update(conferences)
                .where(conferences.c.conference_id == conference_id)
                .values(state=_dumps(state), **values)
            )
            return Left(True, last, row, recording, turn)

    def take_turn(self, conference_id: str) -> int | None:
        """Number one more event of a live conference (None when it has ended)."""
        _, turn = self.change_state(conference_id, lambda state: _take_turns(state, 1))
        return turn  # type: ignore[no-any-return]

    def wait_turn(self, conference_id: str, turn: int, timeout: float) -> bool:
        """Wait until every event numbered before ``turn`` was sent (False: gave up after
        ``timeout`` real seconds, as when a sender died)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.db.reading() as conn:
                raw = conn.execute(
                    select(conferences.c.state).where(conferences.c.conference_id == conference_id)
                ).scalar()
            sent = int(json.loads(raw or "{}").get("sent", 0))
            if sent >= turn - 1:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(TURN_POLL_SECONDS)

    def done_turn(self, conference_id: str, turn: int) -> None:
        """Event ``turn`` was sent (or skipped): the next one may go (also after the
        conference ended)."""
        with self.db.writing() as conn:
            row = conn.execute(
                select(conferences.c.state)
                .where(conferences.c.conference_id == conference_id)
                .with_for_update()
            ).first()
            if row is None:
                return
            state = json.loads(row[0])
            if int(state.get("sent", 0)) >= turn:
                return
            state["sent"] = turn
            conn.execute(
                update(conferences)
                .where(conferences.c.conference_id == conference_id)
                .values(state=_dumps(state))
            )

    def change_state(
        self, conference_id: str, change: Callable[[dict[str, Any]], Any]
    ) -> tuple[bool, Any]:
        """Run ``change(state)`` on a live conference's saved state and write it back:
        (True, what it returned), or (False, None) when the conference has ended."""
        with self.db.writing() as conn:
            row = _conference(
                conn.execute(
                    select(conferences)
                    .where(conferences.c.conference_id == conference_id)
                    .with_for_update()
                ).first()
            )
            if row is None or not row["active"]:
                return False, None
            result = change(row["state"])
            conn.execute(
                update(conferences)
                .where(conferences.c.conference_id == conference_id)
                .values(state=_dumps(row["state"]))
            )
            return True, result

    # --- reading ------------------------------------------------------------------------

    def get(self, conference_id: str) -> dict[str, Any] | None:
        with self.db.reading() as conn:
            return _conference(
                conn.execute(
                    select(conferences).where(conferences.c.conference_id == conference_id)
                ).first()
            )

    def members(self, conference_id: str, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Its members in the order they joined."""
        query = select(conference_members).where(
            conference_members.c.conference_id == conference_id
        )
        if active_only:
            query = query.where(conference_members.c.active == 1)
        query = query.order_by(conference_members.c.joined_at, conference_members.c.call_id)
        with self.db.reading() as conn:
            return [_member(row) for row in conn.execute(query)]

    def member(self, conference_id: str, call_id: str) -> dict[str, Any] | None:
        query = select(conference_members).where(
            conference_members.c.conference_id == conference_id,
            conference_members.c.call_id == call_id,
        )
        with self.db.reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else _member(row)

    def update_member(self, conference_id: str, call_id: str, changes: dict[str, Any]) -> bool:
        """Change an active member's mute/hold/callIdsToCoach; False when it is not one."""
        members = conference_members.c
        where = (
            members.conference_id == conference_id,
            members.call_id == call_id,
            members.active == 1,
        )
        with self.db.writing() as conn:
            row = conn.execute(select(members.details).where(*where)).first()
            if row is None:
                return False
            details = {**json.loads(row[0]), **changes}
            conn.execute(update(conference_members).where(*where).values(details=_dumps(details)))
            return True

    def page(
        self,
        account_id: str,
        after: tuple[float, str] | None,
        *,
        name: str | None,
        min_created: float | None,
        created_before: float | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The account's conferences after ``(created_at, conference_id)``, oldest first,
        created from ``min_created`` (inclusive) to ``created_before`` (exclusive)."""
        c = conferences.c
        query = select(conferences).where(c.account_id == account_id)
        if after is not None:
            query = query.where(
                or_(
                    c.created_at > after[0],
                    and_(c.created_at == after[0], c.conference_id > after[1]),
                )
            )
        if name is not None:
            query = query.where(c.name == name)
        if min_created is not None:
            query = query.where(c.created_at >= min_created)
        if created_before is not None:
            query = query.where(c.created_at < created_before)
        query = query.order_by(c.created_at, c.conference_id).limit(limit)
        with self.db.reading() as conn:
            return [_conference(row) for row in conn.execute(query)]  # type: ignore[misc]
