"""Deadlines in Norwegian workdays and weeks, in Oslo time, around holidays and DST.

Expected dates are worked out by hand from the Norwegian calendar (helligdager: New Year,
Maundy Thursday, Good Friday, Easter Sunday and Monday, Ascension, Whit Sunday and Monday,
Christmas Day and Boxing Day; høytidsdager 1 and 17 May). Christmas Eve and New Year's Eve
are ordinary workdays by law.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from coordinator.workflows.deadlines import (
    add_weeks,
    add_workdays,
    due_at,
    is_workday,
    statuses,
)
from coordinator.workflows.definition import Deadline
from coordinator.workflows.facts import CaseRecord, Profile
from tests.unit.definitions_for_tests import ELIGIBLE, SYNTHETIC

OSLO = ZoneInfo("Europe/Oslo")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def oslo(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=OSLO)


def end_of_local(day: date) -> datetime:
    """Midnight after ``day`` in Oslo, as UTC — written out independently of the code."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=OSLO).astimezone(UTC)


def assert_local_midnight(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)                  # returned in UTC
    assert moment.astimezone(OSLO).time() == time(0, 0)


# -- is_workday ----------------------------------------------------------------------------

@pytest.mark.parametrize("day", [
    date(2027, 3, 25), date(2027, 3, 26), date(2027, 3, 29),     # Easter 2027
    date(2027, 5, 6),                                            # Ascension Day 2027
    date(2027, 5, 17),                                           # 17 May = Whit Monday 2027
    date(2028, 5, 17),                                           # 17 May on a Wednesday
    date(2028, 5, 1),                                            # 1 May on a Monday
    date(2028, 5, 25), date(2028, 6, 5),                         # Ascension, Whit Monday 2028
    date(2026, 12, 25), date(2027, 1, 1),                        # Christmas Day, New Year
    date(2028, 12, 26),                                          # Boxing Day on a Tuesday
])
def test_public_holidays_are_not_workdays(day: date) -> None:
    assert day.weekday() < 5
    assert not is_workday(day)


@pytest.mark.parametrize("day", [
    date(2026, 12, 24), date(2026, 12, 31),     # Christmas Eve, New Year's Eve (Thursdays)
    date(2027, 3, 24), date(2027, 3, 30),       # around Easter
    date(2027, 5, 18), date(2027, 5, 7),        # the days after 17 May and Ascension
])
def test_ordinary_weekdays_are_workdays(day: date) -> None:
    assert is_workday(day)


def test_weekends_are_not_workdays() -> None:
    assert not is_workday(date(2027, 1, 2))
    assert not is_workday(date(2027, 1, 3))


# -- add_workdays --------------------------------------------------------------------------

def test_five_workdays_from_the_wednesday_before_easter_2027() -> None:
    # Wed 24 Mar; Thu 25, Fri 26, Mon 29 are holidays: Tue 30, Wed 31, Thu 1, Fri 2, Mon 5.
    due = add_workdays(utc(2027, 3, 24, 9, 0), 5)
    assert due == utc(2027, 4, 5, 22, 0)          # end of Mon 5 April, CEST
    assert_local_midnight(due)


@pytest.mark.parametrize(("start", "workdays", "last_day"), [
    # Ascension Thu 6 May 2027: Wed 5 May + 1 workday is Fri 7 May.
    (utc(2027, 5, 5, 10), 1, date(2027, 5, 7)),
    # 17 May 2027 (also Whit Monday): Fri 14 May + 1 workday is Tue 18 May.
    (utc(2027, 5, 14, 10), 1, date(2027, 5, 18)),
    # 17 May 2028 on a Wednesday: Tue 16 + 2 workdays is Fri 19 May.
    (utc(2028, 5, 16, 10), 2, date(2028, 5, 19)),
    # 1 May 2028 on a Monday: Fri 28 Apr + 1 workday is Tue 2 May.
    (utc(2028, 4, 28, 10), 1, date(2028, 5, 2)),
    # Whit Monday 5 June 2028: Fri 2 June + 1 workday is Tue 6 June.
    (utc(2028, 6, 2, 10), 1, date(2028, 6, 6)),
    # Christmas 2026: Wed 23 Dec + 3 is Tue 29 Dec (24 Dec counts; 25 Dec and weekend not).
    (utc(2026, 12, 23, 10), 3, date(2026, 12, 29)),
    # ... + 6 crosses New Year (Fri 1 Jan 2027) to Mon 4 Jan 2027.
    (utc(2026, 12, 23, 10), 6, date(2027, 1, 4)),
    # Zero workdays: the end of the start day itself.
    (utc(2027, 3, 24, 10), 0, date(2027, 3, 24)),
])
def test_add_workdays_skips_weekends_and_holidays(start: datetime, workdays: int,
                                                  last_day: date) -> None:
    due = add_workdays(start, workdays)
    assert due == end_of_local(last_day)
    assert_local_midnight(due)


