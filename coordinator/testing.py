"""Fakes for tests of code that uses coordinator: a settable clock and an in-memory store.

``InMemoryUnitOfWork`` keeps rows as snapshots, so an uncommitted change is lost on exit
and a commit on a case someone else changed first raises ``ConcurrentUpdate`` — the same
contract as the SQL unit of work (tests/integration/test_repository_contract.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from uuid import UUID

from coordinator.audit.canonical import genesis
from coordinator.audit.checkpoint import Checkpoint
from coordinator.audit.events import AuditEvent, SealedEvent, seal
from coordinator.audit.merkle import Head
from coordinator.cases import auditing
from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.errors import CaseNotFound, ConcurrentUpdate, CoordinatorError


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
    audit: dict[str, list[SealedEvent]] = field(default_factory=dict)
    heads: dict[str, Head] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_heads: dict[int, dict[str, Head]] = field(default_factory=dict)
    audit_last_id: int = 0
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

    def history(self, case_id: UUID) -> Sequence[CaseEvent]:
        return list(self.store.events.get(case_id, []))


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


class InMemoryUnitOfWork:
    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store if store is not None else InMemoryStore()

    def __enter__(self) -> Self:
        self.cases = _Cases(self.store)
        self.events = _Events(self.store)
        self.consents = _Consents(self.store)
        self.members = _Members(self.store)
        self.audit = _Audit(self.store)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cases.seen.clear()
        self.consents.pending.clear()
        self.members.pending.clear()
        self.audit.pending.clear()

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
            subjects = {c.id: c.subject_id for c, _v in self.cases.seen.values()}
            for case, _loaded in touched:
                self.audit.append(auditing.for_case_event(case.events[0], case.subject_id))
            for record in self.consents.pending:
                self.audit.append(auditing.for_consent(record, subjects.get(record.case_id)))
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
            self.audit.flush()
