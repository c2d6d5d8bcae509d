"""Fakes for tests of code that uses coordinator: a settable clock and an in-memory store.

``InMemoryUnitOfWork`` keeps rows as snapshots, so an uncommitted change is lost on exit
and a commit on a case someone else changed first raises ``ConcurrentUpdate`` — the same
contract as the SQL unit of work (tests/integration/test_repository_contract.py).
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from coordinator.audit.canonical import genesis
from coordinator.audit.checkpoint import Checkpoint
from coordinator.audit.events import AuditEvent, Row, SealedEvent, seal
from coordinator.audit.merkle import Head
from coordinator.audit.verify import Anchors, Scan, Tick, scan
from coordinator.cases import auditing
from coordinator.cases.document_model import DataKey, Document, Erasure, Rotation
from coordinator.cases.meetings import Meeting
from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    CoordinatorError,
    DocumentNotFound,
    InvalidInput,
    KeyUnavailable,
    MeetingNotFound,
    ReminderNotFound,
)
from coordinator.intake.model import (
    FormResponse,
    IdempotencyRecord,
    MeasureRecord,
    TherapySession,
)
from coordinator.ports import WrappedKey
from coordinator.scheduling.outbox import (
    CANCELLED,
    CLAIMED,
    DEAD,
    PENDING,
    RULE,
    SENT,
    OutboxRow,
    OutgoingMessage,
)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2027, 1, 4, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = moment.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


@dataclass
class InMemoryStore:
    cases: dict[UUID, Case] = field(default_factory=dict)
    events: dict[UUID, list[CaseEvent]] = field(default_factory=dict)
    consents: list[ConsentRecord] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    forms: list[FormResponse] = field(default_factory=list)
    measures: list[MeasureRecord] = field(default_factory=list)
    sessions: list[TherapySession] = field(default_factory=list)
    meetings: dict[UUID, Meeting] = field(default_factory=dict)
    outbox: dict[UUID, OutboxRow] = field(default_factory=dict)
    claims: dict[UUID, tuple[str, datetime]] = field(default_factory=dict)   # worker, lease
    deliveries: dict[UUID, str] = field(default_factory=dict)
    audit: dict[str, list[SealedEvent]] = field(default_factory=dict)
    heads: dict[str, Head] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_heads: dict[int, dict[str, Head]] = field(default_factory=dict)
    audit_last_id: int = 0
    documents: dict[UUID, Document] = field(default_factory=dict)
    data_keys: dict[tuple[UUID, str, int], DataKey] = field(default_factory=dict)
    erasures: dict[UUID, Erasure] = field(default_factory=dict)
    rotations: dict[UUID, Rotation] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Cases:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.seen: dict[UUID, tuple[Case, int | None]] = {}

    def add(self, case: Case) -> None:
        self.seen[case.id] = (case, None)

    def get(self, case_id: UUID) -> Case:
        if case_id in self.seen:
            return self.seen[case_id][0]
        stored = self.store.cases.get(case_id)
        if stored is None:
            raise CaseNotFound(case_id)
        case = copy.deepcopy(stored)
        case.events = []
        self.seen[case_id] = (case, stored.version)
        return case

    def list(self, *, pilot: str | None = None, state: str | None = None,
             workflow_version: int | None = None, after: UUID | None = None,
             limit: int = 50, member: tuple[str, str] | None = None,
             subject: str | None = None) -> Sequence[Case]:
        teams = {(m.case_id, m.actor_id, m.role) for m in self.store.members}
        rows = sorted(self.store.cases.values(), key=lambda c: c.id)
        rows = [c for c in rows if (pilot is None or c.pilot == pilot)
                and (state is None or c.state == state)
                and (workflow_version is None or c.workflow_version == workflow_version)
                and (after is None or c.id > after)
                and (subject is None or c.subject_id == subject)
                and (member is None or (c.id, *member) in teams)]
        return [copy.deepcopy(c) for c in rows[:limit]]

    def count(self) -> int:
        return len(self.store.cases)


class _Events:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.redacted: set[UUID] = set()        # blanked on commit

    def history(self, case_id: UUID) -> Sequence[CaseEvent]:
        events = self.store.events.get(case_id, [])
        return [_blank(e) for e in events] if case_id in self.redacted else list(events)

    def redact(self, case_id: UUID) -> int:
        self.redacted.add(case_id)
        return len(self.store.events.get(case_id, []))

    def apply(self) -> None:
        for case_id in self.redacted:
            self.store.events[case_id] = [_blank(e) for e in self.store.events.get(case_id, [])]
        self.redacted.clear()


def _blank(e: CaseEvent) -> CaseEvent:
    return dataclasses.replace(e, reason=None, data={})


class _Consents:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.pending: list[ConsentRecord] = []

    def add(self, record: ConsentRecord) -> None:
        self.pending.append(record)

    def for_case(self, case_id: UUID) -> Sequence[ConsentRecord]:
        return [r for r in (*self.store.consents, *self.pending) if r.case_id == case_id]

    def for_pilot(self, pilot: str, *, since: datetime | None = None,
                  until: datetime | None = None, limit: int = 1000) -> Sequence[ConsentRecord]:
        rows = sorted((r for r in self.store.consents if r.pilot == pilot
                       and (since is None or r.recorded_at >= since)
                       and (until is None or r.recorded_at < until)),
                      key=lambda r: (r.recorded_at, r.id))
        return rows[:limit]


class _Audit:
    """The audit store in memory: the same chaining as the SQL store."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.pending: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        self.pending.append(event)

    def flush(self) -> None:
        for event in self.pending:
            seq, prev = self.store.heads.get(event.stream, (0, genesis(event.stream)))
            self.store.audit_last_id += 1
            sealed = seal(event, seq + 1, prev)._replace(id=self.store.audit_last_id)
            self.store.audit.setdefault(event.stream, []).append(sealed)
            self.store.heads[event.stream] = (sealed.seq, sealed.hash)
        self.pending.clear()

    def _all(self) -> Iterator[SealedEvent]:
        for stream in sorted(self.store.audit):
            yield from self.store.audit[stream]

    def events(self, *, stream: str | None = None, since: datetime | None = None,
               streams: Iterable[str] | None = None) -> Iterator[SealedEvent]:
        wanted = None if streams is None else set(streams)
        for e in list(self._all()):
            if (stream is None or e.stream == stream) and (
                    since is None or e.occurred_at >= since) and (
                    wanted is None or e.stream in wanted):
                yield e

    def stream_after(self, stream: str, seq: int) -> Iterator[SealedEvent]:
        yield from (e for e in list(self.store.audit.get(stream, [])) if e.seq > seq)

    def rows(self, *, stream: str | None = None) -> Iterator[Row]:
        return (e.as_row() for e in self.events(stream=stream))

    def scan(self, anchors: Anchors, *, jobs: int = 1,
             progress: Tick | None = None) -> Scan:
        return scan(self.rows(), anchors, progress)

    def query(self, *, case_id: UUID | None = None, kinds: Iterable[str] | None = None,
              since: datetime | None = None, until: datetime | None = None,
              person_key: str | None = None, limit: int | None = None) -> list[SealedEvent]:
        kinds_set = None if kinds is None else set(kinds)
        rows = sorted((e for e in self._all()
                       if (case_id is None or e.case_id == case_id)
                       and (person_key is None or e.person_key == person_key)
                       and (kinds_set is None or e.kind in kinds_set)
                       and (since is None or e.occurred_at >= since)
                       and (until is None or e.occurred_at < until)),
                      key=lambda e: (e.occurred_at, e.stream, e.seq))
        return rows if limit is None else rows[:limit]

    def heads(self, stream: str | None = None) -> dict[str, Head]:
        return {s: h for s, h in self.store.heads.items() if stream is None or s == stream}

    def count(self) -> int:
        return sum(len(v) for v in self.store.audit.values())

    def after_id(self, event_id: int) -> list[SealedEvent]:
        return [e for e in self._all() if (e.id or 0) > event_id]

    def max_id(self) -> int:
        return self.store.audit_last_id

    def checkpoints(self) -> list[Checkpoint]:
        return list(self.store.checkpoints)

    def checkpoint_heads(self, stream: str | None = None) -> dict[int, dict[str, Head]]:
        return {cp: {s: h for s, h in heads.items() if stream is None or s == stream}
                for cp, heads in self.store.checkpoint_heads.items()}

    def add_checkpoint(self, checkpoint: Checkpoint, delta: Mapping[str, Head]) -> None:
        if any(c.seq == checkpoint.seq for c in self.store.checkpoints):
            raise ConcurrentUpdate("the checkpoint sequence")
        self.store.checkpoints.append(checkpoint)
        self.store.checkpoint_heads[checkpoint.seq] = dict(delta)


