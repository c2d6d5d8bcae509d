"""The pure reminder rules: Norwegian workdays, holidays and daylight saving, in Oslo time.

Expected instants are written out by hand in UTC, from the 2027 calendar: Easter
(25-29 March, with the switch to summer time on Sunday 28 March), 17 May (also Whit
Monday in 2027), Christmas (25-26 December; 24 December is a workday), and the switch
back to winter time on Sunday 31 October.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.cases.meetings import Meeting
from coordinator.scheduling import policy
from coordinator.scheduling.policy import Planned, meeting_reminder_at, next_occurrence, plan
from coordinator.workflows.deadlines import OSLO
from coordinator.workflows.facts import CaseRecord, Profile
from coordinator.workflows.registry import WorkflowRegistry

REG = WorkflowRegistry.builtin()
PERSON = Profile(datetime(1985, 5, 5, tzinfo=UTC).date(), frozenset({"msk"}))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def ha_plan(referred: datetime, now: datetime | None = None) -> dict[str, Planned]:
    out = plan(REG.latest("ha").definition, state="referred", referred_at=referred,
               profile=PERSON, record=CaseRecord(), meetings=(), now=now or referred)
    return {p.kind: p for p in out}


@pytest.mark.parametrize(("referred", "due_soon", "overdue"), [
    # Wed before Easter: 25, 26, 29 March are holidays; 5th workday is Mon 5 April (CEST).
    (oslo(2027, 3, 24, 9), utc(2027, 4, 5, 7), utc(2027, 4, 5, 22)),
    # Fri 14 May: 17 May (Mon) is off, so Tue 18 … Mon 24 May.
    (oslo(2027, 5, 14, 14), utc(2027, 5, 24, 7), utc(2027, 5, 24, 22)),
    # Wed 22 Dec: 23, 24 (a workday), 27, 28, 29 Dec; 25-26 fall on the weekend anyway.
    (oslo(2027, 12, 22, 10), utc(2027, 12, 29, 8), utc(2027, 12, 29, 23)),
    # Mon 20 Dec 2027 → 21, 22, 23, 24, 27: due soon on Mon 27 at 09:00 CET.
    (oslo(2027, 12, 20, 10), utc(2027, 12, 27, 8), utc(2027, 12, 27, 23)),
    # Across the switch to winter time: Wed 27 Oct (CEST) → Wed 3 Nov (CET).
    (oslo(2027, 10, 27, 9), utc(2027, 11, 3, 8), utc(2027, 11, 3, 23)),
])
def test_ha_kartlegging_reminders_count_norwegian_workdays(
        referred: datetime, due_soon: datetime, overdue: datetime) -> None:
    got = ha_plan(referred.astimezone(UTC))
    assert got["deadline_due_soon"].due_at == due_soon
    assert got["deadline_overdue"].due_at == overdue
    assert got["deadline_overdue"].roles == (policy.TEAM,)


def test_an_overdue_deadline_still_plans_its_overdue_notice_but_a_met_one_plans_none() -> None:
    referred = oslo(2027, 3, 24, 9).astimezone(UTC)
    late = ha_plan(referred, now=utc(2027, 4, 20, 8))
    assert set(late) == {"deadline_due_soon", "deadline_overdue"}
    met = plan(REG.latest("ha").definition, state="consent", referred_at=referred,
               profile=PERSON,
               record=CaseRecord(milestones={"complete_intake": utc(2027, 3, 30, 8)}),
               meetings=(), now=utc(2027, 3, 30, 9))
    assert met == []


def test_a_closed_case_plans_nothing() -> None:
    for state in ("closed", "withdrawn", "declined", "dropped_out"):
        assert plan(REG.latest("ha").definition, state=state,
                    referred_at=utc(2027, 3, 24, 8), profile=PERSON, record=CaseRecord(),
                    meetings=(), now=utc(2027, 3, 24, 8)) == []


@pytest.mark.parametrize(("starts", "expected"), [
    # Tue 30 March 2027 (CEST): Mon 29 is Easter Monday, back past Good Friday and Maundy
    # Thursday to Wed 24 March, 09:00 CET = 08:00 UTC.
    (oslo(2027, 3, 30, 10), utc(2027, 3, 24, 8)),
    # Mon 1 Nov 2027 (CET) → Fri 29 Oct 09:00 CEST = 07:00 UTC.
    (oslo(2027, 11, 1, 10), utc(2027, 10, 29, 7)),
    # Tue 18 May 2027 → Fri 14 May (17 May is off).
    (oslo(2027, 5, 18, 12), utc(2027, 5, 14, 7)),
    # Mon 27 Dec 2027 → Fri 24 Dec, a workday.
    (oslo(2027, 12, 27, 9), utc(2027, 12, 24, 8)),
])
def test_meeting_reminder_is_at_nine_on_the_workday_before(starts: datetime,
                                                           expected: datetime) -> None:
    assert meeting_reminder_at(starts.astimezone(UTC)) == expected


def _meeting(starts: datetime, **kw: object) -> Meeting:
    return Meeting(uuid.uuid4(), uuid.uuid4(), "get_to_know", starts.astimezone(UTC),
                   starts.astimezone(UTC) + timedelta(hours=1), ("nav_veileder",),
                   **kw)  # type: ignore[arg-type]


def test_meeting_reminders_skip_past_moments_cancelled_and_held_meetings() -> None:
    d = REG.latest("stovner").definition
    soon = _meeting(oslo(2027, 3, 24, 10))
    later = _meeting(oslo(2027, 4, 6, 10))
    gone = _meeting(oslo(2027, 4, 7, 10), status="cancelled")
    out = plan(d, state="get_to_know", referred_at=utc(2027, 3, 1, 8), profile=PERSON,
               record=CaseRecord(), meetings=(soon, later, gone),
               now=oslo(2027, 3, 23, 15).astimezone(UTC))
    assert [(p.kind, p.meeting_id, p.due_at) for p in out] == [
        ("meeting_reminder", later.id, utc(2027, 4, 5, 7))]
    assert out[0].roles == ("nav_veileder",)
    assert out[0].key == f"meeting:{later.id}:0:reminder"


def test_monthly_gp_update_falls_on_the_next_workday_after_a_month() -> None:
    d = REG.latest("ha").definition
    agreed = oslo(2027, 1, 29, 13).astimezone(UTC)           # a Friday
    out = plan(d, state="follow_up", referred_at=utc(2027, 1, 4, 8), profile=PERSON,
               record=CaseRecord(milestones={"complete_intake": utc(2027, 1, 5, 8),
                                             "agree_plan": agreed}),
               meetings=(), now=agreed)
    cadence = [p for p in out if p.kind == "cadence_due"]
    # 29 Feb does not exist; 28 Feb 2027 is a Sunday → Mon 1 March 09:00 CET.
    assert [p.due_at for p in cadence] == [utc(2027, 3, 1, 8)]
    assert cadence[0].roles == ("nav_veileder", "kognitiv_terapeut", "fastlege")


def test_cadence_counts_from_the_last_held_meeting_of_its_kind() -> None:
    from coordinator.workflows.facts import Meeting as Held

    d = REG.latest("ha").definition
    record = CaseRecord(milestones={"agree_plan": utc(2027, 1, 4, 12)},
                        meetings=(Held("gp_update", utc(2027, 4, 16, 12), ()),))
    out = plan(d, state="follow_up", referred_at=utc(2027, 1, 4, 8), profile=PERSON,
               record=record, meetings=(), now=utc(2027, 4, 16, 12))
    # 16 May 2027 is Whit Sunday and 17 May a holiday → Tue 18 May 09:00 CEST.
    assert [p.due_at for p in out if p.kind == "cadence_due"] == [utc(2027, 5, 18, 7)]


def test_next_occurrence_per_period() -> None:
    day = datetime(2027, 8, 31, tzinfo=UTC).date()
    assert next_occurrence(day, "weekly") == day + timedelta(days=7)
    assert next_occurrence(day, "monthly") == day.replace(month=9, day=30)
    assert next_occurrence(day, "half_yearly") == day.replace(year=2028, month=2, day=29)
    assert next_occurrence(day, "annual") == day.replace(year=2028)
    assert next_occurrence(day, "fixed") is None


def test_backoff_doubles_and_is_capped() -> None:
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert policy.backoff(40) == timedelta(hours=6)
    assert not policy.is_dead(7) and policy.is_dead(8)


@time_machine.travel(datetime(2027, 3, 28, 0, 30, tzinfo=UTC), tick=False)
def test_rules_ignore_the_wall_clock() -> None:
    """Planning depends only on its ``now`` argument, not on the machine's time."""
    referred = oslo(2027, 3, 24, 9).astimezone(UTC)
    assert ha_plan(referred)["deadline_overdue"].due_at == utc(2027, 4, 5, 22)


