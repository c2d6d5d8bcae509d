"""Runs a workflow definition. The only module that imports ``transitions``.

One ``transitions.Machine`` per definition version, built with ``model=None``, no
automatic transitions and no queue. Each firing hands a throwaway token holding the case's
state to the trigger's ``Event`` directly: the token is never added to the machine, so
nothing shared is mutated, firings need no lock, and no per-trigger methods are bound on
every call (``add_model`` did that and cost most of a firing). Conditions only evaluate
pure guards; no callback has side effects. Effects are applied afterwards by the caller
through ``Outcome``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine, MachineError

from coordinator.errors import GuardFailed, TransitionNotAllowed, UnknownTrigger
from coordinator.workflows.definition import Effect, T, WorkflowDefinition
from coordinator.workflows.facts import CaseRecord, Facts
from coordinator.workflows.guards import (
    EFFECTS,
    GUARDS,
    READS,
    REQUIRED_ARGS,
    validate_args,
)


@dataclass(frozen=True)
class Outcome:
    source: str
    target: str
    transition: T
    args: Mapping[str, Any]


@dataclass(frozen=True)
class ActionCheck:
    """Whether ``trigger`` may fire now, and why not."""

    trigger: str
    allowed: bool
    targets: tuple[str, ...]
    failed_guards: tuple[str, ...] = ()


@dataclass
class _Token:
    state: str
    facts: Facts
    failures: list[str] = field(default_factory=list)
    chosen: T | None = None


def _part_names(t: T) -> list[str]:
    return [g.name for g in t.guards] + [e.name for e in t.effects]


class Workflow:
    """A validated definition plus its state machine."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self._by_trigger: dict[str, list[T]] = {}
        for t in definition.transitions:
            self._by_trigger.setdefault(t.trigger, []).append(t)
        self._args = {
            trigger: (
                frozenset(a for t in ts for name in _part_names(t)
                          for a in READS.get(name, ())),
                frozenset(a for t in ts for e in t.effects for a in REQUIRED_ARGS.get(e.name, ())),
            )
            for trigger, ts in self._by_trigger.items()
        }
        self._machine = Machine(
            model=None,
            states=[str(s) for s in definition.states],    # plain str, not Enum members
            transitions=[self._spec(t) for t in definition.transitions],
            initial=str(definition.initial),
            auto_transitions=False,
            send_event=True,
        )

    @property
    def ref(self) -> tuple[str, int]:
        return self.definition.ref

    def _spec(self, t: T) -> dict[str, Any]:
        def condition(event: Any) -> bool:
            token: _Token = event.model
            failed = [g.label() + "=" + reason for g in t.guards
                      if (reason := GUARDS[g.name](token.facts, g.args)) is not None]
            token.failures.extend(failed)
            if not failed:
                token.chosen = t
            return not failed

        return {"trigger": t.trigger, "source": [str(s) for s in t.sources],
                "dest": None if t.dest is None else str(t.dest), "conditions": [condition]}

    def check_args(self, trigger: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if trigger not in self._by_trigger:
            raise UnknownTrigger(self.definition.key, trigger)
        accepted, required = self._args[trigger]
        return validate_args(trigger, accepted, required, args)

    def fire(self, trigger: str, facts: Facts) -> Outcome:
        """Resolve ``trigger`` from ``facts.state``.

        Raises: UnknownTrigger, TransitionNotAllowed, GuardFailed, InvalidInput.
        """
        if trigger not in self._by_trigger:
            raise UnknownTrigger(self.definition.key, trigger)
        token = _Token(str(facts.state), facts)
        try:
            moved = self._machine.events[trigger].trigger(token)
        except MachineError:
            raise TransitionNotAllowed(trigger, facts.state) from None
        if not moved or token.chosen is None:
            raise GuardFailed(trigger, facts.state, token.failures)
        return Outcome(facts.state, token.state, token.chosen, facts.args)

    def apply_effects(self, outcome: Outcome, facts: Facts) -> CaseRecord:
        record = facts.record
        effects: tuple[Effect, ...] = outcome.transition.effects
        for effect in effects:
            record = EFFECTS[effect.name](record, facts, effect.args)
        return record.with_milestone(outcome.transition.trigger, facts.now)

    def available(self, facts: Facts) -> list[ActionCheck]:
        """Every trigger that leaves ``facts.state``, with guard results (no arguments)."""
        checks: list[ActionCheck] = []
        for trigger, ts in self._by_trigger.items():
            here = [t for t in ts if facts.state in t.sources]
            if not here:
                continue
            failed: list[str] = []
            for t in here:
                bad = [g.label() + "=" + reason for g in t.guards
                       if (reason := GUARDS[g.name](facts, g.args)) is not None]
                if not bad:
                    failed = []
                    break
                failed.extend(bad)
            targets = tuple(dict.fromkeys(t.dest or facts.state for t in here))
            checks.append(ActionCheck(trigger, not failed, targets, tuple(failed)))
        return checks