class _Members:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.pending: list[Member] = []

    def add(self, member: Member) -> None:
        self.pending.append(member)

    def for_case(self, case_id: UUID) -> Sequence[Member]:
        stored = sorted((m for m in self.store.members if m.case_id == case_id),
                        key=lambda m: (m.added_at, m.actor_id))
        return [*stored, *(m for m in self.pending if m.case_id == case_id)]


class _Idempotency:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.claimed: list[IdempotencyRecord] = []
        self.pending: list[tuple[str, str, UUID | None, dict[str, object], datetime | None]] = []

    def get(self, source: str, key: str) -> IdempotencyRecord | None:
        for r in self.claimed:
            if (r.source, r.key) == (source, key):
                return r
        return self.store.idempotency.get((source, key))

    def claim(self, record: IdempotencyRecord) -> bool:
        with self.store.lock:
            if self.get(record.source, record.key) is not None:
                return False
        self.claimed.append(record)
        return True

    def complete(self, source: str, key: str, case_id: UUID, response: dict[str, object],
                 at: datetime) -> None:
        self.pending.append((source, key, case_id, dict(response), at))

    def release(self, source: str, key: str) -> None:
        self.pending.append((source, key, None, {}, None))

    def apply(self) -> None:
        """Under the store lock: claims (unique key), then completions and releases."""
        for r in self.claimed:
            if (r.source, r.key) in self.store.idempotency:
                raise ConcurrentUpdate("the idempotency key")
        for r in self.claimed:
            self.store.idempotency[(r.source, r.key)] = r
        self.claimed.clear()
        for source, key, case_id, response, at in self.pending:
            current = self.store.idempotency.get((source, key))
            if current is None or current.state != "processing":
                continue
            if case_id is None:
                del self.store.idempotency[(source, key)]
            else:
                self.store.idempotency[(source, key)] = IdempotencyRecord(
                    source, key, current.request_hash, "done", current.created_at, case_id,
                    response, at)
        self.pending.clear()


