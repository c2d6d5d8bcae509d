"""Synthetic demo data: one happy path per pilot, and a loader that spreads cases over it.

``JOURNEYS`` holds, for every pilot, the ordered steps that take a case from referral to
``closed`` under that pilot's latest workflow definition; the end-to-end tests drive the
same steps. ``load_demo`` opens cases for every pilot and stops each at a different point
of its journey (plus declined and withdrawn exits, and in Hå a case that re-entered after
closing). Everything goes through the ``Coordinator`` facade. All people are synthetic:
birth dates are drawn relative to the clock's today, so the same people stay eligible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.service import Coordinator
from coordinator.workflows.definition import WorkflowDefinition
from coordinator.workflows.facts import Profile

DEMO_SEED = 20270104


@dataclass(frozen=True)
class ConsentGrant:
    """A consent the person gives before a step (scopes as in ``consent.model``)."""

    purposes: frozenset[str] = frozenset({"coordination"})
    categories: frozenset[str] = frozenset({"kartlegging", "work_status"})
    parties: frozenset[str] = frozenset({"nav"})
    method: str = "signed_form"
    form_version: str = "v1"


@dataclass(frozen=True)
class Step:
    """One action on a case: ``trigger`` fired by someone in ``role`` with ``args``.

    ``consent`` is granted just before firing; ``advance_days`` is how much time passes
    before the step (honoured only by callers that control the clock, i.e. tests).
    """

    trigger: str
    role: str
    args: Mapping[str, Any] = field(default_factory=dict)
    consent: ConsentGrant | None = None
    advance_days: float = 0


GRANT = ConsentGrant()
DIGITAL_GRANT = ConsentGrant(method="digital")


def _with(key: str, *roles: str) -> dict[str, Any]:
    return {key: list(roles)}


def _met(*roles: str) -> dict[str, Any]:
    return _with("attendees", *roles)


def _seen(*roles: str) -> dict[str, Any]:
    return _with("visible_to", *roles)


def _outcome(phase: str) -> dict[str, Any]:
    return {"phase": phase}


JOURNEYS: dict[str, tuple[Step, ...]] = {
    "bjerke": (
        Step("send_info_letter", "nav_veileder"),                      # by week 8
        Step("begin_intake", "rph_behandler", advance_days=1),
        Step("complete_intake", "rph_behandler", consent=GRANT, advance_days=2),
        Step("hold_get_to_know", "rph_behandler",
             _met("bruker", "rph_behandler", "nav_veileder"), advance_days=5),
        Step("agree_plan", "rph_behandler", _seen("bruker", "rph_behandler", "nav_veileder")),
        Step("attend_course", "rph_behandler", _met("bruker", "rph_behandler", "syfo_veileder"),
             advance_days=14),
        Step("begin_closing", "nav_veileder", advance_days=42),
        Step("close", "rph_behandler", advance_days=7),
    ),
    "fredrikstad": (
        Step("discuss_anonymised", "syfo_veileder",
             _met("syfo_veileder", "rph_behandler", "brobygger")),
        Step("begin_intake", "rph_behandler", advance_days=1),
        Step("complete_intake", "rph_behandler", advance_days=3),
        Step("confirm_consent", "rph_behandler", consent=GRANT, advance_days=1),
        Step("hold_get_to_know", "nav_veileder",
             _met("bruker", "rph_behandler", "nav_veileder"), advance_days=7),
        Step("agree_plan", "nav_veileder", _seen("bruker", "rph_behandler", "nav_veileder")),
        Step("begin_closing", "nav_veileder", advance_days=56),
        Step("close", "rph_behandler", advance_days=7),
    ),
    "kristiansand": (
        Step("begin_intake", "rph_behandler", advance_days=1),
        Step("complete_intake", "rph_behandler", consent=GRANT, advance_days=3),
        Step("hold_get_to_know", "kognitiv_terapeut",
             _met("bruker", "nav_veileder", "kognitiv_terapeut"), advance_days=4),
        Step("agree_plan", "kognitiv_terapeut",
             _seen("bruker", "nav_veileder", "kognitiv_terapeut")),
        *(Step("attend_course", "kognitiv_terapeut", _met("bruker", "kognitiv_terapeut"),
               advance_days=7) for _ in range(6)),                     # six sessions
        Step("begin_closing", "nav_veileder", advance_days=7),
        Step("close", "nav_veileder", advance_days=3),
    ),
    "nesodden": (
        Step("begin_intake", "rph_behandler"),
        Step("record_outcome", "rph_behandler", _outcome("start")),
        Step("complete_intake", "rph_behandler", advance_days=2),
        Step("confirm_consent", "rph_behandler", consent=GRANT, advance_days=1),
        Step("hold_get_to_know", "jobbspesialist",
             _met("bruker", "rph_behandler", "jobbspesialist"), advance_days=5),
        Step("agree_plan", "jobbspesialist", _seen("bruker", "rph_behandler", "jobbspesialist")),
        Step("meet_employer", "jobbspesialist", _met("bruker", "arbeidsgiver", "jobbspesialist"),
             advance_days=14),
        Step("finish_track", "rph_behandler", {"side": "health"}, advance_days=42),
        Step("begin_closing", "jobbspesialist", advance_days=7),
        Step("record_outcome", "jobbspesialist", _outcome("end")),
        Step("finish_track", "jobbspesialist", {"side": "nav"}),
        Step("close", "jobbspesialist", _met("bruker", "jobbspesialist")),
    ),
    "tromso": (
        Step("begin_intake", "rph_behandler", advance_days=1),
        Step("complete_intake", "rph_behandler", advance_days=3),
        Step("confirm_consent", "rph_behandler", consent=GRANT),
        Step("hold_get_to_know", "nav_veileder",
             _met("rph_behandler", "nav_veileder", "arbeidsgiver"), advance_days=3),
        Step("agree_plan", "nav_veileder", _seen("bruker", "rph_behandler", "nav_veileder")),
        Step("begin_closing", "nav_veileder", advance_days=70),
        Step("close", "rph_behandler", advance_days=7),
    ),
    "ha": (
        Step("begin_intake", "kognitiv_terapeut", advance_days=1),
        Step("complete_intake", "nav_veileder", advance_days=3),      # within a week
        Step("confirm_consent", "nav_veileder", consent=DIGITAL_GRANT),
        Step("hold_get_to_know", "nav_veileder", _met("nav_veileder", "kognitiv_terapeut"),
             advance_days=2),
        Step("agree_plan", "kognitiv_terapeut",
             _seen("bruker", "nav_veileder", "kognitiv_terapeut", "fastlege")),
        Step("join_gp_appointment", "nav_veileder", _met("bruker", "nav_veileder", "fastlege"),
             advance_days=10),
        Step("update_gp", "kognitiv_terapeut",
             _met("nav_veileder", "kognitiv_terapeut", "fastlege"), advance_days=20),
        Step("begin_closing", "nav_veileder", advance_days=30),
        Step("close", "kognitiv_terapeut", advance_days=7),
    ),
    "lillestrom": (
        Step("begin_intake", "jobbspesialist", advance_days=1),
        Step("complete_intake", "jobbspesialist", advance_days=3),
        Step("confirm_consent", "jobbspesialist", consent=GRANT),
        Step("hold_get_to_know", "jobbspesialist", _met("bruker", "jobbspesialist", "fastlege"),
             advance_days=3),
        Step("agree_plan", "jobbspesialist", _seen("bruker", "jobbspesialist", "fastlege")),
        Step("attend_mastery_group", "kognitiv_terapeut", _met("bruker", "kognitiv_terapeut"),
             advance_days=14),
        Step("begin_closing", "jobbspesialist", advance_days=42),
        Step("close", "jobbspesialist", advance_days=7),
    ),
    "stovner": (
        Step("begin_intake", "kognitiv_terapeut", advance_days=2),
        Step("complete_intake", "kognitiv_terapeut", advance_days=3),
        Step("confirm_consent", "fastlege", consent=GRANT),
        Step("hold_get_to_know", "fastlege",
             _met("fastlege", "kognitiv_terapeut", "nav_veileder"), advance_days=5),
        Step("agree_plan", "kognitiv_terapeut",
             _seen("bruker", "fastlege", "kognitiv_terapeut", "nav_veileder")),
        Step("begin_closing", "kognitiv_terapeut", advance_days=63),
        Step("close", "kognitiv_terapeut", advance_days=7),
    ),
    "ringsaker": (
        Step("begin_intake", "fastlege", advance_days=1),
        Step("complete_intake", "fastlege", advance_days=1),
        Step("receive_mapping_form", "fastlege", advance_days=3),     # HelseNorge form
        Step("confirm_consent", "fastlege", consent=DIGITAL_GRANT),
        Step("hold_get_to_know", "fastlege",
             _met("bruker", "fastlege", "nav_veileder", "kognitiv_terapeut"), advance_days=2),
        Step("record_outcome", "kognitiv_terapeut", _outcome("start")),
        Step("agree_plan", "kognitiv_terapeut",
             _seen("bruker", "fastlege", "nav_veileder", "kognitiv_terapeut")),
        Step("begin_closing", "nav_veileder", advance_days=77),       # within 12 weeks
        Step("record_outcome", "kognitiv_terapeut", _outcome("end")),
        Step("close", "fastlege", advance_days=2),
    ),
}

# -- synthetic people ----------------------------------------------------------------------
@dataclass(frozen=True)
class _People:
    """Who a pilot's demo referrals are: ranges the loader draws from, all eligible."""

    channel: str                              # the canonical referral channel
    ages: tuple[int, int]                     # inclusive
    problems: tuple[str, ...]
    sick_leave_weeks: tuple[int, int] | None = None    # None: at risk, not on sick leave
    grade: str = "none"
    employed: bool = True
    in_rph_treatment: bool = False


