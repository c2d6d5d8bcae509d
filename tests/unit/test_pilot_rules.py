"""One test (at least) per rule that makes a pilot distinctive, through the Coordinator.

Expected values come from the domain brief (shared/domain/README.md §5), not from the
definitions: ages, weeks, holidays and dates are worked out by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from coordinator.access.policy import TEAM_ROLES
from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import Actor
from coordinator.demo import CHANNEL_ROLE, JOURNEYS, Step, actor, drive, referral, subject
from coordinator.errors import GuardFailed, NotEligible, ReferrerNotAllowed, UnknownTrigger
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.facts import Profile

OSLO = ZoneInfo("Europe/Oslo")
TODAY = date(2027, 1, 4)                  # the clock fixture's day (a Monday)
PERSON = Actor("person-1", "bruker")      # the person every case here is about


def born(age: int, *, days_before_birthday: int = 0) -> date:
    """Exactly ``age`` on TODAY; ``days_before_birthday`` > 0 makes the next birthday near."""
    if days_before_birthday:
        return date(TODAY.year - age - 1, 1, 4) + timedelta(days=days_before_birthday)
    return date(TODAY.year - age, 1, 1)


def person(pilot: str, **changes: object) -> tuple[str, Profile]:
    channel, profile = referral(pilot, TODAY)
    return channel, replace(profile, **changes)  # type: ignore[arg-type]


def open_case(c: Coordinator, pilot: str, **changes: object) -> UUID:
    channel, profile = person(pilot, **changes)
    # Every team role is on the team: these tests are about workflow rules, not access.
    everyone = tuple(actor(pilot, role) for role in sorted(TEAM_ROLES))
    return c.open_case(OpenCase(pilot, channel, profile, actor(pilot, CHANNEL_ROLE[channel]),
                                subject_id=PERSON.id, team=everyone)).id


def steps_before(pilot: str, trigger: str, occurrence: int = 1) -> tuple[Step, ...]:
    """The pilot's journey up to (not including) the ``occurrence``-th ``trigger``."""
    seen = 0
    for index, step in enumerate(JOURNEYS[pilot]):
        seen += step.trigger == trigger
        if seen == occurrence:
            return JOURNEYS[pilot][:index]
    raise AssertionError(f"{pilot} journey has no {trigger}")


def walk(c: Coordinator, clock: FakeClock, case_id: UUID, pilot: str,
         steps: tuple[Step, ...], *, consent: bool = True) -> None:
    if not consent:
        steps = tuple(replace(s, consent=None) for s in steps)
    drive(c, case_id, pilot, steps, advance=lambda days: clock.advance(days=days))


def fire(c: Coordinator, case_id: UUID, pilot: str, trigger: str, role: str,
         **args: object) -> str:
    return c.fire(FireTrigger(case_id, trigger, actor(pilot, role), args)).state


def grant(c: Coordinator, case_id: UUID, parties: frozenset[str] = frozenset({"nav"})) -> None:
    c.grant_consent(GrantConsent(case_id, PERSON, frozenset({"coordination"}),
                                 frozenset({"kartlegging"}), parties, "signed_form", "v1"))


def deadline(c: Coordinator, case_id: UUID, name: str) -> tuple[str, datetime | None]:
    [found] = [d for d in c.view(case_id).deadlines if d.name == name]
    return found.status, found.due_at


# -- eligibility ---------------------------------------------------------------------------

REFUSED = [
    ("fredrikstad", {"birth_date": born(30)}, "age_above_29"),                 # under 30
    ("tromso", {"birth_date": born(30)}, "age_above_29"),                      # under 30
    ("ringsaker", {"birth_date": born(56)}, "age_above_55"),                   # 18-55
    ("ringsaker", {"birth_date": born(17)}, "age_below_18"),
    ("ringsaker", {"sick_leave_start": TODAY - timedelta(weeks=9)}, "sick_leave_over_8_weeks"),
    ("kristiansand", {"employed": False}, "not_employed"),                     # has a job
    ("kristiansand", {"sick_leave_start": TODAY - timedelta(weeks=12)},
     "sick_leave_over_11_weeks"),                                              # under 12 weeks
    ("nesodden", {"in_rph_treatment": False}, "not_in_rph_treatment"),
    ("stovner", {"birth_date": born(17)}, "age_below_18"),                     # over 18
    ("stovner", {"employed": False}, "not_employed"),                          # works or sick
    ("fredrikstad", {"problems": frozenset({"substance"})}, "outside_target_group"),
]