def test_counting_starts_from_the_local_day_not_the_utc_day() -> None:
    # 23:30 UTC on Mon 4 Jan is already Tue 5 Jan in Oslo: one workday later is Wed 6 Jan.
    assert add_workdays(utc(2027, 1, 4, 23, 30), 1) == utc(2027, 1, 6, 23, 0)
    assert add_workdays(utc(2027, 1, 4, 22, 30), 1) == utc(2027, 1, 5, 23, 0)
    # The same instant given in another zone gives the same deadline.
    assert add_workdays(oslo(2027, 1, 5, 0, 30), 1) == utc(2027, 1, 6, 23, 0)


def test_a_start_on_a_holiday_counts_from_the_next_workday() -> None:
    # Good Friday 26 Mar 2027 + 1 workday: Tue 30 March.
    assert add_workdays(utc(2027, 3, 26, 12), 1) == utc(2027, 3, 30, 22, 0)


# -- daylight saving ----------------------------------------------------------------------

@pytest.mark.parametrize(("start", "last_day", "offset_hours"), [
    # Spring forward on Sun 28 Mar 2027 (also Easter Sunday).
    (utc(2027, 3, 22, 10), date(2027, 3, 23), 1),     # before: CET
    (utc(2027, 3, 24, 10), date(2027, 3, 30), 2),     # across: CEST
    # Fall back on Sun 31 Oct 2027.
    (utc(2027, 10, 27, 10), date(2027, 10, 28), 2),   # before: CEST
    (utc(2027, 10, 29, 10), date(2027, 11, 1), 1),    # across: CET
])
def test_workday_deadlines_are_local_midnight_on_both_sides_of_dst(
        start: datetime, last_day: date, offset_hours: int) -> None:
    due = add_workdays(start, 1)
    assert_local_midnight(due)
    assert due.astimezone(OSLO).date() == last_day + timedelta(days=1)
    assert due.astimezone(OSLO).utcoffset() == timedelta(hours=offset_hours)
    assert due.hour == 24 - offset_hours


@pytest.mark.parametrize(("start", "expected"), [
    (utc(2027, 3, 26, 10), utc(2027, 4, 2, 22, 0)),     # Fri CET -> end of Fri 2 Apr CEST
    (utc(2027, 10, 25, 10), utc(2027, 11, 1, 23, 0)),   # Mon CEST -> end of Mon 1 Nov CET
    (utc(2027, 3, 20, 10), utc(2027, 3, 27, 23, 0)),    # ends on the night DST begins
    (utc(2027, 10, 23, 10), utc(2027, 10, 30, 22, 0)),  # ends on the night DST ends
])
def test_week_deadlines_are_local_midnight_across_dst(start: datetime,
                                                      expected: datetime) -> None:
    due = add_weeks(start, 1)
    assert due == expected
    assert_local_midnight(due)


def test_weeks_count_calendar_days_and_ignore_holidays() -> None:
    # Twelve weeks from Mon 4 Jan 2027 is Mon 29 Mar 2027 (Easter Monday): still that day.
    assert add_weeks(utc(2027, 1, 4, 8), 12) == end_of_local(date(2027, 3, 29))
    assert add_weeks(utc(2027, 1, 4, 8), 0) == end_of_local(date(2027, 1, 4))


def test_due_at_uses_whichever_unit_the_deadline_has() -> None:
    anchor = utc(2027, 3, 24, 9)
    assert due_at(Deadline("a", "referred", "x", workdays=5), anchor) == utc(2027, 4, 5, 22)
    assert due_at(Deadline("b", "referred", "x", weeks=2), anchor) == utc(2027, 4, 7, 22)


# -- the wall clock plays no part ---------------------------------------------------------

@pytest.mark.parametrize("today", [datetime(2031, 7, 1, 12, tzinfo=UTC),
                                   datetime(2027, 3, 28, 1, 30, tzinfo=UTC)])
