"""The registry refuses every kind of bad definition, naming the file and the problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from coordinator.errors import InvalidDefinition, UnknownWorkflow
from coordinator.workflows.definition import (
    Cadence,
    Deadline,
    Effect,
    Eligibility,
    FollowUp,
    Guard,
    Migration,
    State,
    T,
    WorkflowDefinition,
)
from coordinator.workflows.engine import Workflow
from coordinator.workflows.registry import WorkflowRegistry, validate
from tests.unit.definitions_for_tests import SOURCE, SYNTHETIC

S = State
Mutation = Callable[[WorkflowDefinition], WorkflowDefinition]


def _add(*ts: T) -> Mutation:
    return lambda d: replace(d, transitions=(*d.transitions, *ts))


def _swap(trigger: str, new: T) -> Mutation:
    """Replace the (first) transition named ``trigger`` by ``new``."""
    def mutate(d: WorkflowDefinition) -> WorkflowDefinition:
        ts = list(d.transitions)
        i = next(i for i, t in enumerate(ts) if t.trigger == trigger)
        ts[i] = new
        return replace(d, transitions=tuple(ts))
    return mutate


def _drop(trigger: str) -> Mutation:
    return lambda d: replace(d, transitions=tuple(t for t in d.transitions
                                                  if t.trigger != trigger))


GOOD_INTAKE = T("begin_intake", S.REFERRED, S.INTAKE, (Guard("eligible"),))

# (id, mutation of the valid synthetic definition, words the message must contain)
BAD: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("unknown guard",
     _swap("begin_intake", T("begin_intake", S.REFERRED, S.INTAKE, (Guard("is_nice"),))),
     ("begin_intake", "unknown guard", "is_nice")),
    ("unknown effect",
     _swap("begin_intake", T("begin_intake", S.REFERRED, S.INTAKE,
                             effects=(Effect("send_flowers"),))),
     ("begin_intake", "unknown effect", "send_flowers")),
    ("too few guard args",
     _swap("confirm_consent", T("confirm_consent", S.CONSENT, S.PLANNING,
                                (Guard("consent_covers", ("coordination",)),))),
     ("confirm_consent", "consent_covers", "2 arguments")),
    ("guard without its one argument",
     _swap("begin_intake", T("begin_intake", S.REFERRED, S.INTAKE, (Guard("attended"),))),
     ("begin_intake", "attended", "1 arguments")),
    ("too few effect args",
     _swap("begin_intake", T("begin_intake", S.REFERRED, S.INTAKE,
                             effects=(Effect("record_meeting"),))),
     ("begin_intake", "record_meeting", "1 arguments")),
    ("unknown roles in attended",
     _swap("begin_intake", T("begin_intake", S.REFERRED, S.INTAKE,
                             (Guard("attended", ("bruker", "astronaut")),))),
     ("begin_intake", "attended", "astronaut")),
    ("unknown roles in plan_visible_to",
     _swap("agree_plan", T("agree_plan", S.PLANNING, S.FOLLOW_UP,
                           (Guard("plan_visible_to", ("pope",)),))),
     ("agree_plan", "plan_visible_to", "pope")),
    ("milestone names an unknown trigger",
     _swap("close", T("close", S.CLOSING, S.CLOSED, (Guard("milestone", ("nap",)),))),
     ("close", "milestone", "unknown triggers")),
    ("unknown target state in a transition",
     _add(T("jump", S.INTAKE, "limbo")),
     ("jump", "unknown target state", "limbo")),
    ("unknown source state in a transition",
     _add(T("jump", "limbo", S.INTAKE)),
     ("jump", "unknown source state", "limbo")),
    ("transition leaving a final state",
     _add(T("reopen", S.CLOSED, S.FOLLOW_UP, effects=(Effect("reopen"),))),
     ("reopen", "leaves final state", "closed")),
    ("trigger name not lower_snake_case",
     _add(T("Begin-Intake", S.REFERRED, S.INTAKE)),
     ("Begin-Intake", "lower_snake_case")),
    ("unreachable state",
     lambda d: replace(_drop("agree_plan")(d), states=d.states),
     ("follow_up", "cannot be reached")),
    ("non-final dead end",
     lambda d: _swap("withdraw", T("withdraw", tuple(s for s in d.states if s not in (
         *d.final, S.CLOSING)), S.WITHDRAWN))(_drop("close")(d)),
     ("closing", "no way out")),
    ("non-final state whose only way out is an internal transition",
     lambda d: replace(d, transitions=(
         *(t for t in d.transitions if t.trigger not in ("begin_closing", "withdraw")),
         T("withdraw", tuple(s for s in d.states if s not in (*d.final, S.FOLLOW_UP)),
           S.WITHDRAWN))),
     ("follow_up", "no way out")),
    ("initial not in states",
     lambda d: replace(d, initial=S.GET_TO_KNOW),
     ("initial state", "get_to_know")),
    ("final state not among the states",
     lambda d: replace(d, final=(*d.final, S.DROPPED_OUT)),
     ("final state", "dropped_out")),
    ("state that is not canonical",
     lambda d: replace(d, states=(*d.states, "purgatory")),
     ("purgatory", "canonical")),
    ("state listed twice",
     lambda d: replace(d, states=(*d.states, S.INTAKE)),
     ("listed twice",)),
    ("model other than 1 or 2",
     lambda d: replace(d, model=3),
     ("model", "3")),
    ("unknown referrer channel",
     lambda d: replace(d, referrers=("fastlege", "carrier_pigeon")),
     ("referrers",)),
    ("no referrer at all",
     lambda d: replace(d, referrers=()),
     ("referrers",)),
    ("min_age above max_age",
     lambda d: replace(d, eligibility=Eligibility(min_age=40, max_age=30,
                                                  target_groups=frozenset({"msk"}))),
     ("min_age 40", "max_age 30")),
    ("unknown target group",
     lambda d: replace(d, eligibility=Eligibility(target_groups=frozenset({"grumpiness"}))),
     ("target groups",)),
    ("deadline with both workdays and weeks",
     lambda d: replace(d, deadlines=(Deadline("x", "referred", "decide", workdays=5, weeks=1),)),
     ("deadline x", "exactly one of workdays or weeks")),
    ("deadline with neither workdays nor weeks",
     lambda d: replace(d, deadlines=(Deadline("y", "referred", "decide"),)),
     ("deadline y", "exactly one of workdays or weeks")),
    ("deadline with an unknown anchor",
     lambda d: replace(d, deadlines=(Deadline("z", "trigger:nap", "decide", weeks=1),)),
     ("deadline z", "trigger:nap")),
    ("deadline met by a non-trigger",
     lambda d: replace(d, deadlines=(Deadline("w", "referred", "nap", weeks=1),)),
     ("deadline w", "nap")),
    ("cadence with an unknown period",
     lambda d: replace(d, cadences=(Cadence("huddle", "hourly", ("nav_veileder",)),)),
     ("huddle", "hourly")),
    ("cadence with unknown roles",
     lambda d: replace(d, cadences=(Cadence("huddle", "weekly", ("wizard",)),)),
     ("huddle", "wizard")),
    ("get-to-know participants with unknown roles",
     lambda d: replace(d, get_to_know_participants=("bruker", "wizard")),
     ("get_to_know_participants",)),
    ("unknown closing side",
     lambda d: replace(d, closing_sides=("health", "church")),
     ("closing_sides",)),
    ("unknown employer involvement",
     lambda d: replace(d, follow_up=FollowUp(employer_involvement="sometimes")),
     ("employer involvement", "sometimes")),
    ("bad citation format",
     lambda d: replace(d, sources={"target": "page 12"}),
     ("target", "citation", "page 12")),
    ("bad citation in a list",
     lambda d: replace(d, sources={"target": "004:1-2; 005:3"}),
     ("target", "citation")),
    ("missing sources",
     lambda d: replace(d, sources={}),
     ("sources",)),
    ("migration from a version that is not older",
     lambda d: replace(d, migrates_from=Migration(1, {"referred": "referred"})),
     ("migrates_from", "older version")),
    ("migration onto an unknown state",
     lambda d: replace(d, version=2, migrates_from=Migration(1, {"referred": "limbo"})),
     ("limbo",)),
]


@pytest.mark.parametrize(("mutate", "words"), [pytest.param(m, w, id=i) for i, m, w in BAD])
def test_a_bad_definition_is_refused_naming_file_and_problem(mutate: Mutation,
                                                              words: tuple[str, ...]) -> None:
    bad = mutate(SYNTHETIC)
    source = f"{bad.key}_v{bad.version}"
    with pytest.raises(InvalidDefinition) as caught:
        WorkflowRegistry([(source, bad)])
    assert caught.value.source == source
    assert caught.value.message.startswith(f"{source}: ")
    for word in words:
        assert word in caught.value.message
    assert caught.value.problems        # the problems are also given one by one
    assert "<State." not in caught.value.message    # states read as plain names


def test_the_synthetic_definition_itself_is_valid() -> None:
    validate(SYNTHETIC, SOURCE)     # every refusal above is caused by its one mutation


def test_every_problem_is_listed_not_only_the_first() -> None:
    bad = replace(SYNTHETIC, model=7, sources={}, referrers=("carrier_pigeon",))
    with pytest.raises(InvalidDefinition) as caught:
        validate(bad, SOURCE)
    assert len(caught.value.problems) == 3


def test_a_file_named_for_another_key_or_version_is_refused() -> None:
    with pytest.raises(InvalidDefinition) as caught:
        WorkflowRegistry([("other_v1", SYNTHETIC)])
    assert "other_v1" in caught.value.message
    assert "synthetic_v1" in caught.value.message
    with pytest.raises(InvalidDefinition, match="synthetic_v2"):
        validate(SYNTHETIC, "synthetic_v2")


def test_the_same_key_and_version_twice_is_refused() -> None:
    with pytest.raises(InvalidDefinition) as caught:
        WorkflowRegistry([(SOURCE, SYNTHETIC), ("definitions/synthetic_v1", SYNTHETIC)])
    assert caught.value.source == "definitions/synthetic_v1"
    assert "synthetic version 1 is defined twice" in caught.value.message


def test_a_migration_from_a_missing_version_is_refused_naming_the_file() -> None:
    v3 = replace(SYNTHETIC, version=3, migrates_from=Migration(2, {"intake": "intake"}))
    with pytest.raises(InvalidDefinition) as caught:
        WorkflowRegistry([(SOURCE, SYNTHETIC), ("synthetic_v3", v3)])
    assert caught.value.source == "synthetic_v3"
    assert "missing version 2" in caught.value.message


def test_a_migration_from_states_the_old_version_lacks_is_refused() -> None:
    v1 = replace(SYNTHETIC, states=tuple(s for s in SYNTHETIC.states if s != S.DECLINED),
                 final=(S.CLOSED, S.WITHDRAWN),
                 transitions=tuple(t for t in SYNTHETIC.transitions
                                   if t.dest != S.DECLINED))
    v2 = replace(SYNTHETIC, version=2,
                 migrates_from=Migration(1, {"declined": "declined", "intake": "intake"}))
    with pytest.raises(InvalidDefinition) as caught:
        WorkflowRegistry([(SOURCE, v1), ("synthetic_v2", v2)])
    assert caught.value.source == "synthetic_v2"
    assert "declined" in caught.value.message


def test_versions_get_and_latest() -> None:
    v2 = replace(SYNTHETIC, version=2, title="Second",
                 migrates_from=Migration(1, {s: s for s in SYNTHETIC.states}))
    registry = WorkflowRegistry([("synthetic_v2", v2), (SOURCE, SYNTHETIC)])
    assert registry.latest("synthetic").definition.title == "Second"
    assert registry.get("synthetic", 1).definition is SYNTHETIC
    assert registry.get("synthetic", 2).ref == ("synthetic", 2)
    assert registry.keys() == ["synthetic"]
    assert [w.ref for w in registry.all()] == [("synthetic", 1), ("synthetic", 2)]
    with pytest.raises(UnknownWorkflow) as caught:
        registry.get("synthetic", 3)
    assert caught.value.details == {"key": "synthetic", "version": 3}
    with pytest.raises(UnknownWorkflow) as no_pilot:
        registry.latest("atlantis")
    assert "atlantis" in no_pilot.value.message


def test_builtin_loads_every_definition_file_and_each_one_is_valid() -> None:
    from pathlib import Path

    import coordinator.workflows.definitions as package

    registry = WorkflowRegistry.builtin()
    files = {p.stem for p in Path(package.__path__[0]).glob("*_v*.py")
             if not p.stem.startswith("_")}
    assert files, "no definition files found"
    assert {f"{w.definition.key}_v{w.definition.version}" for w in registry.all()} == files
    assert registry.latest("ringsaker").ref[0] == "ringsaker"
    for workflow in registry.all():
        assert isinstance(workflow, Workflow)
        assert registry.latest(workflow.definition.key).ref[1] >= workflow.ref[1]
