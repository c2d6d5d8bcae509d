"""Ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.intake.model import (
    FormResponse,
    IdempotencyRecord,
    MeasureRecord,
    TherapySession,
)


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


class IdempotencyRepository(Protocol):
    def get(self, source: str, key: str) -> IdempotencyRecord | None: ...

    def claim(self, record: IdempotencyRecord) -> bool:
        """Insert ``record`` (state processing) at once; False if the key is taken. The
        claim is visible to others once the unit of work commits."""
        ...

    def complete(self, source: str, key: str, case_id: UUID, response: dict[str, object],
                 at: datetime) -> None:
        """Mark the claim done with its answer, on commit."""
        ...

    def release(self, source: str, key: str) -> None:
        """Delete the claim (a failed request), on commit."""
        ...


class FormRepository(Protocol):
    def add(self, form: FormResponse) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[FormResponse]: ...


class MeasureRepository(Protocol):
    def add(self, measure: MeasureRecord) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[MeasureRecord]: ...


class SessionRepository(Protocol):
    def add(self, session: TherapySession) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[TherapySession]: ...


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
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def forms(self) -> FormRepository: ...

    @property
    def measures(self) -> MeasureRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def commit(self) -> None:
        """Persist changes and the events of every touched case, atomically.

        Raises: ConcurrentUpdate when another writer changed a touched case first."""
        ...