class _Rows:
    """Append-only rows keyed by case (forms, measures, sessions); an erasure deletes a
    case's rows on commit."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.pending: list[Any] = []
        self.erased: set[UUID] = set()

    def add(self, item: Any) -> None:
        self.pending.append(item)

    def for_case(self, case_id: UUID) -> Sequence[Any]:
        stored = [] if case_id in self.erased else self.rows
        return [r for r in (*stored, *self.pending) if r.case_id == case_id]

    def erase(self, case_id: UUID) -> int:
        self.pending = [r for r in self.pending if r.case_id != case_id]
        self.erased.add(case_id)
        return sum(r.case_id == case_id for r in self.rows)

    def apply(self) -> None:
        self.rows[:] = [r for r in self.rows if r.case_id not in self.erased]
        self.rows.extend(self.pending)
        self.clear()

    def clear(self) -> None:
        self.pending.clear()
        self.erased.clear()
class _Meetings:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.pending: dict[UUID, Meeting] = {}

    def add(self, meeting: Meeting) -> None:
        self.pending[meeting.id] = meeting

    def get(self, meeting_id: UUID) -> Meeting:
        found = self.pending.get(meeting_id) or self.store.meetings.get(meeting_id)
        if found is None:
            raise MeetingNotFound(meeting_id)
        return found

    def for_case(self, case_id: UUID) -> Sequence[Meeting]:
        found = {**self.store.meetings, **self.pending}
        return sorted((m for m in found.values() if m.case_id == case_id),
                      key=lambda m: (m.starts_at, str(m.id)))


class _Outbox:
    """Queues changes like the SQL repository; ``apply`` runs them inside commit."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.ops: list[Callable[[], None]] = []

    def add(self, rows: Sequence[OutboxRow]) -> None:
        self.ops.append(lambda: self.store.outbox.update({r.id: r for r in rows}))

    def replace_planned(self, case_id: UUID, rows: Sequence[OutboxRow]) -> None:
        def run() -> None:
            existing = [r for r in self.store.outbox.values() if r.case_id == case_id
                        and r.source == RULE and r.status != CANCELLED]
            wanted = {(r.key, r.recipient, r.channel): r for r in rows}
            for r in existing:
                if r.status == PENDING and (r.key, r.recipient, r.channel) not in wanted:
                    self.store.outbox[r.id] = dataclasses.replace(r, status=CANCELLED)
            present = {(r.key, r.recipient, r.channel) for r in existing}
            self.store.outbox.update({r.id: r for k, r in wanted.items() if k not in present})
        self.ops.append(run)

    def _cancel(self, keep: Callable[[OutboxRow], bool]) -> None:
        for r in list(self.store.outbox.values()):
            if r.status == PENDING and keep(r):
                self.store.outbox[r.id] = dataclasses.replace(r, status=CANCELLED)

    def cancel_meeting(self, meeting_id: UUID) -> None:
        self.ops.append(lambda: self._cancel(lambda r: r.meeting_id == meeting_id))

    def cancel_case(self, case_id: UUID) -> None:
        self.ops.append(lambda: self._cancel(lambda r: r.case_id == case_id))

    def cancel_channel(self, case_id: UUID, channel: str) -> None:
        self.ops.append(lambda: self._cancel(
            lambda r: r.case_id == case_id and r.channel == channel))

    def for_case(self, case_id: UUID) -> Sequence[OutboxRow]:
        return sorted((r for r in self.store.outbox.values() if r.case_id == case_id),
                      key=lambda r: (r.due_at, r.key))

    def apply(self) -> None:
        for op in self.ops:
            op()
        self.ops.clear()


