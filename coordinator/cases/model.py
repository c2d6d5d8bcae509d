"""The Case aggregate. Pure: time and the workflow are arguments; every change records
exactly one event, which the unit of work persists in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from coordinator.errors import WorkflowMismatch
from coordinator.workflows.definition import CLOSED_STATES
from coordinator.workflows.engine import Workflow
from coordinator.workflows.facts import CaseRecord, Facts, Profile


@dataclass(frozen=True)
class Actor:
    id: str
    role: str
    org: str | None = None


SYSTEM = Actor("system", "system")
"""The explicit actor of trusted operator paths (CLI, migrations, demo, scheduler)."""


@dataclass(frozen=True)
class Member:
    """One person on a case's team, in one role."""

    case_id: UUID
    actor_id: str
    role: str
    added_at: datetime
    added_by: str


@dataclass(frozen=True)
class CaseEvent:
    """One entry of a case's history. ``seq`` equals the case version it produced."""

    case_id: UUID
    kind: str                    # opened, transitioned, migrated, member_added
    occurred_at: datetime
    actor_id: str
    actor_role: str
    from_state: str | None
    to_state: str
    trigger: str | None
    reason: str | None
    workflow_key: str
    workflow_version: int
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    actor_org: str | None = None             # carried to the audit event, not stored here


@dataclass(eq=False)
class Case:
    id: UUID
    pilot: str
    workflow_version: int
    state: str
    referrer: str
    referred_at: datetime
    profile_data: dict[str, Any]
    record_data: dict[str, Any]
    opened_by: str
    updated_at: datetime
    closed_at: datetime | None = None
    subject_id: str | None = None          # the person's pseudonymous user id (never an fnr)
    version: int = 0                       # owned by persistence (version_id_col)
    events: list[CaseEvent] = field(default_factory=list)

    @classmethod
    def open(cls, case_id: UUID, *, workflow: Workflow, referrer: str, profile: Profile,
             by: Actor, now: datetime, subject_id: str | None = None) -> Case:
        d = workflow.definition
        case = cls(id=case_id, pilot=d.key, workflow_version=d.version, state=str(d.initial),
                   referrer=referrer, referred_at=now, profile_data=profile.to_json(),
                   record_data=CaseRecord().to_json(), opened_by=by.id, updated_at=now,
                   subject_id=subject_id)
        case._record("opened", by, None, str(d.initial), None, None, now, {"referrer": referrer})
        return case

    @property
    def profile(self) -> Profile:
        return Profile.from_json(self.profile_data)

    @property
    def record(self) -> CaseRecord:
        return CaseRecord.from_json(self.record_data)

    @property
    def workflow_ref(self) -> tuple[str, int]:
        return (self.pilot, self.workflow_version)

    def facts(self, workflow: Workflow, consents: frozenset[tuple[str, str]], now: datetime,
              args: dict[str, Any] | None = None) -> Facts:
        return Facts(now=now, state=self.state, referrer=self.referrer, profile=self.profile,
                     record=self.record, consents=consents, definition=workflow.definition,
                     args=args or {})

    def fire(self, trigger: str, *, by: Actor, workflow: Workflow,
             consents: frozenset[tuple[str, str]], args: dict[str, Any], now: datetime) -> None:
        """Raises: WorkflowMismatch, UnknownTrigger, InvalidInput, TransitionNotAllowed,
        GuardFailed."""
        if workflow.ref != self.workflow_ref:
            raise WorkflowMismatch(f"case is on {self.workflow_ref}, not {workflow.ref}")
        clean = workflow.check_args(trigger, args)
        facts = self.facts(workflow, consents, now, clean)
        outcome = workflow.fire(trigger, facts)
        self.record_data = workflow.apply_effects(outcome, facts).to_json()
        reason = clean.pop("reason", None)
        self._record("transitioned", by, self.state, outcome.target, trigger, reason, now, clean)
        self.state = outcome.target
        self.closed_at = now if outcome.target in CLOSED_STATES else None

    def migrate(self, workflow: Workflow, state: str, *, by: Actor, now: datetime) -> None:
        old = self.workflow_version
        self.workflow_version = workflow.definition.version
        self._record("migrated", by, self.state, state, None, None, now,
                     {"from_version": old, "to_version": self.workflow_version})
        self.state = state

    def add_member(self, actor_id: str, role: str, *, by: Actor, now: datetime) -> Member:
        """The team is part of the case: a new member is one event and one version."""
        self._record("member_added", by, self.state, self.state, None, None, now,
                     {"actor_id": actor_id, "role": role})
        return Member(self.id, actor_id, role, now, by.id)

    def note(self, kind: str, *, by: Actor, now: datetime, data: dict[str, Any]) -> None:
        """A change beside the workflow (a meeting scheduled, moved, cancelled or held):
        one event and one version, like every other change of the case."""
        self._record(kind, by, self.state, self.state, None, None, now, data)

    def _record(self, kind: str, by: Actor, src: str | None, dst: str, trigger: str | None,
                reason: str | None, now: datetime, data: dict[str, Any]) -> None:
        self.updated_at = now
        self.events.append(CaseEvent(self.id, kind, now, by.id, by.role, src, dst, trigger,
                                     reason, self.pilot, self.workflow_version, data,
                                     actor_org=by.org))