PEOPLE: dict[str, _People] = {
    "bjerke": _People("rph_intake", (24, 60), ("mental_mild_moderate",), (1, 6), "full"),
    "fredrikstad": _People("nav", (19, 29),
                           ("mental_mild_moderate", "msk", "sleep", "substance_early"),
                           (0, 4), "partial"),
    "kristiansand": _People("rph_intake", (24, 60), ("mental_mild_moderate",), (0, 10),
                            "partial"),
    "nesodden": _People("rph_intake", (22, 62), ("mental_mild_moderate",),
                        in_rph_treatment=True),
    "tromso": _People("rph_intake", (18, 29), ("mental_mild_moderate",), (0, 6), "partial"),
    "ha": _People("fastlege", (20, 64), ("mental_mild_moderate", "msk"), (0, 4), "pending"),
    "lillestrom": _People("fastlege", (20, 64), ("mental_mild_moderate", "substance", "msk"),
                          (0, 8), "full"),
    "stovner": _People("fastlege", (18, 66), ("mental_mild_moderate", "msk"), (0, 10),
                       "partial"),
    "ringsaker": _People("fastlege", (18, 55), ("mental_mild_moderate", "msk"), (0, 7),
                         "partial"),
}

# The person who sends a referral through each channel.
CHANNEL_ROLE = {"rph_intake": "rph_behandler", "fastlege": "fastlege", "nav": "nav_veileder",
                "self_referral": "bruker"}


