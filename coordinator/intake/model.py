"""Records of the intake capability: idempotency, forms, measures, therapy sessions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from coordinator.workflows.facts import Profile

SESSION_KINDS = ("individual", "group", "course")


@dataclass(frozen=True)
class IdempotencyKey:
    """``source`` scopes ``key`` (the caller); ``request_hash`` fingerprints the body."""

    source: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class IdempotencyRecord:
    source: str
    key: str
    request_hash: str
    state: str                         # processing, done
    created_at: datetime
    case_id: UUID | None = None
    response: Mapping[str, Any] = field(default_factory=dict)   # the receipt, as JSON
    completed_at: datetime | None = None


@dataclass(frozen=True)
class FormResponse:
    """A completed form (the kartleggingsskjema) attached to a case: coded answers only."""

    id: UUID
    case_id: UUID
    questionnaire: str                 # canonical URL of the Questionnaire, with |version
    answers: Mapping[str, Any]         # linkId -> answer (codes, numbers, booleans, dates)
    received_at: datetime
    recorded_by: str
    recorded_role: str


@dataclass(frozen=True)
class MeasureRecord:
    id: UUID
    case_id: UUID
    instrument: str                    # phq9, gad7, work_status
    phase: str                         # start, end
    recorded_at: datetime
    recorded_by: str
    recorded_role: str
    items: tuple[int, ...] = ()
    total: int | None = None
    band: str | None = None
    value: str | None = None           # the work status code


@dataclass(frozen=True)
class TherapySession:
    """One logged therapy session. Its free-text summary, if any, is an encrypted
    health-side document with the session's id (``Coordinator.documents``)."""

    id: UUID
    case_id: UUID
    held_on: date
    minutes: int
    kind: str                          # individual, group, course
    therapist_id: str
    recorded_at: datetime


@dataclass(frozen=True)
class StartMeasures:
    """Start measures sent with a referral."""

    scores: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # phq9/gad7 items
    work_status: str | None = None


@dataclass(frozen=True)
class Referral:
    """A GP referral, validated and reduced to what the core needs. No national id: the
    adapter has checked it against the birth date and drops it."""

    pilot: str
    profile: Profile
    organisation: str                  # orgnr of the referring GP office
    practitioner_hpr: str
    forms: tuple[tuple[str, Mapping[str, Any]], ...] = ()    # (questionnaire, answers)
    start: StartMeasures = StartMeasures()


@dataclass(frozen=True)
class ReferralReceipt:
    case_id: UUID
    pilot: str
    workflow_version: int
    state: str
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"case_id": str(self.case_id), "pilot": self.pilot,
                "workflow_version": self.workflow_version, "state": self.state}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, replayed: bool) -> ReferralReceipt:
        return cls(UUID(str(data["case_id"])), str(data["pilot"]),
                   int(data["workflow_version"]), str(data["state"]), replayed)


@dataclass(frozen=True)
class HoursUsed:
    case_id: UUID
    sessions: int
    minutes: int
    range_hours: tuple[int, int] | None      # the pilot's (min, max), None if not stated
    status: str                              # no_range, below_range, within_range, above_range

    @property
    def hours(self) -> float:
        return self.minutes / 60
