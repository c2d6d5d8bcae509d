"""Deadlines in Norwegian workdays or weeks, counted in Europe/Oslo time. Pure.

A deadline counted in workdays skips weekends and Norwegian public holidays (the
``holidays`` package) and falls due at the end of the last counted day, local time; the
result is returned in UTC, so it is right on both sides of a daylight-saving change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from coordinator.workflows.definition import CLOSED_STATES, Deadline, WorkflowDefinition
from coordinator.workflows.facts import CaseRecord, Profile

OSLO = ZoneInfo("Europe/Oslo")


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NO", years=year, include_sundays=False))


def is_workday(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=OSLO).astimezone(UTC)


def add_workdays(start: datetime, workdays: int) -> datetime:
    """End (local midnight, as UTC) of the ``workdays``-th workday after ``start``'s day."""
    day = start.astimezone(OSLO).date()
    counted = 0
    while counted < workdays:
        day += timedelta(days=1)
        counted += is_workday(day)
    return _end_of(day)


OFFICE_HOUR = time(9)


def workday_on_or_before(day: date) -> date:
    while not is_workday(day):
        day -= timedelta(days=1)
    return day


def workday_on_or_after(day: date) -> date:
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def office_morning(day: date) -> datetime:
    """09:00 Oslo time on ``day``, as UTC (right on both sides of a DST change)."""
    return datetime.combine(day, OFFICE_HOUR, tzinfo=OSLO).astimezone(UTC)


def last_counted_day(due: datetime) -> date:
    """The local day a deadline ending at ``due`` (local midnight) last counts."""
    return (due.astimezone(OSLO) - timedelta(microseconds=1)).date()


def add_weeks(start: datetime, weeks: int) -> datetime:
    return _end_of(start.astimezone(OSLO).date() + timedelta(weeks=weeks))


@dataclass(frozen=True)
class DeadlineStatus:
    name: str
    status: str                   # not_started, pending, met, overdue, cancelled
    due_at: datetime | None
    met_at: datetime | None


def _anchor(dl: Deadline, referred_at: datetime, profile: Profile,
            record: CaseRecord) -> datetime | None:
    if dl.anchor == "referred":
        return referred_at
    if dl.anchor == "sick_leave_start":
        if profile.sick_leave_start is None:
            return None
        return datetime.combine(profile.sick_leave_start, time(0), tzinfo=OSLO).astimezone(UTC)
    return record.milestones.get(dl.anchor.removeprefix("trigger:"))


def due_at(dl: Deadline, anchor: datetime) -> datetime:
    if dl.workdays is not None:
        return add_workdays(anchor, dl.workdays)
    return add_weeks(anchor, dl.weeks or 0)


def statuses(d: WorkflowDefinition, *, state: str, referred_at: datetime, profile: Profile,
             record: CaseRecord, now: datetime) -> list[DeadlineStatus]:
    out: list[DeadlineStatus] = []
    for dl in d.deadlines:
        anchor = _anchor(dl, referred_at, profile, record)
        met = record.milestones.get(dl.met_by)
        if anchor is None:
            out.append(DeadlineStatus(dl.name, "not_started", None, met))
            continue
        due = due_at(dl, anchor)
        if met is not None:
            status = "met" if met < due else "met_late"
        elif state in CLOSED_STATES:
            status = "cancelled"
        else:
            status = "overdue" if now >= due else "pending"
        out.append(DeadlineStatus(dl.name, status, due, met))
    return out