def _born(today: date, age: int, days_since_birthday: int) -> date:
    """A birth date making the person exactly ``age`` on ``today``."""
    last = today - timedelta(days=days_since_birthday)
    try:
        return last.replace(year=last.year - age)
    except ValueError:                       # 29 February in a non-leap year
        return last.replace(year=last.year - age, day=28)


def referral(pilot: str, today: date, rng: random.Random | None = None) -> tuple[str, Profile]:
    """A referral channel and an eligible synthetic person for ``pilot`` on ``today``.

    Without ``rng`` the middle of every range is used (the canonical person)."""
    p = PEOPLE[pilot]

    def pick(low: int, high: int) -> int:
        return (low + high) // 2 if rng is None else rng.randint(low, high)

    weeks = None if p.sick_leave_weeks is None else pick(*p.sick_leave_weeks)
    problems = (p.problems[0],) if rng is None else tuple(
        rng.sample(p.problems, k=rng.randint(1, min(2, len(p.problems)))))
    profile = Profile(
        birth_date=_born(today, pick(*p.ages), pick(10, 350)),
        problems=frozenset(problems),
        employed=p.employed,
        sick_leave_start=None if weeks is None else today - timedelta(weeks=weeks, days=1),
        sick_leave_grade=p.grade if weeks is not None else "none",
        in_rph_treatment=p.in_rph_treatment,
    )
    return p.channel, profile


# -- driving a case ------------------------------------------------------------------------
def actor(pilot: str, role: str) -> Actor:
    return Actor(f"demo-{pilot}-{role}", role)


def subject(pilot: str) -> str:
    """The pseudonymous user id of the demo person: one synthetic bruker per pilot, so
    ``dev-token --role bruker --sub demo-<pilot>-bruker`` sees that pilot's demo cases."""
    return actor(pilot, "bruker").id


def team(pilot: str) -> tuple[Actor, ...]:
    """The pilot's demo team: everyone who acts in its journey (the bruker acts as the
    case's subject, not as a member), plus the Nav veileder who may re-enter a case."""
    roles = {s.role for s in JOURNEYS[pilot]} | {"nav_veileder"}
    return tuple(actor(pilot, role) for role in sorted(roles - {"bruker"}))


