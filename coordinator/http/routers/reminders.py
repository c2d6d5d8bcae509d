"""Oversight of reminders for the prosjektleder (permission ``oversee_reminders``): open
cases with a passed deadline, and messages given up after the maximum number of attempts.
Both answer ids and metadata only, never case content.

- ``GET /api/v1/reminders/overdue``
- ``GET /api/v1/reminders/dead``
- ``POST /api/v1/reminders/dead/{outbox_id}/requeue``
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from coordinator.http.auth import CurrentActor
from coordinator.http.case_schemas import KEY_PATTERN
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, Offset, next_url
from coordinator.http.routers._problems import problems
from coordinator.scheduling.outbox import OutboxRow

router = APIRouter(prefix="/api/v1/reminders", tags=["reminders"])
Pilot = Annotated[str | None, Query(pattern=KEY_PATTERN)]
T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OverdueRead(_Model):
    case_id: UUID
    pilot: str
    state: str
    deadline: str = Field(description="The deadline's name in the pilot's workflow")
    due_at: datetime


class OverduePage(_Model):
    items: list[OverdueRead]
    limit: int
    offset: int
    total: int
    next: str | None


class DeadLetterRead(_Model):
    id: UUID
    case_id: UUID | None
    pilot: str
    kind: str
    channel: str
    recipient: str
    due_at: datetime
    status: str
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, r: OutboxRow) -> DeadLetterRead:
        return cls(id=r.id, case_id=r.case_id, pilot=r.pilot, kind=r.kind, channel=r.channel,
                   recipient=r.recipient, due_at=r.due_at, status=r.status,
                   attempts=r.attempts, last_error=r.last_error)


class DeadLetterPage(_Model):
    items: list[DeadLetterRead]
    limit: int
    offset: int
    next: str | None


def _slice(items: Sequence[T], limit: int, offset: int,
           request: Request) -> tuple[Sequence[T], str | None]:
    more = offset + limit < len(items)
    return items[offset:offset + limit], \
        next_url(request, offset=offset + limit) if more else None


@router.get("/overdue", response_model=OverduePage, responses=problems(403, 404))
def overdue(actor: CurrentActor, coordinator: CoordinatorDep, request: Request,
            pilot: Pilot = None, limit: Limit = DEFAULT_LIMIT,
            offset: Offset = 0) -> OverduePage:
    """Open cases whose deadline has passed unmet, by pilot and due time (404: no such
    pilot)."""
    found = coordinator.meetings.overdue(pilot, actor=actor)
    page, nxt = _slice(found, limit, offset, request)
    return OverduePage(items=[OverdueRead(case_id=i.case_id, pilot=i.pilot, state=i.state,
                                          deadline=i.deadline, due_at=i.due_at)
                              for i in page],
                       limit=limit, offset=offset, total=len(found), next=nxt)


@router.get("/dead", response_model=DeadLetterPage, responses=problems(403))
def dead_letters(actor: CurrentActor, coordinator: CoordinatorDep, request: Request,
                 pilot: Pilot = None, limit: Limit = DEFAULT_LIMIT,
                 offset: Offset = 0) -> DeadLetterPage:
    """Messages given up after the maximum number of attempts, by due time."""
    found = coordinator.meetings.dead_letters(pilot, actor=actor, limit=limit + 1,
                                              offset=offset)
    more = len(found) > limit
    return DeadLetterPage(items=[DeadLetterRead.of(r) for r in found[:limit]], limit=limit,
                          offset=offset,
                          next=next_url(request, offset=offset + limit) if more else None)


@router.post("/dead/{outbox_id}/requeue", response_model=DeadLetterRead,
             responses=problems(403, 404))
def requeue(outbox_id: UUID, actor: CurrentActor,
            coordinator: CoordinatorDep) -> DeadLetterRead:
    """Give a dead message new attempts, due now (404: no such dead message)."""
    return DeadLetterRead.of(coordinator.meetings.requeue(outbox_id, actor=actor))
