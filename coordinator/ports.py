"""Ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from coordinator.audit.checkpoint import Checkpoint, CheckpointSigner
from coordinator.audit.events import AuditEvent, SealedEvent
from coordinator.audit.merkle import Head
from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC time."""
        ...


class CaseRepository(Protocol):
    def add(self, case: Case) -> None: ...

    def get(self, case_id: UUID) -> Case:
        """Raises: CaseNotFound."""
        ...

    def list(self, *, pilot: str | None = None, state: str | None = None,
             workflow_version: int | None = None, after: UUID | None = None,
             limit: int = 50, member: tuple[str, str] | None = None,
             subject: str | None = None) -> Sequence[Case]:
        """Cases ordered by id, the page after ``after`` (keyset pagination); ``member``
        (actor id, role) keeps those whose team has that member, ``subject`` those about
        that person."""
        ...

    def count(self) -> int: ...


class EventRepository(Protocol):
    def history(self, case_id: UUID) -> Sequence[CaseEvent]: ...


class ConsentRepository(Protocol):
    def add(self, record: ConsentRecord) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[ConsentRecord]: ...

    def for_pilot(self, pilot: str, *, since: datetime | None = None,
                  until: datetime | None = None, limit: int = 1000) -> Sequence[ConsentRecord]:
        """Committed records of the pilot's cases, oldest first."""
        ...


class AuditLog(Protocol):
    """Chained audit events. ``append`` writes on commit, in the same transaction."""

    def append(self, event: AuditEvent) -> None: ...

    def events(self, *, stream: str | None = None, since: datetime | None = None,
               streams: Iterable[str] | None = None) -> Iterator[SealedEvent]:
        """Ordered by (stream, seq), streamed."""
        ...

    def stream_after(self, stream: str, seq: int) -> Iterator[SealedEvent]: ...

    def query(self, *, case_id: UUID | None = None, kinds: Iterable[str] | None = None,
              since: datetime | None = None, until: datetime | None = None,
              person_key: str | None = None, limit: int | None = None) -> list[SealedEvent]:
        """Ordered by time."""
        ...

    def heads(self, stream: str | None = None) -> dict[str, Head]: ...

    def count(self) -> int: ...

    def after_id(self, event_id: int) -> list[SealedEvent]:
        """Events with a larger row id, in (stream, seq) order (a read hint)."""
        ...

    def max_id(self) -> int: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def checkpoint_heads(self, stream: str | None = None) -> dict[int, dict[str, Head]]: ...

    def add_checkpoint(self, checkpoint: Checkpoint, delta: Mapping[str, Head]) -> None:
        """Raises ConcurrentUpdate on commit when another process wrote that seq first."""
        ...


class MemberRepository(Protocol):
    def add(self, member: Member) -> None:
        """Written on commit; a second row for the same (case, actor) raises
        ConcurrentUpdate there."""
        ...

    def for_case(self, case_id: UUID) -> Sequence[Member]:
        """The team, in the order its members were added (pending ones included)."""
        ...


class UnitOfWork(Protocol):
    @property
    def cases(self) -> CaseRepository: ...

    @property
    def events(self) -> EventRepository: ...

    @property
    def consents(self) -> ConsentRepository: ...

    @property
    def members(self) -> MemberRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def commit(self) -> None:
        """Persist changes and the events of every touched case, atomically.

        Raises: ConcurrentUpdate when another writer changed a touched case first."""
        ...


__all__ = ["AuditLog", "CaseRepository", "CheckpointSigner", "Clock", "ConsentRepository",
           "EventRepository", "MemberRepository", "UnitOfWork"]