class InMemoryOutboxStore:
    """The dispatcher's side of the in-memory outbox (same contract as ``SqlOutboxStore``)."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    def _due(self, r: OutboxRow, now: datetime) -> bool:
        if r.status == PENDING:
            return r.due_at <= now
        return r.status == CLAIMED and self.store.claims[r.id][1] < now

    def claim(self, worker: str, now: datetime, limit: int,
              lease: timedelta) -> Sequence[OutboxRow]:
        with self.store.lock:
            due = sorted((r for r in self.store.outbox.values() if self._due(r, now)),
                         key=lambda r: r.due_at)[:limit]
            for r in due:
                self.store.outbox[r.id] = dataclasses.replace(r, status=CLAIMED)
                self.store.claims[r.id] = (worker, now + lease)
            return [self.store.outbox[r.id] for r in due]

    def mark_sent(self, worker: str, now: datetime, outbox_id: UUID) -> bool:
        return self.complete(worker, now, [outbox_id], [])[0] == 1

    def complete(self, worker: str, now: datetime, sent: Sequence[UUID],
                 failed: Sequence[tuple[UUID, str, datetime | None]]) -> tuple[int, int]:
        with self.store.lock:
            def mine(i: UUID) -> bool:
                return (self.store.outbox[i].status == CLAIMED
                        and self.store.claims[i][0] == worker)
            marked = [i for i in sent if mine(i)]
            for i in marked:
                self.store.outbox[i] = dataclasses.replace(self.store.outbox[i], status=SENT,
                                                           sent_at=now)
                self.store.deliveries[i] = worker
            lost = len(sent) - len(marked)
            for i, error, retry_at in failed:
                if not mine(i):
                    lost += 1
                    continue
                r = self.store.outbox[i]
                self.store.outbox[i] = dataclasses.replace(
                    r, status=DEAD if retry_at is None else PENDING, attempts=r.attempts + 1,
                    last_error=error, due_at=retry_at or r.due_at)
            return len(marked), lost

    def dead(self, pilot: str | None = None, limit: int = 100,
             offset: int = 0) -> Sequence[OutboxRow]:
        return sorted((r for r in self.store.outbox.values() if r.status == DEAD
                       and (pilot is None or r.pilot == pilot)),
                      key=lambda r: (r.due_at, str(r.id)))[offset:offset + limit]

    def requeue(self, outbox_id: UUID, now: datetime) -> OutboxRow:
        with self.store.lock:
            r = self.store.outbox.get(outbox_id)
            if r is None or r.status != DEAD:
                raise ReminderNotFound(outbox_id)
            self.store.outbox[outbox_id] = dataclasses.replace(r, status=PENDING, attempts=0,
                                                               due_at=now)
            return self.store.outbox[outbox_id]


class RecordingNotifier:
    """A fake channel: keeps what it was given, one message per id (like a receiver that
    de-duplicates by Message-ID). ``fail_for`` recipients get an error back."""

    def __init__(self, fail_for: frozenset[str] = frozenset()) -> None:
        self.fail_for = fail_for
        self.messages: dict[UUID, OutgoingMessage] = {}
        self.attempts: list[UUID] = []

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[UUID, str | None], None] | None = None,
             ) -> Mapping[UUID, str | None]:
        out: dict[UUID, str | None] = {}
        for m in messages:
            self.attempts.append(m.id)
            if m.recipient in self.fail_for:
                out[m.id] = f"recipient {m.recipient} refused"
            else:
                self.messages.setdefault(m.id, m)
                out[m.id] = None
            if on_result is not None:
                on_result(m.id, out[m.id])
        return out


class InMemoryKeyProvider:
    """A fake ``KeyProvider``: it keeps each wrapped data key in a table and hands out a
    random handle as the blob, so nothing about the key is in the blob. Same contract as
    the real providers (tests/integration/test_key_provider_contract.py)."""

    def __init__(self) -> None:
        self._keks: list[str] = ["mem:v1"]
        self._retired: set[str] = set()
        self._wrapped: dict[tuple[str, bytes], tuple[bytes, bytes]] = {}
        self._lock = threading.Lock()

    def current_kek(self) -> str:
        return self._keks[-1]

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        handle = secrets.token_bytes(16)
        with self._lock:
            self._wrapped[(self.current_kek(), handle)] = (bytes(data_key), bytes(context))
        return WrappedKey(self.current_kek(), handle)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        with self._lock:
            found = (None if wrapped.kek_id in self._retired
                     else self._wrapped.get((wrapped.kek_id, wrapped.blob)))
        if found is None or found[1] != context:
            raise KeyUnavailable(f"cannot unwrap a data key under {wrapped.kek_id}",
                                 kek_id=wrapped.kek_id)
        return found[0]

    def rotate(self) -> str:
        with self._lock:
            self._keks.append(f"mem:v{len(self._keks) + 1}")
            return self._keks[-1]

    def retire(self, kek_id: str) -> None:
        if kek_id == self.current_kek():
            raise InvalidInput("the current key-encryption key cannot be retired",
                               field="kek_id")
        with self._lock:
            self._retired.add(kek_id)


class _Documents:
    """Documents staged until commit; ``check`` refuses a commit over a row someone else
    changed first (the SQL ``WHERE row_version``), ``apply`` writes."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.staged: dict[UUID, tuple[Document | None, int | None]] = {}  # doc, read version
        self.erased: list[Erasure] = []

    def _view(self) -> dict[UUID, Document]:
        found = dict(self.store.documents)
        for doc_id, (doc, _read) in self.staged.items():
            if doc is None:
                found.pop(doc_id, None)
            else:
                found[doc_id] = doc
        return found

    def add(self, document: Document) -> None:
        self._stage(document.id, document)

    def get(self, document_id: UUID) -> Document:
        found = self._view().get(document_id)
        if found is None:
            raise DocumentNotFound(document_id)
        return found

    def for_case(self, case_id: UUID, *, after: UUID | None = None,
                 limit: int = 50) -> Sequence[Document]:
        return sorted((x for x in self._view().values() if x.case_id == case_id
                       and (after is None or x.id > after)), key=lambda x: x.id)[:limit]

    def replace(self, document: Document, expected_row_version: int) -> None:
        if self.get(document.id).row_version != expected_row_version:
            raise ConcurrentUpdate()
        self._stage(document.id, document)

    def _stage(self, doc_id: UUID, doc: Document | None) -> None:
        if doc_id in self.staged:
            read = self.staged[doc_id][1]
        else:
            stored = self.store.documents.get(doc_id)
            read = None if stored is None else stored.row_version
        self.staged[doc_id] = (doc, read)

    def reseal(self, documents: Sequence[Document]) -> int:
        done = 0
        for doc in documents:
            current = self._view().get(doc.id)
            if current is not None and current.row_version == doc.row_version - 1:
                self._stage(doc.id, dataclasses.replace(
                    current, key_version=doc.key_version, sealed=doc.sealed,
                    digest=doc.digest, row_version=doc.row_version, audience=doc.audience))
                done += 1
        return done

    def _newest(self, doc: Document, keys: Mapping[tuple[UUID, str, int], DataKey]) -> int:
        return max((v for c, a, v in keys if c == doc.case_id and a == doc.audience),
                   default=0)

    def stale(self, *, limit: int, after: UUID | None = None) -> Sequence[Document]:
        keys = self.store.data_keys
        return sorted((x for x in self._view().values()
                       if x.key_version < self._newest(x, keys)
                       and (after is None or x.id > after)), key=lambda x: x.id)[:limit]

    def count_stale(self) -> int:
        return len(self.stale(limit=1 << 62))

    def erase(self, case_id: UUID) -> int:
        gone = [x for x in self._view().values() if x.case_id == case_id]
        for doc in gone:
            self._stage(doc.id, None)
        return len(gone)

    def erasure(self, case_id: UUID) -> Erasure | None:
        return self.store.erasures.get(case_id) or next(
            (e for e in self.erased if e.case_id == case_id), None)

    def mark_erased(self, erasure: Erasure) -> None:
        if self.erasure(erasure.case_id) is not None:
            raise ConcurrentUpdate()
        self.erased.append(erasure)

    def check(self) -> None:
        for doc_id, (_doc, read) in self.staged.items():
            current = self.store.documents.get(doc_id)
            if (None if current is None else current.row_version) != read:
                raise ConcurrentUpdate()
        if any(e.case_id in self.store.erasures for e in self.erased):
            raise ConcurrentUpdate()

    def apply(self) -> None:
        for doc_id, (doc, _read) in self.staged.items():
            if doc is None:
                self.store.documents.pop(doc_id, None)
            else:
                self.store.documents[doc_id] = doc
        self.store.erasures.update({e.case_id: e for e in self.erased})
        self.clear()

    def clear(self) -> None:
        self.staged.clear()
        self.erased.clear()


