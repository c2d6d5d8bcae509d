"""The therapist's work on a case, over ``intake.Intake``: log therapy sessions, see the
hours used against the pilot's range, and record outcome measures (PHQ-9, GAD-7, work
status) at the start or the end.

- ``POST /api/v1/cases/{id}/sessions``: log a session (the therapist on the team), with
  an optional summary stored as an encrypted document
- ``GET /api/v1/cases/{id}/hours``: hours used vs the pilot's range (health roles)
- ``POST /api/v1/cases/{id}/measures``: record measures (scores: health roles; work
  status: any team member)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from coordinator.cases.document_model import MAX_TEXT
from coordinator.http.auth import CurrentActor
from coordinator.http.deps import CoordinatorDep
from coordinator.http.routers._problems import problems
from coordinator.intake.model import MeasureRecord
from coordinator.intake.service import MAX_SESSION_MINUTES, Intake

router = APIRouter(prefix="/api/v1", tags=["therapy"])

Instrument = Literal["phq9", "gad7"]
WorkStatus = Literal["in_work", "graded_sick_leave", "full_sick_leave", "study", "benefits"]
ItemAnswers = Annotated[list[Annotated[int, Field(ge=0, le=3)]], Field(max_length=9)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionWrite(_Model):
    held_on: date
    minutes: Annotated[int, Field(ge=1, le=MAX_SESSION_MINUTES)]
    kind: Literal["individual", "group", "course"]
    summary: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = Field(
        default=None, description="Stored only encrypted, as a health-side document "
        "(GET /cases/{id}/documents/{session id})")


class SessionRead(_Model):
    id: UUID
    case_id: UUID
    held_on: date
    minutes: int
    kind: str
    therapist_id: str
    recorded_at: datetime
    summary_document: UUID | None = Field(
        default=None, description="The encrypted summary's document id, if one was given")


class HoursRead(_Model):
    case_id: UUID
    sessions: int
    minutes: int
    hours: float
    range_hours: list[int] | None = Field(
        description="The pilot's range of therapy hours [min, max]; null if not stated")
    status: Literal["no_range", "below_range", "within_range", "above_range"]


class MeasuresWrite(_Model):
    phase: Literal["start", "end"]
    scores: dict[Instrument, ItemAnswers] | None = Field(
        default=None, description="Item answers (0-3) per instrument: 9 for phq9, 7 for gad7",
        examples=[{"gad7": [1, 1, 2, 1, 0, 1, 1]}])
    work_status: WorkStatus | None = None


class MeasureRead(_Model):
    id: UUID
    instrument: str
    phase: str
    recorded_at: datetime
    recorded_by: str
    items: list[int]
    total: int | None
    band: str | None
    value: str | None

    @classmethod
    def of(cls, r: MeasureRecord) -> MeasureRead:
        return cls(id=r.id, instrument=r.instrument, phase=r.phase,
                   recorded_at=r.recorded_at, recorded_by=r.recorded_by, items=list(r.items),
                   total=r.total, band=r.band, value=r.value)


class MeasuresRead(_Model):
    case_id: UUID
    items: list[MeasureRead]


@router.post("/cases/{case_id}/sessions", response_model=SessionRead,
             status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, 410, body=True))
def log_session(case_id: UUID, body: SessionWrite, actor: CurrentActor,
                coordinator: CoordinatorDep) -> SessionRead:
    """Log a held therapy session (the therapist on the case's team). Hours may pass
    the pilot's range; ``/hours`` shows where the case stands. A ``summary`` is stored
    only encrypted, as a health-side document with the session's id (410 when the
    case's documents were erased)."""
    s = Intake(coordinator).log_session(case_id, actor, held_on=body.held_on,
                                        minutes=body.minutes, kind=body.kind,
                                        summary=body.summary)
    return SessionRead(id=s.id, case_id=s.case_id, held_on=s.held_on, minutes=s.minutes,
                       kind=s.kind, therapist_id=s.therapist_id, recorded_at=s.recorded_at,
                       summary_document=s.id if body.summary is not None else None)


@router.get("/cases/{case_id}/hours", response_model=HoursRead,
            responses=problems(403, 404))
def hours_used(case_id: UUID, actor: CurrentActor, coordinator: CoordinatorDep) -> HoursRead:
    """Therapy sessions and hours logged on the case against the pilot's range
    (health roles on the team)."""
    h = Intake(coordinator).hours_used(case_id, actor)
    return HoursRead(case_id=h.case_id, sessions=h.sessions, minutes=h.minutes,
                     hours=h.hours,
                     range_hours=None if h.range_hours is None else list(h.range_hours),
                     status=h.status)  # type: ignore[arg-type]


@router.post("/cases/{case_id}/measures", response_model=MeasuresRead,
             status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, 409, 410, body=True))
def record_measures(case_id: UUID, body: MeasuresWrite, actor: CurrentActor,
                    coordinator: CoordinatorDep) -> MeasuresRead:
    """Record outcome measures for a phase. Symptom scores need a health role; the work
    status any team member. When this completes the pilot's measures for the phase, the
    outcome is marked on the case. Each instrument is recorded once per phase (409). An
    erased case takes no measures (410)."""
    records = Intake(coordinator).record_measures(
        case_id, body.phase, actor,
        scores={k: list(v) for k, v in (body.scores or {}).items()} or None,
        work_status=body.work_status)
    return MeasuresRead(case_id=case_id, items=[MeasureRead.of(r) for r in records])
