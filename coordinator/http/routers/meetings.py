"""Meetings on a case, over ``Coordinator.meetings``: plan, move, cancel, record as held.

- ``GET /api/v1/cases/{id}/meetings``: the case's meetings (team members, the person)
- ``POST /api/v1/cases/{id}/meetings``: schedule one (team members)
- ``POST /api/v1/meetings/{id}/reschedule`` | ``/cancel`` | ``/held``
- ``GET /api/v1/me/meetings``: meetings on the caller's cases that invite the caller's role

Authorisation lives in the library: a meeting of a case the caller may not know of is a 404
like a missing one; a change of a held or cancelled meeting is a 409.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from coordinator.cases.meetings import Meeting
from coordinator.cases.model import Actor
from coordinator.errors import MeetingNotFound, NotCaseMember
from coordinator.http.auth import CurrentActor
from coordinator.http.case_schemas import KEY_PATTERN
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, Offset, next_url
from coordinator.http.routers._problems import problems
from coordinator.meetings import ScheduleMeeting
from coordinator.service import Coordinator

router = APIRouter(prefix="/api/v1", tags=["meetings"])

Role = Annotated[str, Field(pattern=KEY_PATTERN)]
Roles = Annotated[list[Role], Field(min_length=1, max_length=20)]
MeetingStatus = Literal["scheduled", "cancelled", "held"]
CASES_PER_READ = 500


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeetingRead(_Model):
    id: UUID
    case_id: UUID
    kind: str = Field(description="get_to_know, intake, follow_up, employer, closing, …")
    starts_at: datetime
    ends_at: datetime
    participants: list[str] = Field(description="The roles invited")
    status: MeetingStatus
    sequence: int = Field(description="Bumped by every change (iCalendar SEQUENCE)")
    attendees: list[str] | None = Field(description="The roles that attended, once held")

    @classmethod
    def of(cls, m: Meeting) -> MeetingRead:
        return cls(id=m.id, case_id=m.case_id, kind=m.kind, starts_at=m.starts_at,
                   ends_at=m.ends_at, participants=list(m.participants),
                   status=m.status,  # type: ignore[arg-type]
                   sequence=m.sequence,
                   attendees=None if m.attendees is None else list(m.attendees))


class MeetingPage(_Model):
    items: list[MeetingRead]
    limit: int
    offset: int
    total: int
    next: str | None


class MeetingWrite(_Model):
    kind: Annotated[str, Field(pattern=KEY_PATTERN, examples=["follow_up"])]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: Roles = Field(examples=[["bruker", "nav_veileder"]])


class RescheduleWrite(_Model):
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class HeldWrite(_Model):
    attendees: Roles = Field(examples=[["bruker", "nav_veileder"]])


@contextmanager
def _known(meeting_id: UUID) -> Iterator[None]:
    """A meeting of a case the caller may not know of is a missing meeting: the answer
    must name neither that case nor that the meeting exists."""
    try:
        yield
    except NotCaseMember:
        raise MeetingNotFound(meeting_id) from None


def _page(meetings: Sequence[Meeting], limit: int, offset: int,
          request: Request) -> MeetingPage:
    more = offset + limit < len(meetings)
    return MeetingPage(items=[MeetingRead.of(m) for m in meetings[offset:offset + limit]],
                       limit=limit, offset=offset, total=len(meetings),
                       next=next_url(request, offset=offset + limit) if more else None)


def _ordered(meetings: Sequence[Meeting]) -> list[Meeting]:
    return sorted(meetings, key=lambda m: (m.starts_at, str(m.id)))


@router.get("/cases/{case_id}/meetings", response_model=MeetingPage,
            responses=problems(403, 404))
def case_meetings(case_id: UUID, actor: CurrentActor, coordinator: CoordinatorDep,
                  request: Request, status: MeetingStatus | None = None,
                  limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> MeetingPage:
    """The case's meetings by start time, optionally only those with ``status``."""
    found = [m for m in coordinator.meetings.for_case(case_id, actor=actor)
             if status is None or m.status == status]
    return _page(_ordered(found), limit, offset, request)


