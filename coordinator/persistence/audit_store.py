"""The audit store on SQL: chained appends in the unit of work's transaction, streamed
reads for verification and extracts, checkpoints and their recorded heads.

Appending locks the stream's head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serializes writers), seals the events on it and moves the
head, all in the caller's transaction. Only one stream per case is locked, so writers on
different cases never wait for each other.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Insert, Table, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coordinator.audit.canonical import genesis
from coordinator.audit.checkpoint import Checkpoint
from coordinator.audit.events import AuditEvent, Row, SealedEvent, seal
from coordinator.audit.merkle import Head
from coordinator.audit.verify import Anchors, Scan, Tick, scan
from coordinator.errors import ConcurrentUpdate
from coordinator.persistence import audit_scan
from coordinator.persistence.tables import (
    audit_checkpoint_heads,
    audit_checkpoints,
    audit_events,
    audit_heads,
    metadata,
)

BATCH = 5000
_H = audit_heads.c
_HEADS = select(_H.stream, _H.seq, _H.hash).where(
    _H.stream.in_(bindparam("streams", expanding=True))).order_by(_H.stream)
_HEADS_LOCKED = _HEADS.with_for_update()
_EVENT_COLUMNS = ("stream", "seq", "occurred_at", "kind", "case_id", "person_key", "actor_id",
                  "actor_role", "actor_org", "purpose", "category", "audience", "consent_id",
                  "outcome", "body", "prev_hash", "hash")


_SELECT = [audit_events.c[name] for name in (*SealedEvent._fields,)]


def event_from_row(r: Any) -> SealedEvent:
    """A row selected with ``_SELECT`` (the columns in ``SealedEvent`` order)."""
    return SealedEvent._make(r)


def event_row(ev: SealedEvent) -> dict[str, Any]:
    return {name: getattr(ev, name) for name in _EVENT_COLUMNS}


def _checkpoint(r: Any) -> Checkpoint:
    return Checkpoint(r["seq"], r["created_at"], int(r["stream_count"]), int(r["event_count"]),
                      r["root"], r["delta_digest"], r["prev_hash"], r["hash"], r["key_id"],
                      r["signature"], r["max_event_id"])


@functools.lru_cache(maxsize=256)
def _pg_flush(shape: tuple[tuple[str, int, tuple[str, ...]], ...]) -> Insert:
    """PostgreSQL's one statement for a flush: the audit events' insert, with the heads'
    upsert and the riders as data-modifying CTEs. Built once per shape (tables, row
    counts, columns) with named parameters ``p<part>_<row>_<column>``. SQLAlchemy never
    caches the compiled form of a multi-row ``values()`` (3 ms a transition); the usual
    flush (one event, one head, one case event) is all single-row parts and is compiled
    once."""
    def values(j: int, table: Table, n: int, columns: tuple[str, ...]) -> Any:
        rows = [{c: bindparam(f"p{j}_{i}_{c}", type_=table.c[c].type) for c in columns}
                for i in range(n)]
        return rows[0] if n == 1 else rows   # SQLAlchemy caches only single-row VALUES

    tables = metadata.tables
    (events_name, n_events, event_cols), (_, n_heads, head_cols), *riders = shape
    upsert = pg_insert(audit_heads).values(values(1, audit_heads, n_heads, head_cols))
    upsert = upsert.on_conflict_do_update(
        index_elements=[audit_heads.c.stream],
        set_={"seq": upsert.excluded.seq, "hash": upsert.excluded.hash})
    ctes = [insert(tables[name]).values(values(j, tables[name], n, cols)).cte(f"rider_{j}")
            for j, (name, n, cols) in enumerate(riders, start=2)]
    return (insert(tables[events_name]).values(values(0, audit_events, n_events, event_cols))
            .add_cte(upsert.cte("moved"), *ctes))


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[AuditEvent] = []
        self.riders: list[tuple[Table, list[dict[str, Any]]]] = []

    def ride(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows of the same unit of work at ``flush``: on PostgreSQL as a CTE of
        the audit events' insert (one round trip for both), elsewhere right now."""
        if self.session.connection().dialect.name == "postgresql" and self.pending and rows:
            self.riders.append((table, rows))
        else:
            self.session.connection().execute(insert(table), rows)

    # -- writing ---------------------------------------------------------------------------
    def append(self, event: AuditEvent) -> None:
        self.pending.append(event)

    def flush(self) -> None:
        """Chain and insert the pending events (called by the unit of work's commit).

        Two statements for any number of events and streams: the heads read (and locked,
        on PostgreSQL) in one lock order, then the events inserted and the heads moved.
        On PostgreSQL the heads' upsert rides in the insert as a data-modifying CTE (one
        round trip); SQLite, which has no such CTEs and no round trips, runs it apart."""
        if not self.pending:
            return
        by_stream: dict[str, list[AuditEvent]] = {}
        for event in self.pending:
            by_stream.setdefault(event.stream, []).append(event)
        conn = self.session.connection()
        postgres = conn.dialect.name == "postgresql"
        streams = sorted(by_stream)                # one lock order: no deadlocks
        heads = {r[0]: (r[1], r[2]) for r in conn.execute(
            _HEADS_LOCKED if postgres else _HEADS, {"streams": streams})}
        rows: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for stream in streams:
            seq, prev = heads.get(stream) or (0, genesis(stream))
            for event in by_stream[stream]:
                sealed = seal(event, seq + 1, prev)
                rows.append(event_row(sealed))
                seq, prev = sealed.seq, sealed.hash
            moved.append({"stream": stream, "seq": seq, "hash": prev})
        # A stream's first events race on the unique (stream, seq): the loser's insert
        # fails and the unit of work reports a ConcurrentUpdate.
        if postgres:
            parts = [(audit_events, rows), (audit_heads, moved), *self.riders]
            shape = tuple((t.name, len(r), tuple(r[0])) for t, r in parts)
            conn.execute(_pg_flush(shape), {f"p{j}_{i}_{k}": v
                                            for j, (_, part) in enumerate(parts)
                                            for i, row in enumerate(part)
                                            for k, v in row.items()})
        else:
            lite = sqlite_insert(audit_heads)
            conn.execute(lite.on_conflict_do_update(
                index_elements=[audit_heads.c.stream],
                set_={"seq": lite.excluded.seq, "hash": lite.excluded.hash}), moved)
            conn.execute(insert(audit_events), rows)
        self.pending.clear()
        self.riders.clear()

    # -- reading ---------------------------------------------------------------------------
    def events(self, *, stream: str | None = None, since: datetime | None = None,
               streams: Iterable[str] | None = None) -> Iterator[SealedEvent]:
        """Events ordered by (stream, seq), streamed in batches (a server-side cursor on
        PostgreSQL)."""
        e = audit_events.c
        q = select(*_SELECT).order_by(e.stream, e.seq)
        if stream is not None:
            q = q.where(e.stream == stream)
        if since is not None:
            q = q.where(e.occurred_at >= since)
        if streams is not None:
            q = q.where(e.stream.in_(list(streams)))
        conn = self.session.connection().execution_options(stream_results=True,
                                                           yield_per=BATCH)
        make = SealedEvent._make
        for row in conn.execute(q):
            yield make(row)

    def rows(self, *, stream: str | None = None) -> Iterator[Row]:
        """What verification reads, ordered by (stream, seq) (see ``audit_scan``)."""
        conn = self.session.connection()
        if conn.dialect.name == "postgresql":
            return audit_scan.pg_rows(conn.connection.driver_connection, stream=stream)
        return (ev.as_row() for ev in self.events(stream=stream))

    def scan(self, anchors: Anchors, *, jobs: int = 1,
             progress: Tick | None = None) -> Scan:
        """The fast verification pass over every event: on PostgreSQL in row-id order,
        in ``jobs`` processes when asked (``audit_scan.parallel``)."""
        conn = self.session.connection()
        if conn.dialect.name != "postgresql":
            return scan(self.rows(), anchors, progress)
        if jobs > 1:
            return audit_scan.parallel(conn, anchors, jobs, progress)
        return scan(audit_scan.pg_rows(conn.connection.driver_connection), anchors, progress)

    def stream_after(self, stream: str, seq: int) -> Iterator[SealedEvent]:
        e = audit_events.c
        q = select(*_SELECT).where(e.stream == stream, e.seq > seq).order_by(e.seq)
        for row in self.session.connection().execute(q):
            yield event_from_row(row)

    def query(self, *, case_id: UUID | None = None, kinds: Iterable[str] | None = None,
              since: datetime | None = None, until: datetime | None = None,
              person_key: str | None = None, limit: int | None = None) -> list[SealedEvent]:
        e = audit_events.c
        q = select(*_SELECT).order_by(e.occurred_at, e.stream, e.seq)
        if case_id is not None:
            q = q.where(e.case_id == case_id)
        if person_key is not None:
            q = q.where(e.person_key == person_key)
        if kinds is not None:
            q = q.where(e.kind.in_(sorted(kinds)))
        if since is not None:
            q = q.where(e.occurred_at >= since)
        if until is not None:
            q = q.where(e.occurred_at < until)
        if limit is not None:
            q = q.limit(limit)
        return [event_from_row(r) for r in self.session.connection().execute(q)]

    def heads(self, stream: str | None = None) -> dict[str, Head]:
        h = audit_heads.c
        q = select(h.stream, h.seq, h.hash)
        if stream is not None:
            q = q.where(h.stream == stream)
        return {r[0]: (r[1], r[2]) for r in self.session.connection().execute(q)}

    def after_id(self, event_id: int) -> list[SealedEvent]:
        """Events with a larger row id, in (stream, seq) order (a hint: row ids follow
        insert order, not commit order; callers check continuity)."""
        e = audit_events.c
        q = select(*_SELECT).where(e.id > event_id).order_by(e.stream, e.seq)
        return [event_from_row(r) for r in self.session.connection().execute(q)]

    def max_id(self) -> int:
        return int(self.session.connection().scalar(select(func.max(audit_events.c.id))) or 0)

    def count(self) -> int:
        return int(self.session.connection().scalar(
            select(func.count()).select_from(audit_events)) or 0)

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoints(self) -> list[Checkpoint]:
        c = audit_checkpoints.c
        rows = self.session.connection().execute(select(audit_checkpoints).order_by(c.seq))
        return [_checkpoint(r) for r in rows.mappings()]

    def checkpoint_heads(self, stream: str | None = None) -> dict[int, dict[str, Head]]:
        k = audit_checkpoint_heads.c
        q = select(k.checkpoint_seq, k.stream, k.seq, k.hash)
        if stream is not None:
            q = q.where(k.stream == stream)
        out: dict[int, dict[str, Head]] = {}
        for cp, s, seq, hsh in self.session.connection().execute(q):
            out.setdefault(cp, {})[s] = (seq, hsh)
        return out

    def add_checkpoint(self, checkpoint: Checkpoint, delta: Mapping[str, Head]) -> None:
        """Raises ConcurrentUpdate when another process wrote that seq first."""
        try:
            self._add_checkpoint(checkpoint, delta)
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"audit checkpoint {checkpoint.seq}") from exc

    def _add_checkpoint(self, checkpoint: Checkpoint, delta: Mapping[str, Head]) -> None:
        conn = self.session.connection()
        conn.execute(insert(audit_checkpoints).values(
            seq=checkpoint.seq, created_at=checkpoint.created_at,
            stream_count=checkpoint.stream_count, event_count=checkpoint.event_count,
            root=checkpoint.root, delta_digest=checkpoint.delta_digest,
            prev_hash=checkpoint.prev_hash, hash=checkpoint.hash, key_id=checkpoint.key_id,
            signature=checkpoint.signature, max_event_id=checkpoint.max_event_id))
        if delta:
            conn.execute(insert(audit_checkpoint_heads), [
                {"checkpoint_seq": checkpoint.seq, "stream": s, "seq": h[0], "hash": h[1]}
                for s, h in sorted(delta.items())])


def sealed_rows(events: Sequence[SealedEvent]) -> list[dict[str, Any]]:
    return [event_row(e) for e in events]
