"""Intake use cases on the fake, SQLite and PostgreSQL (one contract): referral with
idempotency, end measures, therapist session log and hours against the pilot's range."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from coordinator.cases.model import Actor
from coordinator.errors import (
    AlreadyRecorded,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
    NotCaseMember,
    PermissionDenied,
)
from coordinator.intake.model import IdempotencyKey, Referral, StartMeasures
from coordinator.intake.service import Intake
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.facts import Profile

GP = Actor("gp-1", "fastlege")
THERAPIST = Actor("kt-1", "kognitiv_terapeut")
NAV = Actor("nav-1", "nav_veileder")


def referral(pilot: str = "stovner", **start: object) -> Referral:
    profile = Profile(birth_date=date(1980, 5, 5), problems=frozenset({"msk"}))
    return Referral(pilot, profile, "500000058", "900000001",
                    (("urn:coordinator:questionnaire:kartlegging|1",
                      {"work_situation": "in_work", "nav_contact": False}),),
                    StartMeasures(**start))  # type: ignore[arg-type]


def open_case(c: Coordinator, pilot: str = "stovner") -> tuple[Intake, UUID]:
    intake = Intake(c)
    receipt = intake.receive_referral(referral(pilot), GP, IdempotencyKey("gp-1", pilot, "h1"))
    # Each change needs a later time: a case change that leaves every column as it was
    # (same updated_at) is not written and would not bump the version (foundation issue).
    assert isinstance(c.clock, FakeClock)
    c.clock.advance(minutes=1)
    c.add_member(receipt.case_id, THERAPIST.id, THERAPIST.role, by=GP)
    c.clock.advance(minutes=1)
    c.add_member(receipt.case_id, NAV.id, NAV.role, by=GP)
    c.clock.advance(minutes=1)
    return intake, receipt.case_id


def test_idempotent_receipt(any_coordinator: Coordinator) -> None:
    intake = Intake(any_coordinator)
    key = IdempotencyKey("gp-1", "k", "hash-a")
    first = intake.receive_referral(referral(), GP, key)
    again = intake.receive_referral(referral(), GP, key)
    assert (again.case_id, again.replayed, first.replayed) == (first.case_id, True, False)
    with pytest.raises(IdempotencyKeyReused):
        intake.receive_referral(referral(), GP, IdempotencyKey("gp-1", "k", "hash-b"))
    assert any_coordinator.count_cases() == 1
    forms = intake.forms(first.case_id, GP)
    assert [f.answers["work_situation"] for f in forms] == ["in_work"]


def test_an_in_flight_claim_is_409_until_its_lease_ends(any_coordinator: Coordinator,
                                                        clock: FakeClock) -> None:
    intake = Intake(any_coordinator)
    key = IdempotencyKey("gp-1", "k", "h")
    blocked: list[Exception] = []

    def retry_meanwhile() -> None:
        try:
            Intake(any_coordinator).receive_referral(referral(), GP, key)
        except IdempotencyInFlight as exc:
            blocked.append(exc)

    intake.hook = retry_meanwhile
    intake.receive_referral(referral(), GP, key)
    assert len(blocked) == 1
    # A claim abandoned by a crashed request is taken over once its lease has passed.
    crashed = Intake(any_coordinator)
    crashed.hook = lambda: (_ for _ in ()).throw(KeyboardInterrupt())
    other = IdempotencyKey("gp-1", "k2", "h")
    with pytest.raises(KeyboardInterrupt):
        crashed.receive_referral(referral(), GP, other)
    assert Intake(any_coordinator).receive_referral(referral(), GP, other).replayed is False


def test_end_measures_and_ringsaker_outcome(any_coordinator: Coordinator,
                                            clock: FakeClock) -> None:
    intake, case_id = open_case(any_coordinator, "ringsaker")
    with pytest.raises(PermissionDenied):
        intake.record_measures(case_id, "end", NAV, scores={"phq9": [0] * 9})
    intake.record_measures(case_id, "end", NAV, work_status="in_work")
    clock.advance(minutes=1)
    view = any_coordinator.view(case_id)
    assert "end" not in view.record["outcomes"]
    intake.record_measures(case_id, "end", THERAPIST,
                           scores={"phq9": [1] * 9, "gad7": [0] * 7})
    assert "end" in any_coordinator.view(case_id).record["outcomes"]
    with pytest.raises(AlreadyRecorded):
        intake.record_measures(case_id, "end", THERAPIST, scores={"gad7": [0] * 7})
    with pytest.raises(InvalidInput):
        intake.record_measures(case_id, "end", THERAPIST, scores={"gad7": [0] * 6})
    nav_sees = {m.instrument for m in intake.measures(case_id, NAV)}
    assert nav_sees == {"work_status"}
    assert {m.instrument for m in intake.measures(case_id, THERAPIST)} == {
        "work_status", "phq9", "gad7"}


def test_session_log_and_hours_against_stovners_range(any_coordinator: Coordinator,
                                                      clock: FakeClock) -> None:
    intake, case_id = open_case(any_coordinator, "stovner")
    today = clock.now().date()
    assert intake.hours_used(case_id, THERAPIST).status == "below_range"
    for kind in ("individual", "group", "course"):
        intake.log_session(case_id, THERAPIST, held_on=today, minutes=120, kind=kind)
    used = intake.hours_used(case_id, THERAPIST)
    assert (used.sessions, used.hours, used.range_hours, used.status) == (3, 6, (6, 12),
                                                                          "within_range")
    intake.log_session(case_id, THERAPIST, held_on=today, minutes=6 * 60 + 1, kind="group")
    assert intake.hours_used(case_id, THERAPIST).status == "above_range"
    with pytest.raises(PermissionDenied):
        intake.log_session(case_id, NAV, held_on=today, minutes=60, kind="individual")
    with pytest.raises(PermissionDenied):
        intake.hours_used(case_id, NAV)
    with pytest.raises(NotCaseMember):
        intake.log_session(case_id, Actor("kt-2", "kognitiv_terapeut"), held_on=today,
                           minutes=60, kind="individual")
    for bad in ({"minutes": 0}, {"kind": "phone"}, {"held_on": today + timedelta(days=1)}):
        args = {"held_on": today, "minutes": 60, "kind": "individual", **bad}
        with pytest.raises(InvalidInput):
            intake.log_session(case_id, THERAPIST, **args)  # type: ignore[arg-type]
    assert intake.hours_used(case_id, THERAPIST).sessions == 4


def test_a_pilot_without_a_range_says_so(any_coordinator: Coordinator) -> None:
    intake, case_id = open_case(any_coordinator, "ha")
    assert intake.hours_used(case_id, THERAPIST).status == "no_range"
