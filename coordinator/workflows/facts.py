"""What guards see: a frozen snapshot of one case at one moment. Pure data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from coordinator.workflows.definition import WorkflowDefinition


@dataclass(frozen=True)
class Profile:
    """The eligibility-relevant facts about the person, given with the referral."""

    birth_date: date
    problems: frozenset[str]
    employed: bool = True
    sick_leave_start: date | None = None         # None: not on sick leave (at risk)
    sick_leave_grade: str = "none"               # none, pending, partial, full
    in_rph_treatment: bool = False

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))

    def sick_leave_weeks_on(self, day: date) -> int | None:
        if self.sick_leave_start is None:
            return None
        return max(0, (day - self.sick_leave_start).days) // 7

    def to_json(self) -> dict[str, Any]:
        return {
            "birth_date": self.birth_date.isoformat(),
            "problems": sorted(self.problems),
            "employed": self.employed,
            "sick_leave_start": (self.sick_leave_start.isoformat()
                                 if self.sick_leave_start else None),
            "sick_leave_grade": self.sick_leave_grade,
            "in_rph_treatment": self.in_rph_treatment,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        start = data.get("sick_leave_start")
        return cls(
            birth_date=date.fromisoformat(data["birth_date"]),
            problems=frozenset(data["problems"]),
            employed=bool(data.get("employed", True)),
            sick_leave_start=date.fromisoformat(start) if start else None,
            sick_leave_grade=str(data.get("sick_leave_grade", "none")),
            in_rph_treatment=bool(data.get("in_rph_treatment", False)),
        )


@dataclass(frozen=True)
class Meeting:
    kind: str
    at: datetime
    attendees: tuple[str, ...]


@dataclass(frozen=True)
class CaseRecord:
    """Facts the workflow has recorded on the case, updated only by effects."""

    episode: int = 1
    milestones: Mapping[str, datetime] = field(default_factory=dict)   # trigger -> first fired
    meetings: tuple[Meeting, ...] = ()
    plan_visible_to: tuple[str, ...] | None = None
    outcomes: frozenset[str] = frozenset()          # phases recorded: start, end
    tracks_finished: frozenset[str] = frozenset()   # sides done: health, nav

    def with_milestone(self, trigger: str, at: datetime) -> CaseRecord:
        if trigger in self.milestones:
            return self
        return replace(self, milestones={**self.milestones, trigger: at})

    def to_json(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "milestones": {k: v.isoformat() for k, v in sorted(self.milestones.items())},
            "meetings": [
                {"kind": m.kind, "at": m.at.isoformat(), "attendees": list(m.attendees)}
                for m in self.meetings
            ],
            "plan_visible_to": (list(self.plan_visible_to)
                                if self.plan_visible_to is not None else None),
            "outcomes": sorted(self.outcomes),
            "tracks_finished": sorted(self.tracks_finished),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CaseRecord:
        if not data:
            return cls()
        plan = data.get("plan_visible_to")
        return cls(
            episode=int(data.get("episode", 1)),
            milestones={k: datetime.fromisoformat(v)
                        for k, v in data.get("milestones", {}).items()},
            meetings=tuple(
                Meeting(m["kind"], datetime.fromisoformat(m["at"]), tuple(m["attendees"]))
                for m in data.get("meetings", ())
            ),
            plan_visible_to=tuple(plan) if plan is not None else None,
            outcomes=frozenset(data.get("outcomes", ())),
            tracks_finished=frozenset(data.get("tracks_finished", ())),
        )


@dataclass(frozen=True)
class Facts:
    """Everything a guard may look at. ``consents`` holds live (purpose, party) scopes."""

    now: datetime
    state: str
    referrer: str
    profile: Profile
    record: CaseRecord
    consents: frozenset[tuple[str, str]]
    definition: WorkflowDefinition
    args: Mapping[str, Any] = field(default_factory=dict)