@router.post("/cases/{case_id}/meetings", response_model=MeetingRead,
             status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, 409, body=True))
def schedule(case_id: UUID, body: MeetingWrite, actor: CurrentActor,
             coordinator: CoordinatorDep, response: Response) -> MeetingRead:
    """Plan a meeting in the future (at most 8 hours long) and invite roles; each invited
    team member (and the person, when ``bruker`` is invited) gets an invitation."""
    meeting = coordinator.meetings.schedule(ScheduleMeeting(
        case_id, body.kind, body.starts_at, body.ends_at, tuple(body.participants), actor))
    response.headers["Location"] = f"/api/v1/cases/{case_id}/meetings"
    return MeetingRead.of(meeting)


@router.post("/meetings/{meeting_id}/reschedule", response_model=MeetingRead,
             responses=problems(403, 404, 409, body=True))
def reschedule(meeting_id: UUID, body: RescheduleWrite, actor: CurrentActor,
               coordinator: CoordinatorDep) -> MeetingRead:
    """Move a scheduled meeting; the invited get an updated invitation."""
    with _known(meeting_id):
        return MeetingRead.of(coordinator.meetings.reschedule(
            meeting_id, body.starts_at, body.ends_at, actor=actor))


@router.post("/meetings/{meeting_id}/cancel", response_model=MeetingRead,
             responses=problems(403, 404, 409))
def cancel(meeting_id: UUID, actor: CurrentActor, coordinator: CoordinatorDep) -> MeetingRead:
    """Cancel a scheduled meeting; the invited get a cancellation."""
    with _known(meeting_id):
        return MeetingRead.of(coordinator.meetings.cancel(meeting_id, actor=actor))


@router.post("/meetings/{meeting_id}/held", response_model=MeetingRead,
             responses=problems(403, 404, 409, body=True))
def held(meeting_id: UUID, body: HeldWrite, actor: CurrentActor,
         coordinator: CoordinatorDep) -> MeetingRead:
    """Record that the meeting was held and which roles attended. Where the pilot's
    workflow has a step for this kind of meeting (the get-to-know meeting …) the step is
    taken, and its rules judge the attendees (409 when they are not met)."""
    with _known(meeting_id):
        return MeetingRead.of(coordinator.meetings.hold(meeting_id, body.attendees,
                                                        actor=actor))


def _invites(m: Meeting, actor: Actor) -> bool:
    return actor.role in m.participants


@router.get("/me/meetings", response_model=MeetingPage, responses=problems())
def my_meetings(actor: CurrentActor, coordinator: CoordinatorDep, request: Request,
                status: MeetingStatus | None = "scheduled",
                since: Annotated[AwareDatetime | None, Query(
                    description="Only meetings ending after this time (default: now)")]
                = None,
                limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> MeetingPage:
    """Meetings on the caller's cases that invite the caller's role, by start time:
    by default the scheduled ones that have not ended yet."""
    after = since or coordinator.clock.now()
    found = [m for m in _meetings_of_my_cases(coordinator, actor)
             if _invites(m, actor) and m.ends_at > after
             and (status is None or m.status == status)]
    return _page(_ordered(found), limit, offset, request)


def _meetings_of_my_cases(coordinator: Coordinator, actor: Actor) -> list[Meeting]:
    """Every meeting of every case the caller is on (one read per case: fine for a
    caseload, not for thousands of cases)."""
    out: list[Meeting] = []
    after: UUID | None = None
    while True:
        cases = coordinator.my_cases(actor, after=after, limit=CASES_PER_READ)
        for case in cases:
            out += coordinator.meetings.for_case(case.id, actor=actor)
        if len(cases) < CASES_PER_READ:
            return out
        after = cases[-1].id
