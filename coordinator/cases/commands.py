"""Commands (inputs to use cases) and read models (their outputs). Frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from coordinator.cases.model import Actor, Case, CaseEvent, Member
from coordinator.workflows.deadlines import DeadlineStatus
from coordinator.workflows.engine import ActionCheck
from coordinator.workflows.facts import Profile


@dataclass(frozen=True)
class OpenCase:
    pilot: str
    referrer: str
    profile: Profile
    actor: Actor
    case_id: UUID | None = None
    workflow_version: int | None = None      # None: the pilot's latest definition
    subject_id: str | None = None            # the person's pseudonymous user id, if known
    team: tuple[Actor, ...] = ()             # members besides the referring actor


@dataclass(frozen=True)
class FireTrigger:
    case_id: UUID
    trigger: str
    actor: Actor
    args: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None


@dataclass(frozen=True)
class GrantConsent:
    case_id: UUID
    actor: Actor
    purposes: frozenset[str]
    categories: frozenset[str]
    parties: frozenset[str]
    method: str
    form_version: str
    valid_to: datetime | None = None
    valid_from: datetime | None = None       # None: from now
    given_by: str = "person"                 # person or guardian
    guardian_ref: str | None = None          # given_by guardian: the guardian's id
    witness_ref: str | None = None           # verbal_witnessed: the witness
    document_ref: str | None = None          # signed_form: where the signed form is kept


@dataclass(frozen=True)
class WithdrawConsent:
    case_id: UUID
    actor: Actor
    purposes: frozenset[str]
    categories: frozenset[str]
    parties: frozenset[str]
    method: str
    channel: str | None = None               # in_person, phone, digital, letter
    given_by: str = "person"
    guardian_ref: str | None = None


@dataclass(frozen=True)
class DataAccess:
    """A granted read or disclosure: what, for what, to whom, and on which basis
    (``same_side``, ``own``, ``consent`` with its id, or ``emergency``)."""

    case_id: UUID
    category: str
    purpose: str
    audience: str
    basis: str
    consent_id: UUID | None
    at: datetime


@dataclass(frozen=True)
class AccessLogEntry:
    """One line of the person's access log (pasientjournalloven § 18)."""

    at: datetime
    actor_id: str
    actor_role: str
    actor_org: str | None
    action: str            # read, shared, emergency, viewed
    purpose: str | None
    category: str | None
    audience: str | None
    consent_id: UUID | None
    basis: str | None
    categories: tuple[str, ...] = ()    # every category read (a case page read lists several)


@dataclass(frozen=True)
class CaseSummary:
    id: UUID
    pilot: str
    workflow_version: int
    state: str
    version: int
    referrer: str
    referred_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, case: Case) -> CaseSummary:
        return cls(case.id, case.pilot, case.workflow_version, case.state, case.version,
                   case.referrer, case.referred_at, case.updated_at, case.closed_at)


@dataclass(frozen=True)
class CaseView:
    summary: CaseSummary
    actions: tuple[ActionCheck, ...]
    deadlines: tuple[DeadlineStatus, ...]
    history: tuple[CaseEvent, ...]
    record: Mapping[str, Any]
    team: tuple[Member, ...] = ()
    content: bool = True        # False: record, actions, team and event arguments withheld
    withheld: tuple[str, ...] = ()   # other-side categories left out (no live consent)


@dataclass(frozen=True)
class MigrationItem:
    case_id: UUID
    from_state: str
    to_state: str | None
    reason: str | None = None


@dataclass(frozen=True)
class MigrationReport:
    pilot: str
    from_version: int
    to_version: int
    dry_run: bool
    movable: tuple[MigrationItem, ...]
    blocked: tuple[MigrationItem, ...]
    moved: int = 0