def _at(base: datetime) -> st.SearchStrategy[datetime]:
    return st.integers(0, 60).map(lambda days: base + timedelta(days=days))


@settings(max_examples=300, deadline=None)
@given(pilot=st.sampled_from(REG.keys()),
       state=st.sampled_from(["referred", "intake", "follow_up", "closing"]),
       data=st.data(),
       episode=st.integers(1, 3),
       outcomes=st.frozensets(st.sampled_from(["start", "end"])),
       tracks=st.frozensets(st.sampled_from(["health", "nav"])),
       visible=st.none() | st.tuples(st.sampled_from(["nav_veileder", "fastlege"])))
def test_the_plan_reads_nothing_of_the_record_outside_policy_inputs(
        pilot: str, state: str, data: st.DataObject, episode: int,
        outcomes: frozenset[str], tracks: frozenset[str],
        visible: tuple[str, ...] | None) -> None:
    """``Coordinator.fire`` skips planning again when ``policy.inputs`` is unchanged: that
    is only right while two records with equal inputs plan the same reminders."""
    referred = utc(2027, 3, 1, 9)
    d = REG.latest(pilot).definition
    triggers = st.sampled_from(sorted(d.triggers()))
    fired = data.draw(st.dictionaries(triggers, _at(referred), max_size=4))
    extra = data.draw(st.dictionaries(triggers, _at(referred + timedelta(hours=3)),
                                      min_size=1, max_size=4))
    args = {"state": state, "referred_at": referred, "profile": PERSON}
    base = CaseRecord(milestones=fired)
    other = CaseRecord(episode=episode, milestones={**extra, **fired}, outcomes=outcomes,
                       tracks_finished=tracks, plan_visible_to=visible)
    if policy.inputs(d, **args, record=base) == policy.inputs(d, **args, record=other):
        for now in (referred, referred + timedelta(days=30)):
            assert plan(d, **args, record=base, meetings=(), now=now) == \
                plan(d, **args, record=other, meetings=(), now=now)