def take_step(coordinator: Coordinator, case_id: UUID, pilot: str, step: Step) -> None:
    """Grant the step's consent if any, then fire its trigger."""
    who = actor(pilot, step.role)
    if step.consent is not None:
        c = step.consent
        coordinator.grant_consent(GrantConsent(case_id, who, c.purposes, c.categories,
                                               c.parties, c.method, c.form_version))
        # The Nav veileder reads the kartlegging under the new consent: an access-log line.
        coordinator.read_data(case_id, actor=actor(pilot, "nav_veileder"),
                              purpose=sorted(c.purposes)[0], category="kartlegging")
    coordinator.fire(FireTrigger(case_id, step.trigger, who, dict(step.args)))


def drive(coordinator: Coordinator, case_id: UUID, pilot: str, steps: tuple[Step, ...], *,
          advance: Callable[[float], None] | None = None) -> None:
    """Take ``steps`` in order; ``advance(days)`` lets a test move its fake clock first."""
    for step in steps:
        if advance is not None and step.advance_days:
            advance(step.advance_days)
        take_step(coordinator, case_id, pilot, step)


def states_along(definition: WorkflowDefinition, steps: tuple[Step, ...]) -> list[str]:
    """The state after each prefix of ``steps`` (index 0: nothing done yet)."""
    state = str(definition.initial)
    states = [state]
    for step in steps:
        dest = next((t.dest for t in definition.transitions
                     if t.trigger == step.trigger and state in t.sources), None)
        state = state if dest is None else str(dest)
        states.append(state)
    return states


# -- the demo loader -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    pilot: str
    steps: tuple[Step, ...]
    version: int | None = None       # None: the latest definition


# Cases that started before Ringsaker v2 existed and stay on v1 until migrated, so that
# `coordinator cases migrate --pilot ringsaker --to 2 --dry-run` has movable and blocked cases.
RINGSAKER_V1 = tuple(s for s in JOURNEYS["ringsaker"] if s.trigger != "receive_mapping_form"
                     and not (s.trigger == "record_outcome" and s.args.get("phase") == "start"))
_LEGACY = (("ringsaker", 1, RINGSAKER_V1, ("intake", "get_to_know", "follow_up", "closing")),)


_WITHDRAW = Step("withdraw", "bruker", {"reason": "Ønsker ikke mer oppfølging nå"})
_REENTER = Step("reenter", "nav_veileder", {"reason": "Tilbakefall til sykmelding"})


def _plans(coordinator: Coordinator) -> Iterator[_Plan]:
    """Per pilot: one case stopped at each new state of its journey, then the exits."""
    for pilot, journey in JOURNEYS.items():
        definition = coordinator.workflows.latest(pilot).definition
        states = states_along(definition, journey)
        for length, state in enumerate(states):
            if state not in states[:length]:
                yield _Plan(pilot, journey[:length])
        in_intake = states.index("intake")
        decline = Step("decline", journey[in_intake - 1].role,
                       {"reason": "Ønsker ikke å delta nå"})
        yield _Plan(pilot, (*journey[:in_intake], decline))
        yield _Plan(pilot, (*journey[:states.index("follow_up")], _WITHDRAW))
        if "reenter" in definition.triggers():
            yield _Plan(pilot, (*journey, _REENTER))
    for pilot, version, journey, stops in _LEGACY:
        states = states_along(coordinator.workflows.get(pilot, version).definition, journey)
        for stop in stops:
            yield _Plan(pilot, journey[:states.index(stop)], version)


def load_demo(coordinator: Coordinator, *,
              progress: Callable[[int, int], None] | None = None) -> int:
    """Create synthetic cases for every pilot, spread over their journeys; return how many.

    Deterministic: the same people (relative to today) and the same stops on every run.
    Works with the real clock (no waiting between steps)."""
    rng = random.Random(DEMO_SEED)      # noqa: S311 - synthetic demo data, not secrets
    plans = list(_plans(coordinator))
    today = coordinator.clock.now().date()
    for done, plan in enumerate(plans, start=1):
        channels = coordinator.workflows.latest(plan.pilot).definition.referrers
        _channel, profile = referral(plan.pilot, today, rng)
        channel = channels[rng.randrange(len(channels))]
        opened = coordinator.open_case(OpenCase(plan.pilot, channel, profile,
                                                actor(plan.pilot, CHANNEL_ROLE[channel]),
                                                workflow_version=plan.version,
                                                subject_id=subject(plan.pilot),
                                                team=team(plan.pilot)))
        drive(coordinator, opened.id, plan.pilot, plan.steps)
        if progress is not None:
            progress(done, len(plans))
    return len(plans)