class _DataKeys:
    """Wrapped data keys and rotation runs, staged until commit like ``_Documents``."""

    def __init__(self, store: InMemoryStore, documents: _Documents) -> None:
        self.store = store
        self.documents = documents
        self.staged: dict[tuple[UUID, str, int], tuple[DataKey | None, str | None]] = {}
        self.rotations: dict[UUID, Rotation] = {}

    def _view(self) -> dict[tuple[UUID, str, int], DataKey]:
        found = dict(self.store.data_keys)
        for key, (row, _read) in self.staged.items():
            if row is None:
                found.pop(key, None)
            else:
                found[key] = row
        return found

    def newest(self, case_id: UUID, audience: str) -> DataKey | None:
        mine = [x for (c, a, _v), x in self._view().items() if c == case_id and a == audience]
        return max(mine, key=lambda x: x.key_version, default=None)

    def get(self, case_id: UUID, audience: str, key_version: int) -> DataKey:
        found = self._view().get((case_id, audience, key_version))
        if found is None:
            raise KeyUnavailable(f"data key {audience} v{key_version} of case {case_id} "
                                 f"does not exist", case_id=str(case_id))
        return found

    def for_cases(self, case_ids: Iterable[UUID]) -> Sequence[DataKey]:
        wanted = set(case_ids)
        return [x for x in self._view().values() if x.case_id in wanted]

    def add(self, key: DataKey) -> bool:
        ident = (key.case_id, key.audience, key.key_version)
        if ident in self._view():
            return False
        self._stage(ident, key)
        return True

    def _stage(self, ident: tuple[UUID, str, int], row: DataKey | None) -> None:
        if ident in self.staged:
            read = self.staged[ident][1]
        else:
            stored = self.store.data_keys.get(ident)
            read = "" if stored is None else stored.kek_id
        self.staged[ident] = (row, read)

    def rewrap(self, rewrapped: Sequence[tuple[DataKey, str, bytes]]) -> int:
        done = 0
        for key, kek_id, blob in rewrapped:
            ident = (key.case_id, key.audience, key.key_version)
            current = self._view().get(ident)
            if current is not None and current.kek_id == key.kek_id:
                self._stage(ident, dataclasses.replace(key, kek_id=kek_id, blob=blob))
                done += 1
        return done

    def not_under(self, kek_id: str, *, limit: int,
                  after: tuple[UUID, str, int] | None = None) -> Sequence[DataKey]:
        return sorted((x for x in self._view().values() if x.kek_id != kek_id and (
            after is None or (x.case_id, x.audience, x.key_version) > after)),
            key=lambda x: (x.case_id, x.audience, x.key_version))[:limit]

    def count_not_under(self, kek_id: str) -> int:
        return len(self.not_under(kek_id, limit=1 << 62))

    def kek_ids(self) -> set[str]:
        return {x.kek_id for x in self._view().values()}

    def created_before(self, moment: datetime, *, limit: int,
                       after: tuple[UUID, str] | None = None) -> Sequence[DataKey]:
        newest: dict[tuple[UUID, str], DataKey] = {}
        for x in self._view().values():
            group = (x.case_id, x.audience)
            if group not in newest or x.key_version > newest[group].key_version:
                newest[group] = x
        return sorted((x for x in newest.values() if x.created_at < moment and (
            after is None or (x.case_id, x.audience) > after)),
            key=lambda x: (x.case_id, x.audience))[:limit]

    def count_created_before(self, moment: datetime) -> int:
        return len(self.created_before(moment, limit=1 << 62))

    def superseded(self, *, limit: int) -> Sequence[DataKey]:
        view = self._view()
        used = {(x.case_id, x.audience, x.key_version) for x in self.documents._view().values()}
        return sorted((x for ident, x in view.items() if ident not in used and any(
            c == x.case_id and a == x.audience and v > x.key_version for c, a, v in view)),
            key=lambda x: (x.case_id, x.audience, x.key_version))[:limit]

    def destroy(self, case_id: UUID, audience: str | None = None,
                below: int | None = None) -> int:
        used = {(x.case_id, x.audience, x.key_version) for x in self.documents._view().values()}
        gone = [ident for ident in self._view() if ident[0] == case_id and ident not in used
                and (audience is None or ident[1] == audience)
                and (below is None or ident[2] < below)]
        for ident in gone:
            self._stage(ident, None)
        return len(gone)

    def open_rotation(self, kind: str) -> Rotation | None:
        runs = {**self.store.rotations, **self.rotations}.values()
        return min((r for r in runs if r.kind == kind and r.finished_at is None),
                   key=lambda r: r.started_at, default=None)

    def start_rotation(self, rotation: Rotation) -> None:
        self.rotations[rotation.id] = rotation

    def finish_rotation(self, rotation_id: UUID, at: datetime) -> None:
        run = self.rotations.get(rotation_id) or self.store.rotations[rotation_id]
        self.rotations[rotation_id] = dataclasses.replace(run, finished_at=at)

    def check(self) -> None:
        for ident, (_row, read) in self.staged.items():
            current = self.store.data_keys.get(ident)
            if ("" if current is None else current.kek_id) != read:
                raise ConcurrentUpdate()
        used = {(x.case_id, x.audience, x.key_version) for x in self.documents._view().values()}
        if any(row is None and ident in used for ident, (row, _r) in self.staged.items()):
            raise ConcurrentUpdate()        # the SQL foreign key: a key still in use

    def apply(self) -> None:
        for ident, (row, _read) in self.staged.items():
            if row is None:
                self.store.data_keys.pop(ident, None)
            else:
                self.store.data_keys[ident] = row
        self.store.rotations.update(self.rotations)
        self.clear()

    def clear(self) -> None:
        self.staged.clear()
        self.rotations.clear()