@pytest.mark.parametrize(("pilot", "changes", "reason"), REFUSED)
def test_a_person_outside_the_pilots_criteria_is_refused_and_nothing_is_written(
        coordinator: Coordinator, pilot: str, changes: dict[str, object], reason: str) -> None:
    open_case(coordinator, "ha")                                 # some unrelated case
    before = coordinator.count_cases()
    with pytest.raises(NotEligible) as refused:
        open_case(coordinator, pilot, **changes)
    assert reason in refused.value.reasons
    assert refused.value.details["pilot"] == pilot
    assert coordinator.count_cases() == before
    assert coordinator.list_cases(pilot=pilot) == []


ACCEPTED_AT_THE_EDGE = [
    ("fredrikstad", {"birth_date": born(29, days_before_birthday=1)}),         # 30 tomorrow
    ("tromso", {"birth_date": born(29, days_before_birthday=1)}),
    ("ringsaker", {"birth_date": born(55)}),
    ("ringsaker", {"birth_date": born(18)}),
    ("ringsaker", {"sick_leave_start": TODAY - timedelta(weeks=8, days=6)}),   # still week 8
    ("kristiansand", {"sick_leave_start": TODAY - timedelta(weeks=11, days=6)}),
    ("stovner", {"birth_date": born(18)}),                                     # 18 counts
    ("fredrikstad", {"problems": frozenset({"substance_early"})}),             # 004:272-274
    ("lillestrom", {"problems": frozenset({"substance"})}),                    # 004:799-805
    ("fredrikstad", {"problems": frozenset({"sleep"})}),
]


@pytest.mark.parametrize(("pilot", "changes"), ACCEPTED_AT_THE_EDGE)
def test_a_person_just_inside_the_criteria_is_accepted(coordinator: Coordinator, pilot: str,
                                                       changes: dict[str, object]) -> None:
    case_id = open_case(coordinator, pilot, **changes)
    assert coordinator.summary(case_id).state == "referred"


def test_eligibility_is_checked_again_when_intake_begins(coordinator: Coordinator,
                                                         clock: FakeClock) -> None:
    """Ringsaker: eligible at referral, but nine weeks into sick leave when intake starts."""
    case_id = open_case(coordinator, "ringsaker",
                        sick_leave_start=TODAY - timedelta(weeks=8, days=6))
    clock.advance(days=1)
    with pytest.raises(GuardFailed) as refused:
        fire(coordinator, case_id, "ringsaker", "begin_intake", "fastlege")
    assert any("sick_leave_over_8_weeks" in g for g in refused.value.failed_guards)


# -- referral channels ---------------------------------------------------------------------

@pytest.mark.parametrize(("pilot", "channel"), [
    ("ringsaker", "self_referral"),      # only GPs recruit (004:968-976)
    ("ringsaker", "nav"),
    ("stovner", "rph_intake"),           # GPs refer via e-link (004:889-891)
    ("nesodden", "fastlege"),            # intake via RPH therapists (004:481-487)
    ("bjerke", "nav"),                   # Nav recruits only in Tromsø, Fredrikstad
])
def test_a_referral_through_a_channel_the_pilot_does_not_use_is_refused(
        coordinator: Coordinator, pilot: str, channel: str) -> None:
    _, profile = person(pilot)
    with pytest.raises(ReferrerNotAllowed):
        coordinator.open_case(OpenCase(pilot, channel, profile, actor(pilot, "bruker"),
                                       subject_id=subject(pilot)))
    assert coordinator.count_cases() == 0


