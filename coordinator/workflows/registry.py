"""Loads and validates workflow definitions; refuses a bad one naming its file."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable, Iterator

from coordinator.errors import InvalidDefinition, UnknownWorkflow
from coordinator.workflows.definition import (
    CADENCE_PERIODS,
    EMPLOYER_INVOLVEMENT,
    REFERRAL_CHANNELS,
    ROLES,
    SIDES,
    TARGET_GROUPS,
    Effect,
    Guard,
    State,
    T,
    WorkflowDefinition,
)
from coordinator.workflows.engine import Workflow
from coordinator.workflows.guards import EFFECT_MIN_ARGS, EFFECTS, GUARD_MIN_ARGS, GUARDS

_CITATION = re.compile(r"^\d{3}:\d+(-\d+)?(, ?\d{3}:\d+(-\d+)?)*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ROLE_GUARDS = frozenset({"attended", "attended_any", "plan_visible_to"})


def _check_guard(trigger: str, g: Guard, triggers: set[str]) -> Iterator[str]:
    if g.name not in GUARDS:
        yield f"{trigger}: unknown guard {g.name!r}"
        return
    if len(g.args) < GUARD_MIN_ARGS.get(g.name, 0):
        yield f"{trigger}: guard {g.name!r} needs {GUARD_MIN_ARGS[g.name]} arguments"
    if g.name in _ROLE_GUARDS and set(g.args) - ROLES:
        yield f"{trigger}: guard {g.name!r} names unknown roles {sorted(set(g.args) - ROLES)}"
    if g.name == "milestone" and set(g.args) - triggers:
        yield f"{trigger}: guard milestone names unknown triggers"


def _check_effect(trigger: str, e: Effect) -> Iterator[str]:
    if e.name not in EFFECTS:
        yield f"{trigger}: unknown effect {e.name!r}"
    elif len(e.args) < EFFECT_MIN_ARGS.get(e.name, 0):
        yield f"{trigger}: effect {e.name!r} needs {EFFECT_MIN_ARGS[e.name]} arguments"


def _check_transition(t: T, states: set[str], final: set[str],
                      triggers: set[str]) -> Iterator[str]:
    if not _NAME.match(t.trigger):
        yield f"trigger {t.trigger!r} is not a lower_snake_case name"
    for s in t.sources:
        if s not in states:
            yield f"{t.trigger}: unknown source state {str(s)!r}"
        if s in final:
            yield f"{t.trigger}: leaves final state {str(s)!r}"
    if t.dest is not None and t.dest not in states:
        yield f"{t.trigger}: unknown target state {str(t.dest)!r}"
    for g in t.guards:
        yield from _check_guard(t.trigger, g, triggers)
    for e in t.effects:
        yield from _check_effect(t.trigger, e)


def _check_transitions(d: WorkflowDefinition) -> Iterator[str]:
    states, final, triggers = set(d.states), set(d.final), set(d.triggers())
    for t in d.transitions:
        yield from _check_transition(t, states, final, triggers)


def _check_states(d: WorkflowDefinition) -> Iterator[str]:
    if len(set(d.states)) != len(d.states):
        yield "states are listed twice"
    for s in d.states:
        if s not in State.__members__.values():
            yield f"state {str(s)!r} is not a canonical state ({', '.join(State)})"
    if d.initial not in d.states:
        yield f"initial state {str(d.initial)!r} is not among the states"
    for s in d.final:
        if s not in d.states:
            yield f"final state {str(s)!r} is not among the states"


def _check_graph(d: WorkflowDefinition) -> Iterator[str]:
    edges: dict[str, set[str]] = {}
    for t in d.transitions:
        for s in t.sources:
            edges.setdefault(s, set()).add(t.dest or s)
    seen, todo = {d.initial}, [d.initial]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for s in d.states:
        if s not in seen:
            yield f"state {str(s)!r} cannot be reached from {str(d.initial)!r}"
        if s not in d.final and not (edges.get(s, set()) - {s}):
            yield f"state {str(s)!r} is not final but has no way out"


def _check_rules(d: WorkflowDefinition) -> Iterator[str]:  # noqa: C901 - a flat list of checks
    if d.model not in (1, 2):
        yield f"model must be 1 or 2, not {d.model}"
    if not d.referrers or set(d.referrers) - REFERRAL_CHANNELS:
        yield f"referrers must be a non-empty subset of {sorted(REFERRAL_CHANNELS)}"
    e = d.eligibility
    if e.min_age is not None and e.max_age is not None and e.min_age > e.max_age:
        yield f"eligibility: min_age {e.min_age} is above max_age {e.max_age}"
    if not e.target_groups or set(e.target_groups) - TARGET_GROUPS:
        yield f"eligibility: target groups must be a non-empty subset of {sorted(TARGET_GROUPS)}"
    triggers = set(d.triggers())
    for dl in d.deadlines:
        if (dl.workdays is None) == (dl.weeks is None):
            yield f"deadline {dl.name}: give exactly one of workdays or weeks"
        anchor_ok = dl.anchor in ("referred", "sick_leave_start") or (
            dl.anchor.startswith("trigger:") and dl.anchor[8:] in triggers)
        if not anchor_ok:
            yield f"deadline {dl.name}: unknown anchor {dl.anchor!r}"
        if dl.met_by not in triggers:
            yield f"deadline {dl.name}: met_by {dl.met_by!r} is not a trigger"
    for c in d.cadences:
        if c.every not in CADENCE_PERIODS:
            yield f"cadence {c.meeting}: unknown period {c.every!r}"
        if set(c.participants) - ROLES:
            yield f"cadence {c.meeting}: unknown roles {sorted(set(c.participants) - ROLES)}"
    if set(d.get_to_know_participants) - ROLES:
        yield "get_to_know_participants names unknown roles"
    if set(d.closing_sides) - SIDES:
        yield f"closing_sides must be a subset of {sorted(SIDES)}"
    if d.follow_up.employer_involvement not in EMPLOYER_INVOLVEMENT:
        yield f"unknown employer involvement {d.follow_up.employer_involvement!r}"
    if not d.sources:
        yield "sources must cite the domain brief for the pilot's rules"
    for topic, cite in d.sources.items():
        if not _CITATION.match(cite):
            yield f"source for {topic!r} is not a citation like '004:685-687': {cite!r}"
    m = d.migrates_from
    if m is not None:
        if m.from_version >= d.version:
            yield "migrates_from must name an older version"
        for old, new in m.states.items():
            if new is not None and new not in d.states:
                yield f"migration maps {old!r} to unknown state {new!r}"


def validate(d: WorkflowDefinition, source: str) -> None:
    """Raise ``InvalidDefinition`` listing every problem in ``d``."""
    problems = [*_check_states(d), *_check_graph(d), *_check_transitions(d), *_check_rules(d)]
    if d.key and not source.endswith(f"{d.key}_v{d.version}") and "<" not in source:
        problems.append(f"file should be named {d.key}_v{d.version}")
    if problems:
        raise InvalidDefinition(source, problems)


class WorkflowRegistry:
    """All known definition versions, validated, each with its built state machine."""

    def __init__(self, definitions: Iterable[tuple[str, WorkflowDefinition]]) -> None:
        self._workflows: dict[tuple[str, int], Workflow] = {}
        sources: dict[tuple[str, int], str] = {}
        for source, d in definitions:
            validate(d, source)
            if d.ref in self._workflows:
                raise InvalidDefinition(source, [f"{d.key} version {d.version} is defined twice"])
            self._workflows[d.ref] = Workflow(d)
            sources[d.ref] = source
        for ref, wf in self._workflows.items():
            m = wf.definition.migrates_from
            if m is None:
                continue
            old = self._workflows.get((wf.definition.key, m.from_version))
            if old is None:
                raise InvalidDefinition(sources[ref], [f"migrates from missing version "
                                                       f"{m.from_version}"])
            unknown = set(m.states) - set(old.definition.states)
            if unknown:
                raise InvalidDefinition(sources[ref],
                                        [f"migration maps unknown old states {sorted(unknown)}"])

    @classmethod
    def builtin(cls) -> WorkflowRegistry:
        """Every ``DEFINITION`` in ``coordinator.workflows.definitions``."""
        package = importlib.import_module("coordinator.workflows.definitions")
        found: list[tuple[str, WorkflowDefinition]] = []
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name.startswith("_") or "_v" not in info.name:
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            definition = getattr(module, "DEFINITION", None)
            if not isinstance(definition, WorkflowDefinition):
                raise InvalidDefinition(info.name, ["has no DEFINITION of type WorkflowDefinition"])
            found.append((info.name, definition))
        return cls(found)

    def get(self, key: str, version: int) -> Workflow:
        try:
            return self._workflows[(key, version)]
        except KeyError:
            raise UnknownWorkflow(f"no workflow {key!r} version {version}",
                                  key=key, version=version) from None

    def latest(self, key: str) -> Workflow:
        versions = [v for (k, v) in self._workflows if k == key]
        if not versions:
            raise UnknownWorkflow(f"no pilot named {key!r}", key=key)
        return self._workflows[(key, max(versions))]

    def keys(self) -> list[str]:
        return sorted({k for k, _ in self._workflows})

    def all(self) -> list[Workflow]:
        return [self._workflows[ref] for ref in sorted(self._workflows)]