class InMemoryUnitOfWork:
    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store if store is not None else InMemoryStore()

    def __enter__(self) -> Self:
        self.cases = _Cases(self.store)
        self.events = _Events(self.store)
        self.consents = _Consents(self.store)
        self.members = _Members(self.store)
        self.idempotency = _Idempotency(self.store)
        self.forms = _Rows(self.store.forms)
        self.measures = _Rows(self.store.measures)
        self.sessions = _Rows(self.store.sessions)
        self.meetings = _Meetings(self.store)
        self.outbox = _Outbox(self.store)
        self.audit = _Audit(self.store)
        self.documents = _Documents(self.store)
        self.data_keys = _DataKeys(self.store, self.documents)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cases.seen.clear()
        self.consents.pending.clear()
        self.members.pending.clear()
        for rows in (self.forms, self.measures, self.sessions):
            rows.clear()
        self.events.redacted.clear()
        self.idempotency.claimed.clear()
        self.idempotency.pending.clear()
        self.meetings.pending.clear()
        self.outbox.ops.clear()
        self.audit.pending.clear()
        self.documents.clear()
        self.data_keys.clear()

    def commit(self) -> None:
        with self.store.lock:
            touched = [(c, v) for c, v in self.cases.seen.values() if c.events]
            for case, loaded in touched:
                current = self.store.cases.get(case.id)
                if (current.version if current else None) != loaded:
                    raise ConcurrentUpdate()
                if len(case.events) != 1:
                    raise CoordinatorError("a unit of work may change a case only once")
            keys = [(m.case_id, m.actor_id) for m in self.members.pending]
            if len(set(keys)) != len(keys) or set(keys) & {
                    (m.case_id, m.actor_id) for m in self.store.members}:
                raise ConcurrentUpdate()          # the unique (case_id, actor_id) key
            measured = [(m.case_id, m.instrument, m.phase) for m in self.measures.pending]
            if len(set(measured)) != len(measured) or set(measured) & {
                    (m.case_id, m.instrument, m.phase) for m in self.store.measures
                    if m.case_id not in self.measures.erased}:
                raise ConcurrentUpdate()          # the unique (case, instrument, phase) key
            self.documents.check()
            self.data_keys.check()
            self.idempotency.apply()
            subjects = {c.id: c.subject_id for c, _v in self.cases.seen.values()}
            for case, _loaded in touched:
                self.audit.append(auditing.for_case_event(case.events[0], case.subject_id))
            for record in self.consents.pending:
                self.audit.append(auditing.for_consent(record, subjects.get(record.case_id)))
            self.events.apply()                   # an erasure blanks what is stored
            for case, loaded in touched:
                case.version = (loaded or 0) + 1
                event = case.events.pop()
                self.store.events.setdefault(case.id, []).append(
                    CaseEvent(**{**event.__dict__, "seq": case.version}))
                saved = copy.deepcopy(case)
                self.store.cases[case.id] = saved
                self.cases.seen[case.id] = (case, case.version)
            self.store.consents.extend(self.consents.pending)
            self.consents.pending.clear()
            self.store.members.extend(self.members.pending)
            self.members.pending.clear()
            for rows in (self.forms, self.measures, self.sessions):
                rows.apply()
            self.store.meetings.update(self.meetings.pending)
            self.meetings.pending.clear()
            self.outbox.apply()
            self.data_keys.apply()
            self.documents.apply()
            self.audit.flush()