@pytest.mark.parametrize(("pilot", "channel"), [
    ("ha", "self_referral"), ("ha", "fastlege"),                  # QR self-registration
    ("tromso", "nav"), ("fredrikstad", "nav"), ("fredrikstad", "rph_intake"),
])
def test_the_pilots_own_channels_are_accepted(coordinator: Coordinator, pilot: str,
                                              channel: str) -> None:
    _, profile = person(pilot)
    assert coordinator.open_case(OpenCase(pilot, channel, profile,
                                          actor(pilot, CHANNEL_ROLE[channel]),
                                          subject_id=subject(pilot))).pilot == pilot


# -- deadlines -----------------------------------------------------------------------------

def test_ha_mapping_within_a_week_counts_norwegian_workdays_over_easter(
        coordinator: Coordinator, clock: FakeClock) -> None:
    """Referral Wed 24 March 2027; 25, 26 and 29 March are holidays; the fifth workday is
    Mon 5 April, so the mapping is due by the end of that day."""
    clock.set(datetime(2027, 3, 24, 9, 0, tzinfo=OSLO))
    case_id = open_case(coordinator, "ha")
    due = datetime(2027, 4, 6, 0, 0, tzinfo=OSLO)
    assert deadline(coordinator, case_id, "kartlegging") == ("pending", due)
    clock.set(datetime(2027, 4, 5, 15, 0, tzinfo=OSLO))
    assert deadline(coordinator, case_id, "kartlegging")[0] == "pending"
    clock.set(datetime(2027, 4, 6, 9, 0, tzinfo=OSLO))
    assert deadline(coordinator, case_id, "kartlegging")[0] == "overdue"
    fire(coordinator, case_id, "ha", "begin_intake", "kognitiv_terapeut")
    fire(coordinator, case_id, "ha", "complete_intake", "nav_veileder")
    assert deadline(coordinator, case_id, "kartlegging")[0] == "met_late"


def test_ha_mapping_done_in_time_is_met(coordinator: Coordinator, clock: FakeClock) -> None:
    clock.set(datetime(2027, 3, 24, 9, 0, tzinfo=OSLO))
    case_id = open_case(coordinator, "ha")
    clock.set(datetime(2027, 4, 5, 14, 0, tzinfo=OSLO))
    fire(coordinator, case_id, "ha", "begin_intake", "kognitiv_terapeut")
    fire(coordinator, case_id, "ha", "complete_intake", "nav_veileder")
    clock.set(datetime(2027, 4, 20, 9, 0, tzinfo=OSLO))
    assert deadline(coordinator, case_id, "kartlegging")[0] == "met"


def test_bjerke_info_letter_is_due_by_week_eight_of_sick_leave(coordinator: Coordinator,
                                                               clock: FakeClock) -> None:
    """Sick leave from Mon 14 Dec 2026 reaches eight weeks (56 days) on Mon 8 Feb 2027: the
    letter is due by the end of that day, Oslo time ("senest ved åtte ukers sykefravær")."""
    late = open_case(coordinator, "bjerke", sick_leave_start=date(2026, 12, 14))
    on_time = open_case(coordinator, "bjerke", sick_leave_start=date(2026, 12, 14))
    not_sick = open_case(coordinator, "bjerke", sick_leave_start=None)
    due = datetime(2027, 2, 9, 0, 0, tzinfo=OSLO)
    assert deadline(coordinator, late, "info_letter") == ("pending", due)
    assert deadline(coordinator, not_sick, "info_letter") == ("not_started", None)
    clock.set(datetime(2027, 2, 1, 10, 0, tzinfo=OSLO))                 # week 7
    fire(coordinator, on_time, "bjerke", "send_info_letter", "nav_veileder")
    clock.set(datetime(2027, 2, 8, 23, 0, tzinfo=OSLO))
    assert deadline(coordinator, late, "info_letter")[0] == "pending"
    clock.set(datetime(2027, 2, 9, 8, 0, tzinfo=OSLO))
    assert deadline(coordinator, late, "info_letter")[0] == "overdue"
    assert deadline(coordinator, on_time, "info_letter")[0] == "met"
    assert coordinator.summary(on_time).state == "referred"          # a letter, not a step


