"""The workflow engine on a small synthetic definition (no pilot file is involved).

Covers firing, refusals (unknown trigger, wrong state, failed guards, bad arguments),
alternatives, internal transitions, ``available()``, thread safety of the shared
``transitions`` machine, and a Hypothesis comparison of the in-memory Coordinator with a
plain-Python reference model of the synthetic definition.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.bootstrap import build
from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import Actor
from coordinator.errors import (
    CoordinatorError,
    GuardFailed,
    InvalidInput,
    TransitionNotAllowed,
    UnknownTrigger,
)
from coordinator.service import Coordinator
from coordinator.testing import FakeClock, InMemoryStore, InMemoryUnitOfWork
from coordinator.workflows.engine import Workflow
from coordinator.workflows.facts import CaseRecord, Facts, Profile
from tests.unit.definitions_for_tests import ELIGIBLE, SYNTHETIC, synthetic_registry

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
TOO_OLD = Profile(birth_date=date(1950, 1, 1), problems=frozenset({"msk"}))
WF = Workflow(SYNTHETIC)
NAV = frozenset({("coordination", "nav")})


def facts(state: str, args: Mapping[str, Any] | None = None, *,
          record: CaseRecord | None = None, consents: frozenset[tuple[str, str]] = frozenset(),
          profile: Profile = ELIGIBLE) -> Facts:
    return Facts(now=NOW, state=state, referrer="fastlege", profile=profile,
                 record=record or CaseRecord(), consents=consents, definition=SYNTHETIC,
                 args=dict(args or {}))


# -- firing ------------------------------------------------------------------------------

def test_an_allowed_transition_moves_and_names_its_transition() -> None:
    out = WF.fire("begin_intake", facts("referred"))
    assert (out.source, out.target) == ("referred", "intake")
    assert out.transition.trigger == "begin_intake"


def test_firing_does_not_touch_the_facts_or_the_machine_between_calls() -> None:
    f = facts("referred")
    assert WF.fire("begin_intake", f).target == "intake"
    assert f.state == "referred"
    assert WF.fire("begin_intake", f).target == "intake"     # no state leaks between firings


def test_an_unknown_trigger_is_refused() -> None:
    with pytest.raises(UnknownTrigger) as caught:
        WF.fire("teleport", facts("referred"))
    assert caught.value.details == {"workflow": "synthetic", "trigger": "teleport"}
    with pytest.raises(UnknownTrigger):
        WF.check_args("teleport", {})


@pytest.mark.parametrize(("trigger", "state"), [
    ("close", "referred"), ("begin_intake", "intake"), ("finish_track", "planning"),
    ("withdraw", "closed"), ("record_outcome", "referred"), ("decide", "withdrawn"),
])
def test_a_trigger_not_allowed_from_the_state_is_refused(trigger: str, state: str) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        WF.fire(trigger, facts(state, {"reason": "x", "phase": "end", "side": "nav"}))
    assert caught.value.details == {"trigger": trigger, "state": state}


def test_a_failed_guard_names_every_failed_guard_and_its_reason() -> None:
    with pytest.raises(GuardFailed) as caught:
        WF.fire("begin_closing", facts("follow_up"))
    assert caught.value.failed_guards == ("tracks_finished(health, nav)=tracks_open:health+nav",
                                          "outcomes_recorded(start)=outcomes_missing:start")
    half = CaseRecord(tracks_finished=frozenset({"health"}), outcomes=frozenset({"start"}))
    with pytest.raises(GuardFailed) as partly:
        WF.fire("begin_closing", facts("follow_up", record=half))
    assert partly.value.failed_guards == ("tracks_finished(health, nav)=tracks_open:nav",)
    assert partly.value.details["state"] == "follow_up"


@pytest.mark.parametrize(("trigger", "state", "given", "failure"), [
    ("begin_intake", "referred", {}, "eligible=not_eligible:age_above_67"),
    ("confirm_consent", "consent", {},
     "consent_covers(coordination, nav)=no_consent:coordination:nav"),
    ("agree_plan", "planning", {"visible_to": ["nav_veileder"]},
     "plan_visible_to(bruker)=plan_not_visible_to:bruker"),
    ("close", "closing", {}, "milestone(agree_plan)=not_done:agree_plan"),
])
def test_each_guard_kind_reports_its_own_reason(trigger: str, state: str,
                                                given: dict[str, Any], failure: str) -> None:
    record = CaseRecord(outcomes=frozenset({"start", "end"}))
    with pytest.raises(GuardFailed) as caught:
        WF.fire(trigger, facts(state, given, record=record, profile=TOO_OLD))
    assert failure in caught.value.failed_guards


def test_guards_pass_when_their_facts_hold() -> None:
    done = CaseRecord(outcomes=frozenset({"start", "end"}),
                      tracks_finished=frozenset({"health", "nav"}),
                      milestones={"agree_plan": NOW})
    assert WF.fire("confirm_consent", facts("consent", consents=NAV)).target == "planning"
    assert WF.fire("agree_plan", facts("planning", {"visible_to": ["bruker"]})).target \
        == "follow_up"
    assert WF.fire("begin_closing", facts("follow_up", record=done)).target == "closing"
    assert WF.fire("close", facts("closing", record=done)).target == "closed"
    only_other_party = frozenset({("coordination", "fastlege"), ("share_kartlegging", "nav")})
    with pytest.raises(GuardFailed):
        WF.fire("confirm_consent", facts("consent", consents=only_other_party))


@pytest.mark.parametrize(("given", "target"), [
    ({"attendees": ["bruker"]}, "consent"),
    ({"attendees": ["bruker", "nav_veileder"], "reason": "both pass"}, "consent"),
    ({"attendees": ["nav_veileder"], "reason": "ønsker ikke"}, "declined"),
    ({"reason": "ønsker ikke"}, "declined"),
])
def test_alternatives_take_the_first_transition_whose_guards_pass(given: dict[str, Any],
                                                                 target: str) -> None:
    out = WF.fire("decide", facts("intake", given))
    assert out.target == target
    assert out.transition.dest == target


def test_when_no_alternative_passes_every_alternatives_failures_are_reported() -> None:
    with pytest.raises(GuardFailed) as caught:
        WF.fire("decide", facts("intake", {"attendees": ["fastlege"]}))
    assert caught.value.failed_guards == ("attended(bruker)=missing_participants:bruker",
                                          "reason_given=reason_required")


def test_internal_transitions_keep_the_state_and_apply_their_effects() -> None:
    f = facts("planning", {"phase": "start"})
    out = WF.fire("record_outcome", f)
    assert (out.source, out.target) == ("planning", "planning")
    record = WF.apply_effects(out, f)
    assert record.outcomes == {"start"}
    assert record.milestones == {"record_outcome": NOW}
    g = facts("follow_up", {"side": "nav"}, record=record)
    out2 = WF.fire("finish_track", g)
    assert out2.target == "follow_up"
    assert WF.apply_effects(out2, g).tracks_finished == {"nav"}


def test_effects_record_meetings_and_milestones_only_the_first_time() -> None:
    first = CaseRecord(milestones={"decide": datetime(2026, 12, 1, tzinfo=UTC)})
    f = facts("intake", {"attendees": ["nav_veileder", "bruker", "bruker"]}, record=first)
    record = WF.apply_effects(WF.fire("decide", f), f)
    assert [(m.kind, m.attendees, m.at) for m in record.meetings] == [
        ("intake", ("bruker", "nav_veileder"), NOW)]
    assert record.milestones["decide"] == datetime(2026, 12, 1, tzinfo=UTC)
    p = facts("planning", {"visible_to": ["nav_veileder", "bruker"]})
    assert WF.apply_effects(WF.fire("agree_plan", p), p).plan_visible_to == (
        "bruker", "nav_veileder")


# -- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize(("trigger", "given", "argument"), [
    ("decide", {"visible_to": ["bruker"]}, "visible_to"),              # not read by decide
    ("begin_intake", {"attendees": ["bruker"]}, "attendees"),
    ("close", {"colour": "blue"}, "colour"),
    ("record_outcome", {}, "phase"),                                    # required, missing
    ("finish_track", {"reason": "done"}, "side"),
    ("record_outcome", {"phase": "middle"}, "phase"),                   # wrong value
    ("finish_track", {"side": "church"}, "side"),
    ("decide", {"attendees": "bruker"}, "attendees"),                   # not a list
    ("decide", {"attendees": ["bruker", 7]}, "attendees"),
    ("decide", {"attendees": ["bruker", "astronaut"]}, "attendees"),    # unknown role
    ("agree_plan", {"visible_to": ["pope"]}, "visible_to"),
    ("withdraw", {"reason": "   "}, "reason"),                          # blank reason
    ("withdraw", {"reason": "x" * 501}, "reason"),
    ("withdraw", {"reason": 42}, "reason"),
])
def test_bad_arguments_are_refused_naming_the_argument(trigger: str, given: dict[str, Any],
                                                       argument: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WF.check_args(trigger, given)
    assert caught.value.details["argument"] == argument
    assert repr(argument) in caught.value.message
    assert repr(trigger) in caught.value.message


def test_good_arguments_are_cleaned() -> None:
    assert WF.check_args("decide", {"attendees": ("bruker",), "reason": "  flytter  "}) == {
        "attendees": ("bruker",), "reason": "flytter"}
    assert WF.check_args("record_outcome", {"phase": "end"}) == {"phase": "end"}
    assert WF.check_args("withdraw", {}) == {}


# -- available() -------------------------------------------------------------------------

def test_available_lists_actions_from_the_state_with_reasons() -> None:
    checks = {c.trigger: c for c in WF.available(facts("intake"))}
    assert set(checks) == {"decide", "record_outcome", "withdraw"}
    assert not checks["decide"].allowed
    assert checks["decide"].targets == ("consent", "declined")
    assert checks["decide"].failed_guards == ("attended(bruker)=missing_participants:bruker",
                                              "reason_given=reason_required")
    assert checks["record_outcome"].allowed
    assert checks["record_outcome"].targets == ("intake",)
    assert checks["withdraw"].allowed
    assert checks["withdraw"].targets == ("withdrawn",)
    assert checks["withdraw"].failed_guards == ()


def test_available_follows_the_facts() -> None:
    before = {c.trigger: c for c in WF.available(facts("follow_up"))}
    assert set(before) == {"record_outcome", "finish_track", "begin_closing", "withdraw"}
    assert not before["begin_closing"].allowed
    assert len(before["begin_closing"].failed_guards) == 2
    done = CaseRecord(outcomes=frozenset({"start"}), tracks_finished=frozenset({"health", "nav"}))
    after = {c.trigger: c for c in WF.available(facts("follow_up", record=done))}
    assert after["begin_closing"].allowed
    assert after["begin_closing"].failed_guards == ()
    assert WF.available(facts("closed")) == []
    consent = {c.trigger: c for c in WF.available(facts("consent", consents=NAV))}
    assert consent["confirm_consent"].allowed


# -- thread safety -----------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    trigger: str
    facts: Facts
    expected: str | type[CoordinatorError]


SCENARIOS = (
    Scenario("begin_intake", facts("referred"), "intake"),
    Scenario("begin_intake", facts("referred", profile=TOO_OLD), GuardFailed),
    Scenario("decide", facts("intake", {"attendees": ["bruker"]}), "consent"),
    Scenario("decide", facts("intake", {"reason": "nei"}), "declined"),
    Scenario("decide", facts("intake"), GuardFailed),
    Scenario("confirm_consent", facts("consent", consents=NAV), "planning"),
    Scenario("confirm_consent", facts("consent"), GuardFailed),
    Scenario("record_outcome", facts("closing", {"phase": "end"}), "closing"),
    Scenario("withdraw", facts("follow_up"), "withdrawn"),
    Scenario("withdraw", facts("withdrawn"), TransitionNotAllowed),
    Scenario("close", facts("planning"), TransitionNotAllowed),
)


def _run(s: Scenario) -> str | type[CoordinatorError]:
    try:
        return WF.fire(s.trigger, s.facts).target
    except CoordinatorError as exc:
        return type(exc)


def test_one_workflow_fired_from_many_threads_gives_every_caller_its_own_result() -> None:
    threads, rounds = 8, 500
    start = threading.Barrier(threads)
    wrong: list[tuple[int, int, object]] = []
    done = [0] * threads

    def work(n: int) -> None:
        start.wait()
        for i in range(rounds):
            s = SCENARIOS[(i * (n + 1) + n) % len(SCENARIOS)]
            got = _run(s)
            if got != s.expected:
                wrong.append((n, i, got))
            done[n] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)          # switch threads as often as possible
    try:
        pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert wrong == []
    assert done == [rounds] * threads
    assert _run(SCENARIOS[0]) == "intake"     # the machine holds no leftover models


# -- the Coordinator against a reference model --------------------------------------------

ROLES_OK = ("bruker", "nav_veileder", "fastlege")
ACTIVE = ("referred", "intake", "consent", "planning", "follow_up", "closing")
ACCEPTS: dict[str, set[str]] = {
    "begin_intake": set(), "decide": {"attendees"}, "confirm_consent": set(),
    "agree_plan": {"visible_to"}, "record_outcome": {"phase"}, "finish_track": {"side"},
    "begin_closing": set(), "close": set(), "withdraw": set(),
}
REQUIRES = {"record_outcome": {"phase"}, "finish_track": {"side"}}
VALID: dict[str, Any] = {
    "attendees": lambda v: isinstance(v, list) and set(v) <= set(ROLES_OK),
    "visible_to": lambda v: isinstance(v, list) and set(v) <= set(ROLES_OK),
    "phase": lambda v: v in ("start", "end"),
    "side": lambda v: v in ("health", "nav"),
    "reason": lambda v: isinstance(v, str) and bool(v.strip()),
}


@dataclass
class Reference:
    """The synthetic definition written out by hand, independent of the engine."""

    state: str = "referred"
    version: int = 1
    milestones: set[str] = field(default_factory=set)
    outcomes: set[str] = field(default_factory=set)
    tracks: set[str] = field(default_factory=set)
    scopes: set[tuple[str, str, str]] = field(default_factory=set)

    def refusal(self, trigger: str, args: dict[str, Any]) -> type[CoordinatorError] | None:
        if trigger not in ACCEPTS:
            return UnknownTrigger
        if set(args) - ACCEPTS[trigger] - {"reason"} or REQUIRES.get(trigger, set()) - set(args):
            return InvalidInput
        if not all(VALID[k](v) for k, v in args.items()):
            return InvalidInput
        target = self.target(trigger, args)
        return target if isinstance(target, type) else None

    def rules(self, a: dict[str, Any]) -> dict[str, tuple[tuple[str, ...],
                                                          list[tuple[bool, str]]]]:
        """trigger -> (source states, alternatives as (guards pass, target))."""
        s = self.state
        nav = any(p == "coordination" and party == "nav" for p, _c, party in self.scopes)
        return {
            "begin_intake": (("referred",), [(True, "intake")]),
            "decide": (("intake",), [("bruker" in a.get("attendees", ()), "consent"),
                                     ("reason" in a, "declined")]),
            "confirm_consent": (("consent",), [(nav, "planning")]),
            "agree_plan": (("planning",), [("bruker" in a.get("visible_to", ()), "follow_up")]),
            "record_outcome": (ACTIVE[1:], [(True, s)]),
            "finish_track": (("follow_up",), [(True, s)]),
            "begin_closing": (("follow_up",), [(self.tracks >= {"health", "nav"}
                                                and "start" in self.outcomes, "closing")]),
            "close": (("closing",), [("end" in self.outcomes
                                      and "agree_plan" in self.milestones, "closed")]),
            "withdraw": (ACTIVE, [(True, "withdrawn")]),
        }

    def leaving(self) -> list[str]:
        """Triggers that leave the current state (some may still be refused by guards),
        except ``withdraw``, which would end most runs early."""
        return [t for t, (sources, _) in self.rules({}).items()
                if self.state in sources and t != "withdraw"]

    def target(self, trigger: str, a: dict[str, Any]) -> str | type[CoordinatorError]:
        sources, alternatives = self.rules(a)[trigger]
        if self.state not in sources:
            return TransitionNotAllowed
        return next((dest for ok, dest in alternatives if ok), GuardFailed)

    def accept(self, trigger: str, args: dict[str, Any]) -> None:
        target = self.target(trigger, args)
        assert isinstance(target, str)
        self.state = target
        self.version += 1
        self.milestones.add(trigger)
        if trigger == "record_outcome":
            self.outcomes.add(args["phase"])
        if trigger == "finish_track":
            self.tracks.add(args["side"])


ARGS = st.sampled_from([
    {}, {"attendees": ["bruker"]}, {"attendees": ["nav_veileder"]},
    {"attendees": ["bruker", "fastlege"], "reason": "begge"}, {"attendees": ["astronaut"]},
    {"attendees": "bruker"}, {"visible_to": ["bruker", "nav_veileder"]},
    {"visible_to": ["fastlege"]}, {"phase": "start"}, {"phase": "end"}, {"phase": "middle"},
    {"side": "health"}, {"side": "nav"}, {"side": "church"}, {"reason": "flytter"},
    {"reason": "  "}, {"attendees": ["nav_veileder"], "reason": "ønsker ikke"}, {"bogus": 1},
])
FITTING: dict[str, list[dict[str, Any]]] = {
    "decide": [{"attendees": ["bruker"]}, {"reason": "flytter"}, {"attendees": ["fastlege"]}],
    "agree_plan": [{"visible_to": ["bruker"]}, {"visible_to": ["fastlege"]}],
    "record_outcome": [{"phase": "start"}, {"phase": "end"}],
    "finish_track": [{"side": "health"}, {"side": "nav"}],
}
ANY_TRIGGER = st.sampled_from([*SYNTHETIC.triggers(), "teleport"])
CONSENT = st.tuples(st.sampled_from(["grant", "grant", "withdraw"]),
                    st.sampled_from(["coordination", "coordination", "share_kartlegging"]),
                    st.tuples(st.sampled_from(["kartlegging", "mestringsplan"]),
                              st.sampled_from(["nav", "nav", "fastlege"])))
REGISTRY = synthetic_registry()
GP = Actor("gp-1", "fastlege")


def _step(data: st.DataObject, ref: Reference) -> tuple[Any, ...]:
    """Any trigger or consent change, but mostly triggers that leave the current state,
    so runs get deep into the workflow instead of collecting refusals at the start."""
    kind = data.draw(st.sampled_from(["leaving"] * 3 + ["any"] + ["consent"] * 2))
    if kind == "consent":
        return data.draw(CONSENT)
    leaving = ref.leaving()
    if kind == "any" or not leaving:
        return ("fire", data.draw(ANY_TRIGGER), data.draw(ARGS))
    trigger = data.draw(st.sampled_from(leaving))
    fitting = st.sampled_from(FITTING.get(trigger, [{}]))
    return ("fire", trigger, data.draw(st.one_of(fitting, fitting, ARGS)))


def _consent(c: Coordinator, ref: Reference, case_id: Any, step: tuple[Any, ...]) -> None:
    kind, purpose, (category, party) = step
    scopes = {(purpose, category, party)}
    if kind == "grant":
        c.grant_consent(GrantConsent(case_id, GP, frozenset({purpose}), frozenset({category}),
                                     frozenset({party}), "digital", "v1"))
        ref.scopes |= scopes
    else:
        c.withdraw_consent(WithdrawConsent(case_id, GP, frozenset({purpose}),
                                           frozenset({category}), frozenset({party}), "digital"))
        ref.scopes -= scopes


def _check(c: Coordinator, ref: Reference, case_id: Any) -> None:
    view = c.view(case_id)
    assert (view.summary.state, view.summary.version) == (ref.state, ref.version)
    record = view.record
    assert set(record["milestones"]) == ref.milestones
    assert set(record["outcomes"]) == ref.outcomes
    assert set(record["tracks_finished"]) == ref.tracks
    assert [e.seq for e in view.history] == list(range(1, ref.version + 1))


@settings(derandomize=True, max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_coordinator_matches_a_reference_model(data: st.DataObject) -> None:
    clock = FakeClock(NOW)
    store = InMemoryStore()
    c = build(clock=clock, workflows=REGISTRY, uow=lambda: InMemoryUnitOfWork(store))
    case = c.open_case(OpenCase("synthetic", "fastlege", ELIGIBLE, GP))
    ref = Reference()
    for _ in range(data.draw(st.integers(min_value=0, max_value=40), label="steps")):
        step = _step(data, ref)
        clock.advance(minutes=1)       # consent records made at one instant do not tie
        if step[0] != "fire":
            _consent(c, ref, case.id, step)
            _check(c, ref, case.id)
            continue
        _, trigger, args = step
        refused = ref.refusal(trigger, args)
        command = FireTrigger(case.id, trigger, GP, args)
        if refused is not None:
            with pytest.raises(refused):
                c.fire(command)
        else:
            ref.accept(trigger, args)
            assert c.fire(command).version == ref.version
        _check(c, ref, case.id)