# -- synthetic identifiers ----------------------------------------------------------------
# Never real people: person ids carry Skatteetaten's synthetic month offset (+80), which the
# population register never assigns to a real person; organisation numbers start with 1-7
# (Brønnøysund assigns only 8xx and 9xx); HPR numbers are nine digits from 9xxxxxxxx, far
# beyond the numbers issued so far. The check digits are python-stdnum's.

def _individual_range(year: int) -> range:
    if 1900 <= year <= 1999:
        return range(0, 500)
    if 2000 <= year <= 2039:
        return range(500, 1000)
    raise ValueError("synthetic person ids are made for birth years 1900-2039")


def synthetic_person_id(birth_date: date, *, kind: str = "fnr", seed: int = 0) -> str:
    """A checksum-valid synthetic fødselsnummer (``kind="fnr"``) or D-nummer (``"dnr"``)
    for ``birth_date``; ``seed`` picks among the valid individual numbers."""
    from stdnum.no import fodselsnummer

    if kind not in ("fnr", "dnr"):
        raise ValueError("kind is fnr or dnr")
    day = birth_date.day + (40 if kind == "dnr" else 0)
    stem = f"{day:02d}{birth_date.month + 80:02d}{birth_date.year % 100:02d}"
    individuals = _individual_range(birth_date.year)
    for step in range(len(individuals)):
        ind = individuals[(seed + step * 7919) % len(individuals)]
        nine = f"{stem}{ind:03d}"
        k1 = fodselsnummer.calc_check_digit1(nine)
        if len(k1) != 1:
            continue
        k2 = fodselsnummer.calc_check_digit2(nine + k1)
        if len(k2) == 1:
            return nine + k1 + k2
    raise AssertionError("no valid individual number")  # pragma: no cover - cannot happen


def synthetic_orgnr(seed: int = 0) -> str:
    """A nine-digit organisation number with a valid mod-11 check digit, first digit 1-7."""
    from stdnum.no import orgnr

    n = seed % 70_000_000
    while True:
        eight = f"{1 + n // 10_000_000 % 7}{n % 10_000_000:07d}"
        for check in "0123456789":
            if orgnr.checksum(eight + check) == 0:
                return eight + check
        n += 1


def synthetic_hpr(seed: int = 0) -> str:
    """A nine-digit HPR number from 9xxxxxxxx (HPR numbers have no check digit)."""
    return f"9{seed % 100_000_000:08d}"

