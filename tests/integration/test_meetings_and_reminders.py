"""Meetings and the reminders they and the deadlines cause, through the Coordinator, on
the in-memory fake, SQLite and PostgreSQL (real migrations).

Rescheduling or cancelling a meeting retracts its pending reminders; closing a case
cancels all of them; holding a meeting lets the workflow's guards judge the attendees.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from coordinator.cases.commands import FireTrigger, OpenCase
from coordinator.cases.model import Actor
from coordinator.demo import JOURNEYS, actor, referral, take_step, team
from coordinator.errors import (
    GuardFailed,
    InvalidInput,
    MeetingClosed,
    NotCaseMember,
    PermissionDenied,
)
from coordinator.meetings import ScheduleMeeting
from coordinator.scheduling.outbox import CANCELLED, PENDING, OutboxRow
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.deadlines import OSLO
from tests.conftest import CoordinatorFactory

NAV = actor("ha", "nav_veileder")
THERAPIST = actor("ha", "kognitiv_terapeut")
GP = actor("ha", "fastlege")
LEAD = Actor("pl-1", "prosjektleder")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def c(request: pytest.FixtureRequest, make_coordinator: CoordinatorFactory) -> Coordinator:
    return make_coordinator(request.param)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rows(c: Coordinator, case_id: UUID, status: str | None = None) -> list[OutboxRow]:
    with c.uow() as uow:
        found = uow.outbox.for_case(case_id)
    return [r for r in found if status is None or r.status == status]


def kinds(found: Sequence[OutboxRow]) -> set[tuple[str, str, str]]:
    return {(r.kind, r.recipient, r.channel) for r in found}


def open_ha(c: Coordinator, clock: FakeClock, at: datetime) -> UUID:
    clock.set(at)
    channel, person = referral("ha", at.date())
    return c.open_case(OpenCase("ha", channel, person, GP, team=team("ha"))).id


def ha_at_get_to_know(c: Coordinator, clock: FakeClock) -> UUID:
    case_id = open_ha(c, clock, oslo(2027, 3, 1, 9))
    for step in JOURNEYS["ha"][:3]:           # begin_intake, complete_intake, confirm_consent
        take_step(c, case_id, "ha", step)
    assert c.summary(case_id).state == "get_to_know"
    return case_id


def schedule(c: Coordinator, case_id: UUID, start: datetime,
             participants: tuple[str, ...] = ("nav_veileder", "kognitiv_terapeut")) -> UUID:
    return c.meetings.schedule(ScheduleMeeting(
        case_id, "get_to_know", start, start + timedelta(hours=1), participants, NAV)).id


# -- deadlines ---------------------------------------------------------------------------
def test_a_ha_referral_plans_kartlegging_reminders_to_the_team_across_easter(
        c: Coordinator, clock: FakeClock) -> None:
    case_id = open_ha(c, clock, oslo(2027, 3, 24, 9))        # Wednesday before Easter
    pending = rows(c, case_id, PENDING)
    members = {a.id for a in (GP, *team("ha"))}
    assert {r.recipient for r in pending} == members
    assert {r.channel for r in pending} == {"inapp"}        # no SMTP configured
    assert {(r.kind, r.due_at) for r in pending} == {
        ("deadline_due_soon", utc(2027, 4, 5, 7)), ("deadline_overdue", utc(2027, 4, 5, 22))}
    assert all(r.pilot == "ha" and r.source == "rule" for r in pending)


def test_completing_the_kartlegging_retracts_its_reminders(c: Coordinator,
                                                            clock: FakeClock) -> None:
    case_id = open_ha(c, clock, oslo(2027, 3, 24, 9))
    take_step(c, case_id, "ha", JOURNEYS["ha"][0])
    assert len(rows(c, case_id, PENDING)) == 2 * len({GP, *team("ha")})   # replanned, kept
    take_step(c, case_id, "ha", JOURNEYS["ha"][1])                         # complete_intake
    assert rows(c, case_id, PENDING) == []
    assert {r.kind for r in rows(c, case_id, CANCELLED)} == {"deadline_due_soon",
                                                             "deadline_overdue"}


def test_overdue_view_turns_on_after_the_fifth_workday(c: Coordinator,
                                                       clock: FakeClock) -> None:
    case_id = open_ha(c, clock, oslo(2027, 3, 24, 9))
    clock.set(oslo(2027, 4, 5, 15))              # the 5th workday (25/26/29 March off)
    assert c.meetings.overdue("ha", actor=LEAD) == []
    clock.advance(hours=18)                       # Tuesday 6 April, 09:00
    [item] = c.meetings.overdue("ha", actor=LEAD)
    assert (item.case_id, item.deadline, item.due_at) == (case_id, "kartlegging",
                                                          utc(2027, 4, 5, 22))
    assert c.meetings.overdue("ringsaker", actor=LEAD) == []
    with pytest.raises(PermissionDenied):
        c.meetings.overdue("ha", actor=NAV)


# -- meetings ----------------------------------------------------------------------------
def test_scheduling_invites_participants_and_plans_the_reminder(c: Coordinator,
                                                                clock: FakeClock) -> None:
    case_id = ha_at_get_to_know(c, clock)
    version = c.summary(case_id).version
    meeting_id = schedule(c, case_id, oslo(2027, 3, 9, 10))
    assert c.summary(case_id).version == version + 1
    assert c.history(case_id)[-1].kind == "meeting_scheduled"
    mine = [r for r in rows(c, case_id, PENDING) if r.meeting_id == meeting_id]
    assert kinds(mine) == {(k, a.id, "inapp") for k in ("meeting_invitation", "meeting_reminder")
                           for a in (NAV, THERAPIST)}
    reminder = next(r for r in mine if r.kind == "meeting_reminder")
    assert reminder.due_at == utc(2027, 3, 8, 8)             # Monday 09:00 CET
    assert [m.id for m in c.meetings.for_case(case_id, actor=NAV)] == [meeting_id]


def test_rescheduling_retracts_pending_reminders_and_sends_an_update(
        c: Coordinator, clock: FakeClock) -> None:
    case_id = ha_at_get_to_know(c, clock)
    meeting_id = schedule(c, case_id, oslo(2027, 3, 9, 10))
    moved = c.meetings.reschedule(meeting_id, oslo(2027, 3, 16, 10), oslo(2027, 3, 16, 11),
                                  actor=NAV)
    assert moved.sequence == 1
    mine = [r for r in rows(c, case_id) if r.meeting_id == meeting_id]
    pending = [r for r in mine if r.status == PENDING]
    assert {r.kind for r in pending} == {"meeting_updated", "meeting_reminder"}
    assert {r.due_at for r in pending if r.kind == "meeting_reminder"} == {utc(2027, 3, 15, 8)}
    assert {(r.kind, r.due_at) for r in mine if r.status == CANCELLED} == {
        ("meeting_invitation", utc(2027, 3, 1, 8)), ("meeting_reminder", utc(2027, 3, 8, 8))}


def test_cancelling_retracts_pending_reminders_and_sends_a_cancellation(
        c: Coordinator, clock: FakeClock) -> None:
    case_id = ha_at_get_to_know(c, clock)
    meeting_id = schedule(c, case_id, oslo(2027, 3, 9, 10))
    c.meetings.cancel(meeting_id, actor=NAV)
    pending = [r for r in rows(c, case_id, PENDING) if r.meeting_id == meeting_id]
    assert {r.kind for r in pending} == {"meeting_cancelled"}
    with pytest.raises(MeetingClosed):
        c.meetings.reschedule(meeting_id, oslo(2027, 3, 16, 10), oslo(2027, 3, 16, 11),
                              actor=NAV)


def test_holding_the_get_to_know_meeting_fires_the_guarded_transition(
        c: Coordinator, clock: FakeClock) -> None:
    case_id = ha_at_get_to_know(c, clock)
    meeting_id = schedule(c, case_id, oslo(2027, 3, 9, 10))
    before = (c.summary(case_id).version, rows(c, case_id))
    clock.set(oslo(2027, 3, 9, 11))
    with pytest.raises(GuardFailed) as refused:
        c.meetings.hold(meeting_id, ["nav_veileder"], actor=NAV)
    assert refused.value.failed_guards == (
        "attended(nav_veileder, kognitiv_terapeut)=missing_participants:kognitiv_terapeut",)
    assert (c.summary(case_id).version, rows(c, case_id)) == before      # nothing written
    assert c.meetings.for_case(case_id)[0].status == "scheduled"

    held = c.meetings.hold(meeting_id, ["nav_veileder", "kognitiv_terapeut"], actor=NAV)
    assert held.attendees == ("kognitiv_terapeut", "nav_veileder")
    assert c.summary(case_id).state == "planning"
    last = c.history(case_id)[-1]
    assert (last.trigger, list(last.data["attendees"])) == (
        "hold_get_to_know", ["kognitiv_terapeut", "nav_veileder"])
    assert not [r for r in rows(c, case_id, PENDING) if r.meeting_id == meeting_id]


def test_closing_a_case_cancels_every_pending_reminder(c: Coordinator,
                                                       clock: FakeClock) -> None:
    case_id = ha_at_get_to_know(c, clock)
    schedule(c, case_id, oslo(2027, 3, 9, 10))
    schedule(c, case_id, oslo(2027, 3, 23, 10))
    assert rows(c, case_id, PENDING)
    c.fire(FireTrigger(case_id, "withdraw", NAV))
    assert rows(c, case_id, PENDING) == []
    with pytest.raises(InvalidInput):
        schedule(c, case_id, oslo(2027, 3, 30, 10))


@pytest.mark.parametrize(("kind", "start", "length", "participants"), [
    ("party", (2027, 3, 9, 10), 1, ("nav_veileder",)),          # unknown kind
    ("get_to_know", (2027, 2, 9, 10), 1, ("nav_veileder",)),    # in the past
    ("get_to_know", (2027, 3, 9, 10), 9, ("nav_veileder",)),    # over 8 hours
    ("get_to_know", (2027, 3, 9, 10), 1, ("astronaut",)),       # unknown role
    ("get_to_know", (2027, 3, 9, 10), 1, ()),                   # nobody
])
def test_bad_meetings_are_refused_and_write_nothing(
        c: Coordinator, clock: FakeClock, kind: str, start: tuple[int, ...], length: int,
        participants: tuple[str, ...]) -> None:
    case_id = ha_at_get_to_know(c, clock)
    before = (c.summary(case_id).version, rows(c, case_id))
    begins = oslo(*start)
    with pytest.raises(InvalidInput):
        c.meetings.schedule(ScheduleMeeting(case_id, kind, begins,
                                            begins + timedelta(hours=length), participants,
                                            NAV))
    assert (c.summary(case_id).version, rows(c, case_id)) == before


def test_only_the_team_may_plan_meetings(c: Coordinator, clock: FakeClock) -> None:
    case_id = ha_at_get_to_know(c, clock)
    with pytest.raises(NotCaseMember):
        c.meetings.schedule(ScheduleMeeting(case_id, "intake", oslo(2027, 3, 9, 10),
                                            oslo(2027, 3, 9, 11), ("nav_veileder",),
                                            Actor("stranger", "nav_veileder")))
