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

from sqlalchemy import Insert, Table, bindparam, func, insert, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coordinator.audit.canonical import genesis
from coordinator.audit.checkpoint import Checkpoint
from coordinator.audit.events import AuditEvent, Row, SealedEvent, seal, stream_of
from coordinator.audit.merkle import Head
from coordinator.audit.verify import Anchors, Scan, Tick, scan
from coordinator.errors import ConcurrentUpdate
from coordinator.persistence import audit_scan
from coordinator.persistence.prepared import insert_into, named_values, prepared
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


Shape = tuple[tuple[str, int, tuple[str, ...]], ...]   # (table, rows, columns) per part
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
def _pg_flush(shape: Shape) -> Insert:
    """PostgreSQL's one statement for a flush: the audit events' insert, with the heads'
    upsert and the riders as data-modifying CTEs. Built once per shape (tables, row
    counts, columns) with named parameters (``_values``). SQLAlchemy never caches the
    compiled form of a multi-row ``values()`` (3 ms a transition); the usual flush (one
    event, one head, one case event) is all single-row parts and is compiled once."""
    (_, n_events, event_cols), (_, n_heads, head_cols), *riders = shape
    upsert = pg_insert(audit_heads).values(_values(1, audit_heads, n_heads, head_cols))
    upsert = upsert.on_conflict_do_update(
        index_elements=[audit_heads.c.stream],
        set_={"seq": upsert.excluded.seq, "hash": upsert.excluded.hash})
    return (insert(audit_events).values(_values(0, audit_events, n_events, event_cols))
            .add_cte(upsert.cte("moved"), *_riders(tuple(riders), 2)))


def _chained(events: list[AuditEvent], seq: int, prev: str) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        sealed = seal(event, seq + 1, prev)
        rows.append(event_row(sealed))
        seq, prev = sealed.seq, sealed.hash
    return rows


def _shape(parts: list[tuple[Table, list[dict[str, Any]]]]) -> Shape:
    return tuple((t.name, len(r), tuple(r[0])) for t, r in parts)


