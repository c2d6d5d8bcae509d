"""Fakes for tests of code that uses coordinator: a settable clock and an in-memory store.

``InMemoryUnitOfWork`` keeps rows as snapshots, so an uncommitted change is lost on exit
and a commit on a case someone else changed first raises ``ConcurrentUpdate`` — the same
contract as the SQL unit of work (tests/integration/test_repository_contract.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from uuid import UUID

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
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cases.seen.clear()
        self.consents.pending.clear()
        self.members.pending.clear()

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
