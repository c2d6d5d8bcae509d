"""Pydantic models of the HTTP API (``XRead`` / ``XPage``), all ``extra="forbid"``.

Pydantic stays at this edge: the library's frozen dataclasses are converted here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coordinator.workflows.definition import (
    Cadence,
    Deadline,
    Eligibility,
    FollowUp,
    Migration,
    Outcomes,
    T,
    WorkflowDefinition,
)


class _Read(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthRead(_Read):
    status: Literal["ok"]
    database: Literal["ok"]
    version: str


class ValidationErrorRead(_Read):
    loc: list[str]
    msg: str
    type: str


class ProblemRead(_Read):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(examples=["/problems/unknown-workflow"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    failed_guards: list[str] | None = None
    errors: list[ValidationErrorRead] | None = None


class PilotSummaryRead(_Read):
    key: str
    title: str
    model: int = Field(description="1: Nav + RPH; 2: Nav + cognitive therapist + GP")
    latest_version: int
    versions: list[int]


class PilotPage(_Read):
    items: list[PilotSummaryRead]
    total: int
    limit: int
    offset: int


class EligibilityRead(_Read):
    min_age: int | None
    max_age: int | None
    max_sick_leave_weeks: int | None
    target_groups: list[str]
    requires_employment: bool
    requires_rph_treatment: bool

    @classmethod
    def of(cls, e: Eligibility) -> EligibilityRead:
        return cls(min_age=e.min_age, max_age=e.max_age,
                   max_sick_leave_weeks=e.max_sick_leave_weeks,
                   target_groups=sorted(e.target_groups),
                   requires_employment=e.requires_employment,
                   requires_rph_treatment=e.requires_rph_treatment)


class GuardRead(_Read):
    name: str
    args: list[str]


class TransitionRead(_Read):
    trigger: str
    sources: list[str]
    dest: str | None = Field(description="null: the case stays in its state")
    guards: list[GuardRead]
    effects: list[GuardRead]

    @classmethod
    def of(cls, t: T) -> TransitionRead:
        return cls(trigger=t.trigger, sources=[str(s) for s in t.sources],
                   dest=None if t.dest is None else str(t.dest),
                   guards=[GuardRead(name=g.name, args=list(g.args)) for g in t.guards],
                   effects=[GuardRead(name=e.name, args=list(e.args)) for e in t.effects])


class DeadlineRead(_Read):
    name: str
    anchor: str
    met_by: str
    workdays: int | None
    weeks: int | None

    @classmethod
    def of(cls, d: Deadline) -> DeadlineRead:
        return cls(name=d.name, anchor=d.anchor, met_by=d.met_by, workdays=d.workdays,
                   weeks=d.weeks)


class CadenceRead(_Read):
    meeting: str
    every: str
    participants: list[str]
    with_user: bool
    per_case: bool

    @classmethod
    def of(cls, c: Cadence) -> CadenceRead:
        return cls(meeting=c.meeting, every=c.every, participants=list(c.participants),
                   with_user=c.with_user, per_case=c.per_case)


class FollowUpRead(_Read):
    max_weeks: int | None
    therapy_hours: list[int] | None = Field(description="[min, max] hours per person")
    course_sessions: int | None
    employer_involvement: str

    @classmethod
    def of(cls, f: FollowUp) -> FollowUpRead:
        return cls(max_weeks=f.max_weeks,
                   therapy_hours=list(f.therapy_hours) if f.therapy_hours else None,
                   course_sessions=f.course_sessions,
                   employer_involvement=f.employer_involvement)


class OutcomesRead(_Read):
    measures: list[str]
    required_to_close: bool

    @classmethod
    def of(cls, o: Outcomes) -> OutcomesRead:
        return cls(measures=list(o.measures), required_to_close=o.required_to_close)


class MigrationRead(_Read):
    from_version: int
    states: dict[str, str | None]
    reasons: dict[str, str]

    @classmethod
    def of(cls, m: Migration) -> MigrationRead:
        return cls(from_version=m.from_version,
                   states={str(k): None if v is None else str(v) for k, v in m.states.items()},
                   reasons={str(k): v for k, v in m.reasons.items()})


class PilotRead(_Read):
    """One definition version of a pilot: everything that varies between pilots."""

    key: str
    version: int
    versions: list[int]
    title: str
    model: int
    states: list[str]
    initial: str
    final: list[str]
    triggers: list[str]
    transitions: list[TransitionRead]
    referrers: list[str]
    eligibility: EligibilityRead
    deadlines: list[DeadlineRead]
    cadences: list[CadenceRead]
    get_to_know_participants: list[str]
    follow_up: FollowUpRead
    closing_sides: list[str]
    outcomes: OutcomesRead
    migrates_from: MigrationRead | None
    sources: dict[str, str] = Field(description="topic -> citation of the domain brief")

    @classmethod
    def of(cls, d: WorkflowDefinition, versions: list[int]) -> PilotRead:
        return cls(
            key=d.key, version=d.version, versions=versions, title=d.title, model=d.model,
            states=[str(s) for s in d.states], initial=str(d.initial),
            final=[str(s) for s in d.final], triggers=list(d.triggers()),
            transitions=[TransitionRead.of(t) for t in d.transitions],
            referrers=list(d.referrers), eligibility=EligibilityRead.of(d.eligibility),
            deadlines=[DeadlineRead.of(x) for x in d.deadlines],
            cadences=[CadenceRead.of(c) for c in d.cadences],
            get_to_know_participants=list(d.get_to_know_participants),
            follow_up=FollowUpRead.of(d.follow_up), closing_sides=list(d.closing_sides),
            outcomes=OutcomesRead.of(d.outcomes),
            migrates_from=MigrationRead.of(d.migrates_from) if d.migrates_from else None,
            sources=dict(d.sources),
        )
