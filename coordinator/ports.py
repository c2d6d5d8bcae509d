"""Ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

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

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def commit(self) -> None:
        """Persist changes and the events of every touched case, atomically.

        Raises: ConcurrentUpdate when another writer changed a touched case first."""
        ...