def test_ringsaker_follow_up_lasts_at_most_twelve_weeks(coordinator: Coordinator,
                                                        clock: FakeClock) -> None:
    case_id = open_case(coordinator, "ringsaker")
    walk(coordinator, clock, case_id, "ringsaker", steps_before("ringsaker", "begin_closing"))
    assert coordinator.summary(case_id).state == "follow_up"
    planned = clock.now().astimezone(OSLO).date()
    assert deadline(coordinator, case_id, "follow_up_ends") == (
        "pending", datetime.combine(planned + timedelta(weeks=12, days=1), datetime.min.time(),
                                    tzinfo=OSLO))
    clock.advance(weeks=12)                                       # same day, 12 weeks on
    assert deadline(coordinator, case_id, "follow_up_ends")[0] == "pending"
    clock.advance(days=1)
    assert deadline(coordinator, case_id, "follow_up_ends")[0] == "overdue"
    fire(coordinator, case_id, "ringsaker", "begin_closing", "nav_veileder")
    assert deadline(coordinator, case_id, "follow_up_ends")[0] == "met_late"


# -- re-entry (Hå) -------------------------------------------------------------------------

def test_ha_reentry_after_relapse_skips_a_new_intake(coordinator: Coordinator,
                                                     clock: FakeClock) -> None:
    case_id = open_case(coordinator, "ha")
    walk(coordinator, clock, case_id, "ha", JOURNEYS["ha"])
    assert coordinator.summary(case_id).state == "closed"
    clock.advance(days=60)
    back = coordinator.fire(FireTrigger(case_id, "reenter", actor("ha", "nav_veileder"),
                                        {"reason": "Tilbakefall"}))
    assert (back.state, back.closed_at) == ("follow_up", None)
    last = coordinator.history(case_id)[-1]
    assert (last.trigger, last.from_state, last.to_state, last.reason) == (
        "reenter", "closed", "follow_up", "Tilbakefall")
    assert coordinator.view(case_id).record["episode"] == 2
    for trigger in ("begin_closing", "close"):                    # a second episode closes
        fire(coordinator, case_id, "ha", trigger, "nav_veileder")
    assert coordinator.summary(case_id).state == "closed"
    triggers = [e.trigger for e in coordinator.history(case_id)]
    assert triggers.count("begin_intake") == triggers.count("complete_intake") == 1


def test_a_pilot_without_reentry_has_no_such_action(coordinator: Coordinator,
                                                    clock: FakeClock) -> None:
    case_id = open_case(coordinator, "ringsaker")
    walk(coordinator, clock, case_id, "ringsaker", JOURNEYS["ringsaker"])
    with pytest.raises(UnknownTrigger):
        fire(coordinator, case_id, "ringsaker", "reenter", "fastlege")
    assert coordinator.summary(case_id).state == "closed"


# -- Nesodden: two tracks, closing conversation and measures -------------------------------

def _nesodden_in_closing(c: Coordinator, clock: FakeClock) -> UUID:
    case_id = open_case(c, "nesodden")
    path = tuple(s for s in steps_before("nesodden", "close") if s.trigger != "finish_track")
    walk(c, clock, case_id, "nesodden", path)
    assert c.summary(case_id).state == "closing"
    return case_id


def test_nesodden_closes_only_when_health_and_nav_are_both_done(coordinator: Coordinator,
                                                                clock: FakeClock) -> None:
    c = coordinator
    case_id = _nesodden_in_closing(c, clock)
    closers = ["bruker", "jobbspesialist"]
    with pytest.raises(GuardFailed) as neither:
        fire(c, case_id, "nesodden", "close", "jobbspesialist", attendees=closers)
    assert any(g.endswith("tracks_open:health+nav") for g in neither.value.failed_guards)
    fire(c, case_id, "nesodden", "finish_track", "rph_behandler", side="health")
    with pytest.raises(GuardFailed) as nav_open:
        fire(c, case_id, "nesodden", "close", "jobbspesialist", attendees=closers)
    assert [g.split("=")[1] for g in nav_open.value.failed_guards] == ["tracks_open:nav"]
    assert c.summary(case_id).state == "closing"                  # kept open in the journal
    fire(c, case_id, "nesodden", "finish_track", "jobbspesialist", side="nav")
    assert fire(c, case_id, "nesodden", "close", "jobbspesialist", attendees=closers) == "closed"