def test_results_depend_only_on_the_inputs_not_on_the_wall_clock(today: datetime) -> None:
    record = CaseRecord(milestones={"confirm_consent": utc(2027, 3, 24, 9)})
    before = (add_workdays(utc(2027, 3, 24, 9), 5), add_weeks(utc(2027, 10, 25, 10), 1),
              is_workday(date(2027, 5, 17)),
              statuses(SYNTHETIC, state="planning", referred_at=utc(2027, 3, 22, 9),
                       profile=ELIGIBLE, record=record, now=utc(2027, 4, 1, 9)))
    with time_machine.travel(today, tick=False):
        assert datetime.now(UTC) == today            # the wall clock really moved
        after = (add_workdays(utc(2027, 3, 24, 9), 5), add_weeks(utc(2027, 10, 25, 10), 1),
                 is_workday(date(2027, 5, 17)),
                 statuses(SYNTHETIC, state="planning", referred_at=utc(2027, 3, 22, 9),
                          profile=ELIGIBLE, record=record, now=utc(2027, 4, 1, 9)))
    assert after == before
    assert after[0] == utc(2027, 4, 5, 22)


# -- statuses ------------------------------------------------------------------------------

REFERRED = utc(2027, 1, 4, 8)                       # Mon; intake_decided due end of Mon 11 Jan
INTAKE_DUE = utc(2027, 1, 11, 23)
ON_LEAVE = replace(ELIGIBLE, sick_leave_start=date(2027, 1, 1))


def status_of(name: str, *, state: str = "intake", record: CaseRecord | None = None,
              now: datetime, profile: Profile = ELIGIBLE) -> tuple[str, datetime | None]:
    found = {s.name: s for s in statuses(SYNTHETIC, state=state, referred_at=REFERRED,
                                         profile=profile, record=record or CaseRecord(),
                                         now=now)}
    assert set(found) == {d.name for d in SYNTHETIC.deadlines}
    return found[name].status, found[name].due_at


def test_a_deadline_is_pending_until_due_and_overdue_from_then() -> None:
    assert status_of("intake_decided", now=REFERRED) == ("pending", INTAKE_DUE)
    assert status_of("intake_decided", now=INTAKE_DUE - timedelta(seconds=1))[0] == "pending"
    assert status_of("intake_decided", now=INTAKE_DUE)[0] == "overdue"
    assert status_of("intake_decided", now=utc(2027, 2, 1))[0] == "overdue"


def test_a_deadline_is_met_or_met_late_by_when_its_trigger_first_fired() -> None:
    on_time = CaseRecord(milestones={"decide": INTAKE_DUE - timedelta(minutes=1)})
    late = CaseRecord(milestones={"decide": INTAKE_DUE})
    later = utc(2027, 3, 1)
    assert status_of("intake_decided", record=on_time, state="consent", now=later)[0] == "met"
    assert status_of("intake_decided", record=late, state="consent", now=later)[0] == "met_late"
    found = statuses(SYNTHETIC, state="consent", referred_at=REFERRED, profile=ELIGIBLE,
                     record=on_time, now=later)
    assert found[0].met_at == INTAKE_DUE - timedelta(minutes=1)


def test_an_unmet_deadline_of_a_closed_case_is_cancelled() -> None:
    for state in ("closed", "withdrawn", "declined"):
        assert status_of("intake_decided", state=state, now=utc(2027, 2, 1))[0] == "cancelled"
    met = CaseRecord(milestones={"decide": REFERRED})
    assert status_of("intake_decided", state="declined", record=met, now=REFERRED)[0] == "met"


def test_a_deadline_whose_anchor_has_not_happened_is_not_started() -> None:
    assert status_of("plan_agreed", now=utc(2027, 6, 1)) == ("not_started", None)
    assert status_of("closing_begun", now=utc(2027, 6, 1)) == ("not_started", None)


def test_trigger_and_sick_leave_anchors_start_their_deadlines() -> None:
    consented = CaseRecord(milestones={"confirm_consent": utc(2027, 3, 24, 9)})
    assert status_of("plan_agreed", record=consented, state="planning",
                     now=utc(2027, 3, 25)) == ("pending", utc(2027, 4, 7, 22))
    # Sick leave from Fri 1 Jan 2027 (local midnight) + 8 weeks: end of Fri 26 Feb.
    assert status_of("closing_begun", profile=ON_LEAVE, state="follow_up",
                     now=utc(2027, 2, 27)) == ("overdue", utc(2027, 2, 26, 23))
