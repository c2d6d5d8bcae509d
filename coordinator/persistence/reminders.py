"""Meetings, the outbox and the in-app inbox in SQL.

The case side (``SqlMeetingRepository``, ``SqlOutboxRepository``) writes inside the unit of
work's transaction, after the version-checked case UPDATE, so a case change and the
messages it causes commit together or not at all.

The dispatcher side (``SqlOutboxStore``) claims due rows in short transactions of its own:
on PostgreSQL ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING``;
on SQLite a conditional ``UPDATE … WHERE id = :id AND <still due>`` per candidate whose
``rowcount`` tells whether this worker won it. A claim is a lease: rows whose lease ran out
(the worker died) are due again. Marking sent (``mark_sent``: one row, its own short
transaction, right after the send) is guarded by ``claimed_by`` and inserts one
``deliveries`` row (primary key ``outbox_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from coordinator.cases.meetings import Meeting
from coordinator.errors import MeetingNotFound, ReminderNotFound
from coordinator.persistence.tables import deliveries, inbox_messages, meetings, outbox
from coordinator.ports import Clock
from coordinator.scheduling.outbox import (
    CANCELLED,
    CLAIMED,
    DEAD,
    PENDING,
    RULE,
    SENT,
    InboxItem,
    OutboxRow,
    OutgoingMessage,
)

o = outbox.c


# -- meetings -------------------------------------------------------------------------------
def _meeting(r: Any) -> Meeting:
    return Meeting(r["id"], r["case_id"], r["kind"], r["starts_at"], r["ends_at"],
                   tuple(r["participants"]), r["status"], r["sequence"],
                   tuple(r["attendees"]) if r["attendees"] is not None else None,
                   r["created_at"], r["created_by"], r["updated_at"])


def _meeting_row(m: Meeting) -> dict[str, Any]:
    return {"id": m.id, "case_id": m.case_id, "kind": m.kind, "starts_at": m.starts_at,
            "ends_at": m.ends_at, "participants": list(m.participants), "status": m.status,
            "sequence": m.sequence,
            "attendees": list(m.attendees) if m.attendees is not None else None,
            "created_at": m.created_at, "created_by": m.created_by, "updated_at": m.updated_at}


class SqlMeetingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: dict[UUID, Meeting] = {}
        self.stored: set[UUID] = set()

    def add(self, meeting: Meeting) -> None:
        self.pending[meeting.id] = meeting

    def get(self, meeting_id: UUID) -> Meeting:
        if meeting_id in self.pending:
            return self.pending[meeting_id]
        row = self.session.connection().execute(
            select(meetings).where(meetings.c.id == meeting_id)).mappings().first()
        if row is None:
            raise MeetingNotFound(meeting_id)
        self.stored.add(meeting_id)
        return _meeting(row)

    def for_case(self, case_id: UUID) -> Sequence[Meeting]:
        rows = self.session.connection().execute(
            select(meetings).where(meetings.c.case_id == case_id)).mappings()
        found = {r["id"]: _meeting(r) for r in rows}
        self.stored.update(found)
        found.update({k: m for k, m in self.pending.items() if m.case_id == case_id})
        return sorted(found.values(), key=lambda m: (m.starts_at, str(m.id)))

    def flush(self) -> None:
        if not self.pending:
            return
        conn = self.session.connection()
        for m in self.pending.values():
            if m.id in self.stored:
                conn.execute(update(meetings).where(meetings.c.id == m.id)
                             .values(_meeting_row(m)))
            else:
                conn.execute(insert(meetings).values(_meeting_row(m)))
        self.pending.clear()


# -- outbox, case side ----------------------------------------------------------------------
def outbox_row(r: Any) -> OutboxRow:
    return OutboxRow(r["id"], r["case_id"], r["pilot"], r["source"], r["key"], r["kind"],
                     r["channel"], r["recipient"], r["due_at"], r["meeting_id"],
                     r["payload"], r["status"], r["attempts"], r["last_error"],
                     r["created_at"], r["sent_at"])


def _insert_values(r: OutboxRow) -> dict[str, Any]:
    return {"id": r.id, "case_id": r.case_id, "pilot": r.pilot, "meeting_id": r.meeting_id,
            "source": r.source, "key": r.key, "kind": r.kind, "channel": r.channel,
            "recipient": r.recipient, "due_at": r.due_at, "status": PENDING, "attempts": 0,
            "payload": dict(r.payload), "created_at": r.created_at or r.due_at}


class SqlOutboxRepository:
    """Changes are queued and run in order by ``flush`` inside the commit."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ops: list[Callable[[Connection], None]] = []

    def add(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            values = [_insert_values(r) for r in rows]

            def run(conn: Connection) -> None:
                conn.execute(insert(outbox), values)
            self.ops.append(run)

    def replace_planned(self, case_id: UUID, rows: Sequence[OutboxRow]) -> None:
        self.ops.append(lambda conn: self._replace(conn, case_id, rows))

    def cancel_meeting(self, meeting_id: UUID) -> None:
        self.ops.append(lambda conn: self._cancel(conn, o.meeting_id == meeting_id))

    def cancel_case(self, case_id: UUID) -> None:
        self.ops.append(lambda conn: self._cancel(conn, o.case_id == case_id))

    def cancel_channel(self, case_id: UUID, channel: str) -> None:
        self.ops.append(lambda conn: self._cancel(conn, and_(o.case_id == case_id,
                                                             o.channel == channel)))

    def for_case(self, case_id: UUID) -> Sequence[OutboxRow]:
        rows = self.session.connection().execute(
            select(outbox).where(o.case_id == case_id).order_by(o.due_at, o.key)).mappings()
        return [outbox_row(r) for r in rows]

    @staticmethod
    def _cancel(conn: Connection, which: ColumnElement[bool]) -> None:
        conn.execute(update(outbox).where(which, o.status == PENDING)
                     .values(status=CANCELLED))

    @staticmethod
    def _replace(conn: Connection, case_id: UUID, rows: Sequence[OutboxRow]) -> None:
        existing = conn.execute(
            select(o.id, o.key, o.recipient, o.channel, o.status)
            .where(o.case_id == case_id, o.source == RULE, o.status != CANCELLED)).all()
        wanted = {(r.key, r.recipient, r.channel): r for r in rows}
        stale = [e.id for e in existing
                 if e.status == PENDING and (e.key, e.recipient, e.channel) not in wanted]
        if stale:
            conn.execute(update(outbox).where(o.id.in_(stale), o.status == PENDING)
                         .values(status=CANCELLED))
        present = {(e.key, e.recipient, e.channel) for e in existing}
        new = [_insert_values(r) for k, r in wanted.items() if k not in present]
        if new:
            conn.execute(insert(outbox), new)

    def flush(self) -> None:
        if not self.ops:
            return
        conn = self.session.connection()
        for op in self.ops:
            op(conn)
        self.ops.clear()


# -- outbox, dispatcher side ----------------------------------------------------------------
def _due(now: datetime) -> ColumnElement[bool]:
    return or_(and_(o.status == PENDING, o.due_at <= now),
               and_(o.status == CLAIMED, o.lease_until < now))


class SqlOutboxStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def claim(self, worker: str, now: datetime, limit: int,
              lease: timedelta) -> Sequence[OutboxRow]:
        claimed = {"status": CLAIMED, "claimed_by": worker, "lease_until": now + lease}
        with self.engine.begin() as conn:
            if self.postgres:
                ids = select(o.id).where(_due(now)).order_by(o.due_at).limit(limit)\
                    .with_for_update(skip_locked=True).scalar_subquery()
                rows = conn.execute(update(outbox).where(o.id.in_(ids), _due(now))
                                    .values(claimed).returning(*outbox.c)).mappings().all()
                return [outbox_row(r) for r in rows]
            won = []
            for candidate in conn.scalars(select(o.id).where(_due(now)).order_by(o.due_at)
                                          .limit(limit)).all():
                result = conn.execute(update(outbox).where(o.id == candidate, _due(now))
                                      .values(claimed))
                if result.rowcount == 1:
                    won.append(candidate)
            if not won:
                return []
            rows = conn.execute(select(outbox).where(o.id.in_(won))
                                .order_by(o.due_at)).mappings().all()
            return [outbox_row(r) for r in rows]

    def mark_sent(self, worker: str, now: datetime, outbox_id: UUID) -> bool:
        with self.engine.begin() as conn:
            done = conn.scalar(update(outbox).where(o.id == outbox_id, o.claimed_by == worker,
                                                    o.status == CLAIMED)
                               .values(status=SENT, sent_at=now, lease_until=None)
                               .returning(o.id))
            if done is None:
                return False
            conn.execute(insert(deliveries).values(outbox_id=outbox_id, delivered_at=now,
                                                   worker=worker))
            return True

    def complete(self, worker: str, now: datetime, sent: Sequence[UUID],
                 failed: Sequence[tuple[UUID, str, datetime | None]]) -> tuple[int, int]:
        mine = and_(o.claimed_by == worker, o.status == CLAIMED)
        marked: list[UUID] = []
        lost = 0
        with self.engine.begin() as conn:
            if sent:
                marked = list(conn.scalars(
                    update(outbox).where(o.id.in_(sent), mine)
                    .values(status=SENT, sent_at=now, lease_until=None).returning(o.id)))
                if marked:
                    conn.execute(insert(deliveries), [
                        {"outbox_id": i, "delivered_at": now, "worker": worker}
                        for i in marked])
                lost += len(sent) - len(marked)
            for outbox_id, error, retry_at in failed:
                values: dict[str, Any] = {
                    "status": DEAD if retry_at is None else PENDING,
                    "attempts": o.attempts + 1, "last_error": error[:2000],
                    "claimed_by": None, "lease_until": None}
                if retry_at is not None:
                    values["due_at"] = retry_at
                done = conn.execute(update(outbox).where(o.id == outbox_id, mine)
                                    .values(values))
                lost += done.rowcount != 1
        return len(marked), lost

    def dead(self, pilot: str | None = None, limit: int = 100,
             offset: int = 0) -> Sequence[OutboxRow]:
        q = select(outbox).where(o.status == DEAD).order_by(o.due_at, o.id)\
            .limit(limit).offset(offset)
        if pilot is not None:
            q = q.where(o.pilot == pilot)
        with self.engine.connect() as conn:
            return [outbox_row(r) for r in conn.execute(q).mappings()]

    def requeue(self, outbox_id: UUID, now: datetime) -> OutboxRow:
        with self.engine.begin() as conn:
            row = conn.execute(update(outbox).where(o.id == outbox_id, o.status == DEAD)
                               .values(status=PENDING, attempts=0, due_at=now)
                               .returning(*outbox.c)).mappings().first()
            if row is None:
                raise ReminderNotFound(outbox_id)
            return outbox_row(row)

    def messages_for(self, recipient: str, limit: int = 50,
                     offset: int = 0) -> list[InboxItem]:
        """The in-app inbox's read side (``InboxReader``), over the same database."""
        return inbox_page(self.engine, recipient, limit, offset)


# -- the in-app inbox (a Notifier) ----------------------------------------------------------
class SqlInbox:
    """Delivers the in-app channel into ``inbox_messages``; a resend of the same outbox id
    is absorbed by the primary key (exactly one inbox message per outbox row)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[UUID, str | None], None] | None = None,
             ) -> Mapping[UUID, str | None]:
        """One transaction for the batch; ``on_result`` is called per message after it
        commits (a resend after a crash in between is absorbed by the primary key)."""
        if not messages:
            return {}
        now = self.clock.now()
        rows = [{"outbox_id": m.id, "recipient": m.recipient, "case_id": m.case_id,
                 "subject": m.subject[:200], "body": m.body, "link": m.link[:500],
                 "created_at": now} for m in messages]
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as conn:
            conn.execute(dialect.insert(inbox_messages).values(rows)
                         .on_conflict_do_nothing(index_elements=["outbox_id"]))
        if on_result is not None:
            for m in messages:
                on_result(m.id, None)
        return dict.fromkeys((m.id for m in messages), None)

    def messages_for(self, recipient: str, limit: int = 50,
                     offset: int = 0) -> list[InboxItem]:
        return inbox_page(self.engine, recipient, limit, offset)


def inbox_page(engine: Engine, recipient: str, limit: int = 50,
               offset: int = 0) -> list[InboxItem]:
    """``recipient``'s in-app messages, newest first, from ``offset``."""
    i = inbox_messages.c
    q = select(inbox_messages).where(i.recipient == recipient)\
        .order_by(i.created_at.desc(), i.outbox_id).limit(limit).offset(offset)
    with engine.connect() as conn:
        return [InboxItem(r["outbox_id"], r["recipient"], r["case_id"], r["subject"],
                          r["body"], r["link"], r["created_at"])
                for r in conn.execute(q).mappings()]