@pytest.mark.parametrize("closer", ["jobbspesialist", "kognitiv_terapeut"])
def test_nesodden_closing_conversation_is_held_by_jobbspesialist_or_therapist(
        coordinator: Coordinator, clock: FakeClock, closer: str) -> None:
    c = coordinator
    case_id = _nesodden_in_closing(c, clock)
    for side in ("health", "nav"):
        fire(c, case_id, "nesodden", "finish_track", closer, side=side)
    with pytest.raises(GuardFailed) as alone:
        fire(c, case_id, "nesodden", "close", closer, attendees=["bruker", "nav_veileder"])
    assert any("needs_one_of" in g for g in alone.value.failed_guards)
    assert fire(c, case_id, "nesodden", "close", closer, attendees=["bruker", closer]) == "closed"


def test_nesodden_needs_start_and_end_measures_to_close(coordinator: Coordinator,
                                                        clock: FakeClock) -> None:
    c = coordinator
    case_id = open_case(c, "nesodden")
    path = tuple(s for s in steps_before("nesodden", "close")
                 if s.trigger not in ("record_outcome",))
    walk(c, clock, case_id, "nesodden", path)
    with pytest.raises(GuardFailed) as missing:
        fire(c, case_id, "nesodden", "close", "jobbspesialist",
             attendees=["bruker", "jobbspesialist"])
    assert [g.split("=")[1] for g in missing.value.failed_guards] == [
        "outcomes_missing:start+end"]
    fire(c, case_id, "nesodden", "record_outcome", "jobbspesialist", phase="end")
    fire(c, case_id, "nesodden", "record_outcome", "rph_behandler", phase="start")
    assert fire(c, case_id, "nesodden", "close", "jobbspesialist",
                attendees=["bruker", "jobbspesialist"]) == "closed"


# -- the consent gate ----------------------------------------------------------------------

# Where each pilot takes consent (domain brief §3, §6.2): on the RPH mapping form in Bjerke
# and Kristiansand, before the joint start everywhere else.
GATE = {"bjerke": "complete_intake", "kristiansand": "complete_intake"}


@pytest.mark.parametrize("pilot", sorted(JOURNEYS))
def test_the_consent_gate_refuses_without_consent_and_opens_with_it(
        coordinator: Coordinator, clock: FakeClock, pilot: str) -> None:
    c = coordinator
    gate = GATE.get(pilot, "confirm_consent")
    case_id = open_case(c, pilot)
    walk(c, clock, case_id, pilot, steps_before(pilot, gate), consent=False)
    step = JOURNEYS[pilot][len(steps_before(pilot, gate))]
    assert step.consent is not None                      # the journey grants it right here
    version = c.summary(case_id).version
    with pytest.raises(GuardFailed) as refused:
        fire(c, case_id, pilot, gate, step.role)
    assert any("no_consent:coordination:nav" in g for g in refused.value.failed_guards)
    grant(c, case_id, frozenset({"employer"}))           # consent to someone else: still no
    with pytest.raises(GuardFailed):
        fire(c, case_id, pilot, gate, step.role)
    assert c.summary(case_id).version == version
    grant(c, case_id)
    assert fire(c, case_id, pilot, gate, step.role) == "get_to_know"


def test_bjerke_and_kristiansand_have_no_separate_consent_state() -> None:
    from coordinator.workflows.registry import WorkflowRegistry

    registry = WorkflowRegistry.builtin()
    for pilot in JOURNEYS:
        states = registry.latest(pilot).definition.states
        assert ("consent" in states) == (pilot not in GATE), pilot


