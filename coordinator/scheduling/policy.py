"""Reminder rules: a pilot's deadlines and cadences plus one case's facts → due reminders.

Pure: time is an argument, nothing is read or written. Times are computed in
Europe/Oslo on Norwegian workdays (``workflows.deadlines``) and returned in UTC. The
rules (docs/reminders.md has the table per pilot):

- **Deadline due soon**: 09:00 on the last workday a pending deadline counts, to the team.
- **Deadline overdue**: at the deadline itself (local midnight after its last day).
- **Meeting reminder**: 09:00 on the workday before a scheduled meeting, to its
  participants (not when that moment has already passed).
- **Cadence due**: for per-case cadences while the case is in follow-up, 09:00 on the
  first workday on or after one period since the last such meeting (or since the plan).

Each reminder has a ``key`` that names what it is about, so planning again after a change
keeps the rows that still apply and retracts the rest (``replace_planned``). A closed case
plans nothing. Retry back-off for failed sends also lives here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from uuid import UUID

from coordinator.cases.meetings import HELD, SCHEDULED, Meeting
from coordinator.workflows import deadlines
from coordinator.workflows.definition import CLOSED_STATES, Cadence, State, WorkflowDefinition
from coordinator.workflows.facts import CaseRecord, Profile

TEAM = "team"               # every member of the case's team
PLAN_AGREED = "agree_plan"  # the trigger whose first firing starts per-case cadences

# Cadence meetings that are recorded under another meeting kind.
CADENCE_MEETING_KIND = {"weekly_follow_up": "follow_up"}
_DAYS = {"weekly": 7, "twice_weekly": 3}
_MONTHS = {"monthly": 1, "half_yearly": 6, "annual": 12}

MAX_ATTEMPTS = 8
_BACKOFF_BASE = timedelta(seconds=30)
_BACKOFF_CAP = timedelta(hours=6)


@dataclass(frozen=True)
class Planned:
    """One reminder: ``roles`` receive it at ``due_at`` (UTC)."""

    key: str
    kind: str               # deadline_due_soon, deadline_overdue, meeting_reminder, cadence_due
    due_at: datetime
    roles: tuple[str, ...]
    meeting_id: UUID | None = None
    data: Mapping[str, str] = field(default_factory=dict)


def plan(d: WorkflowDefinition, *, state: str, referred_at: datetime, profile: Profile,
         record: CaseRecord, meetings: Sequence[Meeting], now: datetime) -> list[Planned]:
    """Every reminder the case should have, due now or later. Empty for a closed case."""
    if state in CLOSED_STATES:
        return []
    out = [*_deadline_reminders(d, state, referred_at, profile, record, now),
           *_meeting_reminders(meetings, now)]
    if state == State.FOLLOW_UP:
        out += _cadence_reminders(d.cadences, record, meetings, now)
    return out


def inputs(d: WorkflowDefinition, *, state: str, referred_at: datetime, profile: Profile,
           record: CaseRecord) -> tuple[object, ...]:
    """What ``plan`` reads of a case, besides its meetings and the time: the state, the
    referral, the profile, the milestones that a deadline or cadence of ``d`` looks at,
    and the recorded meetings. A change that leaves these equal leaves the plan as it
    was, so the outbox need not be planned again (tests/unit/test_reminder_rules.py checks
    that the rest of the record does not change the plan)."""
    watched = {m for dl in d.deadlines
               for m in (dl.anchor.removeprefix("trigger:"), dl.met_by)}
    if any(c.per_case for c in d.cadences):
        watched.add(PLAN_AGREED)
    return (state, referred_at, profile,
            {k: v for k, v in record.milestones.items() if k in watched}, record.meetings)


def _deadline_reminders(d: WorkflowDefinition, state: str, referred_at: datetime,
                        profile: Profile, record: CaseRecord,
                        now: datetime) -> Iterable[Planned]:
    for s in deadlines.statuses(d, state=state, referred_at=referred_at, profile=profile,
                                record=record, now=now):
        if s.due_at is None or s.status not in ("pending", "overdue"):
            continue
        data = {"deadline": s.name, "due_at": s.due_at.isoformat()}
        soon = deadlines.office_morning(
            deadlines.workday_on_or_before(deadlines.last_counted_day(s.due_at)))
        if soon < s.due_at:
            yield Planned(f"deadline:{s.name}:soon:{s.due_at.isoformat()}",
                          "deadline_due_soon", soon, (TEAM,), data=data)
        yield Planned(f"deadline:{s.name}:overdue:{s.due_at.isoformat()}",
                      "deadline_overdue", s.due_at, (TEAM,), data=data)


def meeting_reminder_at(starts_at: datetime) -> datetime:
    """09:00 Oslo time on the last workday before the meeting's day."""
    day = starts_at.astimezone(deadlines.OSLO).date() - timedelta(days=1)
    return deadlines.office_morning(deadlines.workday_on_or_before(day))


def _meeting_reminders(meetings: Sequence[Meeting], now: datetime) -> Iterable[Planned]:
    for m in meetings:
        if m.status != SCHEDULED or m.starts_at <= now:
            continue
        at = meeting_reminder_at(m.starts_at)
        if at <= now:
            continue
        yield Planned(f"meeting:{m.id}:{m.sequence}:reminder", "meeting_reminder", at,
                      m.participants, m.id, meeting_data(m))


def meeting_data(m: Meeting) -> dict[str, str]:
    return {"meeting_id": str(m.id), "meeting_kind": m.kind,
            "starts_at": m.starts_at.isoformat(), "ends_at": m.ends_at.isoformat(),
            "sequence": str(m.sequence)}


def _cadence_reminders(cadences: Sequence[Cadence], record: CaseRecord,
                       meetings: Sequence[Meeting], now: datetime) -> Iterable[Planned]:
    plan_agreed = record.milestones.get(PLAN_AGREED)
    for c in cadences:
        if not c.per_case or plan_agreed is None:
            continue
        kind = CADENCE_MEETING_KIND.get(c.meeting, c.meeting)
        held = [m.at for m in record.meetings if m.kind == kind]
        held += [m.starts_at for m in meetings if m.kind == kind and m.status == HELD]
        last = max([plan_agreed, *held])
        after = next_occurrence(last.astimezone(deadlines.OSLO).date(), c.every)
        if after is None:
            continue
        due = deadlines.office_morning(deadlines.workday_on_or_after(after))
        yield Planned(f"cadence:{c.meeting}:{due.isoformat()}", "cadence_due", due,
                      c.participants, data={"cadence": c.meeting, "every": c.every,
                                            "due_at": due.isoformat()})


def next_occurrence(day: date, every: str) -> date | None:
    """The day one period after ``day``; None for cadences on fixed dates."""
    if every in _DAYS:
        return day + timedelta(days=_DAYS[every])
    months = _MONTHS.get(every)
    if months is None:
        return None
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(d, day.day))
        except ValueError:
            continue
    return None       # pragma: no cover - 28 always exists


def backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts`` (1-based): 30 s doubling, at most 6 h."""
    delay: timedelta = _BACKOFF_BASE * (2 ** max(0, min(attempts, 20) - 1))
    return min(delay, _BACKOFF_CAP)


def is_dead(attempts: int, max_attempts: int = MAX_ATTEMPTS) -> bool:
    return attempts >= max_attempts