def _params(parts: list[tuple[Table, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {f"p{j}_{i}_{k}": v for j, (_, part) in enumerate(parts)
            for i, row in enumerate(part) for k, v in row.items()}


def _values(j: int, table: Table, n: int, columns: tuple[str, ...]) -> Any:
    """Named parameters ``p<part>_<row>_<column>`` for ``n`` rows of ``table``."""
    rows = [{c: bindparam(f"p{j}_{i}_{c}", type_=table.c[c].type) for c in columns}
            for i in range(n)]
    return rows[0] if n == 1 else rows   # SQLAlchemy caches only single-row VALUES


def _riders(shape: Shape, start: int) -> list[Any]:
    tables = metadata.tables
    return [insert(tables[name]).values(_values(j, tables[name], n, cols)).cte(f"rider_{j}")
            for j, (name, n, cols) in enumerate(shape, start=start)]


@functools.lru_cache(maxsize=256)
def _pg_flush_as_read(shape: Shape) -> Insert:
    """``_flush_as_read``'s statement: the head moved from ``h_old`` only if it is still
    there, the events inserted only if it moved, the riders inserted as CTEs."""
    (_, n_events, event_cols), *riders = shape
    h = audit_heads.c
    moved = (update(audit_heads).where(h.stream == bindparam("h_stream"),
                                       h.seq == bindparam("h_old"))
             .values(seq=bindparam("h_seq"), hash=bindparam("h_hash"))
             .returning(h.stream).cte("moved"))
    still = select(moved.c.stream).exists()
    arms = [select(*[bindparam(f"p0_{i}_{c}", type_=audit_events.c[c].type) for c in event_cols])
            .where(still) for i in range(n_events)]
    rows: Any = arms[0] if n_events == 1 else union_all(*arms)
    # RETURNING counts what was inserted: psycopg's rowcount is -1 for this statement
    return (insert(audit_events).from_select(list(event_cols), rows)
            .add_cte(moved, *_riders(tuple(riders), 1)).returning(audit_events.c.seq))


@functools.cache
def _sqlite_move_heads() -> Insert:
    """The heads' upsert on SQLite, built once (``excluded`` builds a table alias)."""
    lite = sqlite_insert(audit_heads).values(
        named_values(audit_heads, ("stream", "seq", "hash")))
    return lite.on_conflict_do_update(
        index_elements=[audit_heads.c.stream],
        set_={"seq": lite.excluded.seq, "hash": lite.excluded.hash})


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[AuditEvent] = []
        self.riders: list[tuple[Table, list[dict[str, Any]]]] = []
        self.heads_read: dict[str, Head | None] = {}

    def read(self, stream: str, head: Head | None) -> None:
        """``stream``'s head (None: no event yet) as another statement of this transaction
        read it, without a lock (the case loader's). On SQLite, whose writers are
        serialized, it is the head and ``flush`` need not read it again; on PostgreSQL it
        is what ``flush`` expects, and its insert checks that."""
        self.heads_read[stream] = head

    def ride(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows of the same unit of work at ``flush``: on PostgreSQL as a CTE of
        the audit events' insert (one round trip for both), elsewhere right now."""
        conn = self.session.connection()
        if conn.dialect.name == "postgresql" and self.pending and rows:
            self.riders.append((table, rows))
        elif rows:
            prepared(insert_into(table, tuple(rows[0])), conn.dialect).execute(conn, rows)

    # -- writing ---------------------------------------------------------------------------
    def append(self, event: AuditEvent) -> None:
        self.pending.append(event)

    def flush(self) -> None:
        """Chain and insert the pending events (called by the unit of work's commit).

        Usually one statement: a use case on one case appends to that case's stream, whose
        head came with the case (``read``). On PostgreSQL the insert moves that head only
        if it is still the one read (``_flush_as_read``); on SQLite it is. Otherwise two
        statements for any number of events and streams: the heads read (and locked, on
        PostgreSQL) in one lock order, then the events inserted and the heads moved. On
        PostgreSQL the heads' upsert and the riders ride in the insert as data-modifying
        CTEs (one round trip); SQLite, which has no such CTEs and no round trips, runs
        them apart. The lock order of a writer stays: its case's row (the versioned
        UPDATE, flushed first), then heads."""
        if not self.pending:
            return
        by_stream: dict[str, list[AuditEvent]] = {}
        for event in self.pending:
            by_stream.setdefault(event.stream, []).append(event)
        conn = self.session.connection()
        postgres = conn.dialect.name == "postgresql"
        streams = sorted(by_stream)                # one lock order: no deadlocks
        if postgres and len(streams) == 1 and self._flush_as_read(conn, streams[0],
                                                                   by_stream[streams[0]]):
            self.pending.clear()
            return
        # Not known, or on PostgreSQL moved since it was read: lock, read and chain again.
        trusted = {} if postgres else self.heads_read
        heads = {s: h for s, h in trusted.items() if h is not None}
        unknown = [s for s in streams if s not in trusted]
        if unknown:
            heads.update({r[0]: (r[1], r[2]) for r in conn.execute(
                _HEADS_LOCKED if postgres else _HEADS, {"streams": unknown})})
        rows: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for stream in streams:
            seq, prev = heads.get(stream) or (0, genesis(stream))
            rows += _chained(by_stream[stream], seq, prev)
            moved.append({"stream": stream, "seq": rows[-1]["seq"], "hash": rows[-1]["hash"]})
        # A stream's first events race on the unique (stream, seq): the loser's insert
        # fails and the unit of work reports a ConcurrentUpdate.
        if postgres:
            parts = [(audit_events, rows), (audit_heads, moved), *self.riders]
            prepared(_pg_flush(_shape(parts)), conn.dialect).execute(conn, [_params(parts)])
        else:
            prepared(_sqlite_move_heads(), conn.dialect).execute(conn, moved)
            prepared(insert_into(audit_events, _EVENT_COLUMNS), conn.dialect).execute(conn,
                                                                                      rows)
            self.heads_read.update((m["stream"], (m["seq"], m["hash"])) for m in moved)
        self.pending.clear()
        self.riders.clear()

    def _flush_as_read(self, conn: Any, stream: str, events: list[AuditEvent]) -> bool:
        """PostgreSQL, one stream whose head the case loader read: chain on that head and
        insert in one statement whose CTE moves the head only if it is still the one read
        (the UPDATE waits for a writer holding it, then rechecks), and whose insert of the
        events depends on that move. False when the head had moved: nothing of the audit
        was written (the riders were) and ``flush`` locks, reads and chains again."""
        head = self.heads_read.get(stream)
        if head is None:
            return False
        rows = _chained(events, *head)
        parts = [(audit_events, rows), *self.riders]
        params = _params(parts)
        params.update(h_stream=stream, h_old=head[0], h_seq=rows[-1]["seq"],
                      h_hash=rows[-1]["hash"])
        inserted = prepared(_pg_flush_as_read(_shape(parts)), conn.dialect).rows(conn, params)
        self.riders.clear()
        return len(inserted) == len(rows)

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
        if case_id is not None:     # the (stream, seq) index: a case's events are its stream
            q = q.where(e.stream == stream_of(case_id), e.case_id == case_id)
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