def test_withdrawn_consent_closes_the_gate_again(coordinator: Coordinator,
                                                 clock: FakeClock) -> None:
    c = coordinator
    case_id = open_case(c, "nesodden")
    walk(c, clock, case_id, "nesodden", steps_before("nesodden", "confirm_consent"))
    grant(c, case_id)
    assert {a.trigger: a.allowed for a in c.view(case_id).actions}["confirm_consent"]
    clock.advance(minutes=5)
    c.withdraw_consent(WithdrawConsent(case_id, PERSON,
                                       frozenset({"coordination"}), frozenset({"kartlegging"}),
                                       frozenset({"nav"}), "signed_form"))
    with pytest.raises(GuardFailed) as refused:
        fire(c, case_id, "nesodden", "confirm_consent", "rph_behandler")
    assert any("no_consent" in g for g in refused.value.failed_guards)
    assert c.summary(case_id).state == "consent"


def test_fredrikstad_discusses_anonymised_cases_before_any_consent(
        coordinator: Coordinator) -> None:
    case_id = open_case(coordinator, "fredrikstad")
    state = fire(coordinator, case_id, "fredrikstad", "discuss_anonymised", "syfo_veileder",
                 attendees=["syfo_veileder", "rph_behandler"])
    assert state == "referred"
    [review] = coordinator.view(case_id).record["meetings"]
    assert review["kind"] == "anonymised_case_review"


# -- the joint start -----------------------------------------------------------------------

@pytest.mark.parametrize(("pilot", "attendees", "missing"), [
    ("ringsaker", ["bruker", "nav_veileder", "kognitiv_terapeut"], "fastlege"),
    ("ringsaker", ["fastlege", "nav_veileder", "kognitiv_terapeut"], "bruker"),
    ("nesodden", ["bruker", "rph_behandler"], "jobbspesialist"),
    ("stovner", ["fastlege", "nav_veileder", "bruker"], "kognitiv_terapeut"),
])
def test_the_joint_start_needs_the_pilots_participants(
        coordinator: Coordinator, clock: FakeClock, pilot: str, attendees: list[str],
        missing: str) -> None:
    case_id = open_case(coordinator, pilot)
    walk(coordinator, clock, case_id, pilot, steps_before(pilot, "hold_get_to_know"))
    with pytest.raises(GuardFailed) as refused:
        fire(coordinator, case_id, pilot, "hold_get_to_know", "fastlege", attendees=attendees)
    assert any(g.endswith(f"missing_participants:{missing}")
               for g in refused.value.failed_guards)
    assert coordinator.summary(case_id).state == "get_to_know"


def test_stovner_discusses_the_case_without_the_patient(coordinator: Coordinator,
                                                        clock: FakeClock) -> None:
    case_id = open_case(coordinator, "stovner")
    walk(coordinator, clock, case_id, "stovner", steps_before("stovner", "hold_get_to_know"))
    state = fire(coordinator, case_id, "stovner", "hold_get_to_know", "fastlege",
                 attendees=["fastlege", "kognitiv_terapeut", "nav_veileder"])
    assert state == "planning"


def test_ringsaker_v2_needs_the_helsenorge_form_before_the_meeting(
        coordinator: Coordinator, clock: FakeClock) -> None:
    c = coordinator
    case_id = open_case(c, "ringsaker")
    path = tuple(s for s in steps_before("ringsaker", "hold_get_to_know")
                 if s.trigger != "receive_mapping_form")
    walk(c, clock, case_id, "ringsaker", path)
    everyone = ["bruker", "fastlege", "nav_veileder", "kognitiv_terapeut"]
    with pytest.raises(GuardFailed) as refused:
        fire(c, case_id, "ringsaker", "hold_get_to_know", "fastlege", attendees=everyone)
    assert [g.split("=")[1] for g in refused.value.failed_guards] == [
        "not_done:receive_mapping_form"]
    fire(c, case_id, "ringsaker", "receive_mapping_form", "fastlege")
    assert fire(c, case_id, "ringsaker", "hold_get_to_know", "fastlege",
                attendees=everyone) == "planning"

