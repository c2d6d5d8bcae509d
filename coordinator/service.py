"""The Coordinator facade: the use cases that the CLI, the HTTP API and library users call.

Each use case opens one unit of work, changes one aggregate and commits once. Time comes
from the clock; nothing here does I/O except through the ports.

Need-to-know is enforced here, not at the edges: every use case knows who acts and asks
``access.policy.decide`` through ``cases.team.authorize`` before it touches a case. Commands
(``OpenCase``, ``FireTrigger``, ``GrantConsent``, ``WithdrawConsent``) already carry their
actor, and that actor is checked. Reads take a keyword ``actor``; its default is the
explicit ``SYSTEM`` actor (role ``system``), the trusted operator identity of the CLI,
migrations and the demo loader, which the permission table grants everything. The checks
are never skipped: the system actor passes them by a row of the table, and the HTTP layer
always passes the caller's actor. A foreign case raises ``NotCaseMember`` (shown as a 404,
like a missing case); a permitted viewer lacking the permission gets ``PermissionDenied``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from uuid import UUID

from coordinator.access.policy import BRUKER, ROLES, Permission, Relation, trigger_permission
from coordinator.audit import runner
from coordinator.audit.checkpoint import Checkpoint
from coordinator.audit.events import CASE_VIEWED, DATA_READ, SealedEvent, stream_of
from coordinator.audit.verify import Report
from coordinator.cases import auditing, disclosure, gate, sharing, team
from coordinator.cases.commands import (
    AccessLogEntry,
    CaseSummary,
    CaseView,
    DataAccess,
    FireTrigger,
    GrantConsent,
    MigrationItem,
    MigrationReport,
    OpenCase,
    WithdrawConsent,
)
from coordinator.cases.documents import Documents
from coordinator.cases.key_rotation import KeyRotation, Progress
from coordinator.cases.model import SYSTEM, Actor, Case, Member
from coordinator.consent.model import ConsentRecord
from coordinator.consent.policy import live_scopes, purposes_by_party
from coordinator.errors import (
    AlreadyMember,
    CaseNotFound,
    ConcurrentUpdate,
    CoordinatorError,
    InvalidInput,
    MigrationBlocked,
    NotCaseMember,
    NotEligible,
    PermissionDenied,
    ReferrerNotAllowed,
    StaleVersion,
)
from coordinator.meetings import Meetings, notify_nav, plan_inputs, replan
from coordinator.ports import (
    CheckpointSigner,
    Clock,
    DocumentCipher,
    KeyProvider,
    OutboxStore,
    UnitOfWork,
)
from coordinator.scheduling import nav
from coordinator.scheduling.outbox import INAPP, NAV_WEBHOOK
from coordinator.workflows import deadlines, eligibility
from coordinator.workflows.definition import CLOSED_STATES, WorkflowDefinition
from coordinator.workflows.engine import Workflow
from coordinator.workflows.registry import WorkflowRegistry

MIGRATION_ACTOR_ROLE = SYSTEM.role


@dataclass
class Coordinator:
    uow: Callable[[], UnitOfWork]
    workflows: WorkflowRegistry
    clock: Clock
    channels: tuple[str, ...] = (INAPP,)        # where reminders go (e-mail when configured)
    outbox_store: OutboxStore | None = field(default=None, repr=False)

    @cached_property
    def meetings(self) -> Meetings:
        """Meetings, reminders, the overdue view and dead letters (coordinator.meetings)."""
        return Meetings(self.uow, self.workflows, self.clock, self.channels, self.outbox_store,
                        self.nav_webhook)
    signer: CheckpointSigner | None = None     # signs and verifies audit checkpoints
    nav_webhook: bool = False   # write Nav events to the outbox (docs/referrals.md)
    keys: KeyProvider | None = field(default=None, repr=False)    # wraps data keys
    cipher: DocumentCipher | None = field(default=None, repr=False)   # seals documents

    @cached_property
    def documents(self) -> Documents:
        """Encrypted case documents: write, read, share, revoke and erase
        (coordinator/cases/documents.py, docs/encryption.md)."""
        return Documents(self.uow, self.clock, self.keys, self.cipher, self._denials)

    def key_rotation(self, *, batch: int = 100, progress: Progress | None = None,
                     between_batches: Callable[[], None] | None = None) -> KeyRotation:
        """Rotate the KEK (and with ``reencrypt`` the data keys); operators only."""
        return KeyRotation(self.uow, self.clock, self.documents.envelope, SYSTEM,
                           batch=batch, progress=progress, between_batches=between_batches)

    # -- denials are audited -------------------------------------------------------------
    @contextmanager
    def _denials(self, actor: Actor, action: str, case_id: UUID | None = None,
                 **scope: str | None) -> Iterator[None]:
        """Audit an access denial raised inside, in a fresh unit of work (the use case's
        own writes have rolled back), then re-raise it."""
        try:
            yield
        except (PermissionDenied, NotCaseMember) as exc:
            self._audit_denial(actor, action, case_id, exc, scope)
            raise

    def _audit_denial(self, actor: Actor, action: str, case_id: UUID | None,
                      exc: CoordinatorError, scope: dict[str, str | None]) -> None:
        with self.uow() as uow:
            subject = None
            if case_id is not None:
                try:
                    subject = uow.cases.get(case_id).subject_id
                except CaseNotFound:
                    case_id = None
            uow.audit.append(auditing.denied(
                actor, self.clock.now(), action=action, code=exc.code, case_id=case_id,
                person_key=subject, purpose=scope.get("purpose"),
                category=scope.get("category"), audience=scope.get("audience")))
            uow.commit()

    # -- cases -------------------------------------------------------------------------
    def open_case(self, cmd: OpenCase) -> CaseSummary:
        """The acting referrer and ``cmd.team`` become the case's team. A ``bruker`` may
        open only a case about themself (``subject_id`` their own id).

        Raises: PermissionDenied, InvalidInput, UnknownWorkflow, ReferrerNotAllowed,
        NotEligible."""
        now = self.clock.now()
        case, members = self.prepare_case(cmd, now)
        with self.uow() as uow:
            self.add_new_case(uow, case, members)
            self.plan_reminders(uow, case, now)
            uow.commit()
        return CaseSummary.of(case)

    def prepare_case(self, cmd: OpenCase, now: datetime) -> tuple[Case, list[Member]]:
        """Every check of ``open_case`` and the new case with its team, unsaved, for use
        cases that add more to the same unit of work (referral intake).

        Raises: as ``open_case``."""
        own = cmd.actor.role == BRUKER and cmd.subject_id == cmd.actor.id
        with self._denials(cmd.actor, "open_case"):
            team.require(cmd.actor, Permission.OPEN_CASE, Relation.OWN if own else Relation.NONE)
        members = team.initial_team(cmd.actor, cmd.team)
        workflow = (self.workflows.latest(cmd.pilot) if cmd.workflow_version is None
                    else self.workflows.get(cmd.pilot, cmd.workflow_version))
        d = workflow.definition
        if cmd.referrer not in d.referrers:
            raise ReferrerNotAllowed(
                f"{d.key} takes referrals from {', '.join(d.referrers)}, not {cmd.referrer}",
                pilot=d.key, referrer=cmd.referrer)
        reasons = eligibility.failures(d.eligibility, cmd.profile, now.date())
        if reasons:
            raise NotEligible(d.key, reasons)
        case = Case.open(cmd.case_id or uuid.uuid4(), workflow=workflow, referrer=cmd.referrer,
                         profile=cmd.profile, by=cmd.actor, now=now, subject_id=cmd.subject_id)
        return case, team.members_of(case.id, members, cmd.actor, case)

    def add_new_case(self, uow: UnitOfWork, case: Case, members: Sequence[Member]) -> None:
        """Put a prepared case and its team into ``uow``; ``plan_reminders`` once the case
        has reached the state it is committed in."""
        uow.cases.add(case)
        for member in members:
            uow.members.add(member)

    def plan_reminders(self, uow: UnitOfWork, case: Case, now: datetime) -> None:
        replan(uow, case, self.workflows.get(*case.workflow_ref), now, self.channels)

    def fire(self, cmd: FireTrigger) -> CaseSummary:
        """Raises: CaseNotFound, NotCaseMember, PermissionDenied, StaleVersion,
        UnknownTrigger, InvalidInput, TransitionNotAllowed, GuardFailed, ConcurrentUpdate."""
        now = self.clock.now()
        with self._denials(cmd.actor, f"fire:{cmd.trigger}", cmd.case_id), self.uow() as uow:
            case = uow.cases.get(cmd.case_id)
            team.authorize(uow, cmd.actor, case, trigger_permission(cmd.trigger))
            if cmd.expected_version is not None and cmd.expected_version != case.version:
                raise StaleVersion(cmd.expected_version, case.version)
            workflow = self.workflows.get(*case.workflow_ref)
            consents = purposes_by_party(live_scopes(uow.consents.for_case(case.id), now))
            state, planned = case.state, plan_inputs(case, workflow)
            case.fire(cmd.trigger, by=cmd.actor, workflow=workflow, consents=consents,
                      args=dict(cmd.args), now=now)
            notify_nav(uow, case, state, consents, now, self.nav_webhook)
            if plan_inputs(case, workflow) != planned:
                replan(uow, case, workflow, now, self.channels)
            uow.commit()
            return CaseSummary.of(case)

    def summary(self, case_id: UUID, *, actor: Actor = SYSTEM) -> CaseSummary:
        """Raises: CaseNotFound, NotCaseMember."""
        with self._denials(actor, "summary", case_id), self.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_METADATA)
            return CaseSummary.of(case)

    def view(self, case_id: UUID, *, actor: Actor = SYSTEM) -> CaseView:
        """State, allowed next actions (with reasons when not), deadlines, team and history.
        Without VIEW_CASE (the auditor) only metadata: no record, actions, team or event
        arguments. A team member sees data categories of the other side only as the gate
        allows them now (``cases.disclosure``); the rest is left out and listed in
        ``withheld``, and the cross-side reads are audited as one ``data_read``.
        Raises: CaseNotFound, NotCaseMember."""
        now = self.clock.now()
        with self._denials(actor, "view", case_id), self.uow() as uow:
            case = uow.cases.get(case_id)
            rel = team.authorize(uow, actor, case, Permission.VIEW_METADATA)
            content = team.may(actor, Permission.VIEW_CASE, rel)
            workflow = self.workflows.get(*case.workflow_ref)
            records = uow.consents.for_case(case.id)
            consents = purposes_by_party(live_scopes(records, now))
            facts = case.facts(workflow, consents, now)
            history = uow.events.history(case.id) \
                if team.may(actor, Permission.VIEW_HISTORY, rel) else []
            record: dict[str, Any] = {}
            withheld: tuple[str, ...] = ()
            if content:
                by_seq = disclosure.event_categories(actor, history, self._definition)
                shown = disclosure.decide(
                    actor, rel, {*by_seq.values(), *disclosure.record_categories(
                        case.record_data)}, records, now)
                record = disclosure.filter_record(case.record_data, shown)
                history = disclosure.filter_events(history, by_seq, shown)
                withheld = tuple(sorted(shown.withheld))
                self._audit_cross_reads(uow, actor, case, shown, "view", now)
            uow.audit.append(auditing.access(
                CASE_VIEWED, actor, now, case_id=case.id, person_key=case.subject_id,
                data={"content": content, **({"withheld": list(withheld)} if withheld
                                             else {})}))
            uow.commit()
            return CaseView(
                summary=CaseSummary.of(case),
                actions=tuple(workflow.available(facts)) if content else (),
                deadlines=tuple(deadlines.statuses(
                    workflow.definition, state=case.state, referred_at=case.referred_at,
                    profile=facts.profile, record=facts.record, now=now)),
                history=tuple(history if content else team.without_content(history)),
                record=record,
                team=tuple(uow.members.for_case(case.id)) if content else (),
                content=content,
                withheld=withheld,
            )

    def history(self, case_id: UUID, *, actor: Actor = SYSTEM) -> disclosure.CaseHistory:
        """The case's events. Without VIEW_CASE only metadata; a team member gets the
        content of other-side categories only as the gate allows (``withheld`` lists the
        rest), and the cross-side reads are audited as one ``data_read``.
        Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        now = self.clock.now()
        with self._denials(actor, "history", case_id), self.uow() as uow:
            case = uow.cases.get(case_id)
            rel = team.authorize(uow, actor, case, Permission.VIEW_HISTORY)
            events = uow.events.history(case_id)
            if not team.may(actor, Permission.VIEW_CASE, rel):
                sharing.log_read(uow, actor, case, "history", now)
                return disclosure.CaseHistory(tuple(team.without_content(events)))
            by_seq = disclosure.event_categories(actor, events, self._definition)
            shown = disclosure.decide(actor, rel, by_seq.values(),
                                      uow.consents.for_case(case_id), now)
            self._audit_cross_reads(uow, actor, case, shown, "history", now)
            withheld = tuple(sorted(shown.withheld))
            sharing.log_read(uow, actor, case, "history", now,
                             withheld=list(withheld))
            return disclosure.CaseHistory(
                tuple(disclosure.filter_events(events, by_seq, shown)), withheld)

    def _definition(self, key: str, version: int) -> WorkflowDefinition:
        return self.workflows.get(key, version).definition

    @staticmethod
    def _audit_cross_reads(uow: UnitOfWork, actor: Actor, case: Case,
                           shown: disclosure.Shown, via: str, now: datetime) -> None:
        """One ``data_read`` per request for the categories read across sides on a
        consent, committed with the request's other audit events before data leaves."""
        if not shown.crossed:
            return
        data, consent_id, purpose, category = disclosure.read_record(shown, via)
        uow.audit.append(auditing.access(
            DATA_READ, actor, now, case_id=case.id, person_key=case.subject_id,
            purpose=purpose, category=category, consent_id=consent_id, data=data))

    def list_cases(self, *, pilot: str | None = None, state: str | None = None,
                   after: UUID | None = None, limit: int = 50,
                   actor: Actor = SYSTEM) -> list[CaseSummary]:
        """Every case (metadata). Raises: PermissionDenied, InvalidInput."""
        with self._denials(actor, "list_cases"):
            team.require(actor, Permission.LIST_CASES)
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be between 1 and 500")
        with self.uow() as uow:
            return [CaseSummary.of(c)
                    for c in uow.cases.list(pilot=pilot, state=state, after=after, limit=limit)]

    def my_cases(self, actor: Actor, *, after: UUID | None = None,
                 limit: int = 50) -> list[CaseSummary]:
        """The cases ``actor`` is on: a team member's cases in that role, a bruker's own.
        Keyset-paginated by id. Raises: PermissionDenied (unknown role), InvalidInput."""
        if actor.role not in ROLES:
            raise PermissionDenied(f"unknown role {actor.role!r}", role=actor.role)
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be between 1 and 500")
        own = actor.role == BRUKER
        with self.uow() as uow:
            return [CaseSummary.of(c) for c in uow.cases.list(
                after=after, limit=limit, subject=actor.id if own else None,
                member=None if own else (actor.id, actor.role))]

    def add_member(self, case_id: UUID, actor_id: str, role: str, *, by: Actor) -> Member:
        """Put ``actor_id`` on the case's team in ``role``: one ``member_added`` event.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied, InvalidInput, AlreadyMember,
        ConcurrentUpdate."""
        team.check_team_role(actor_id, role)
        with self._denials(by, "add_member", case_id), self.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, by, case, Permission.MANAGE_TEAM)
            if any(m.actor_id == actor_id for m in uow.members.for_case(case_id)):
                raise AlreadyMember(f"{actor_id} is already on the team", actor_id=actor_id)
            now = self.clock.now()
            member = case.add_member(actor_id, role, by=by, now=now)
            uow.members.add(member)
            replan(uow, case, self.workflows.get(*case.workflow_ref), now, self.channels)
            uow.commit()
            return member

    def count_cases(self, *, actor: Actor = SYSTEM) -> int:
        """Raises: PermissionDenied (only aggregate viewers may count)."""
        with self._denials(actor, "count_cases"):
            team.require(actor, Permission.VIEW_AGGREGATES)
        with self.uow() as uow:
            return uow.cases.count()

    def case_counts(self, *, actor: Actor = SYSTEM) -> dict[tuple[str, str], int]:
        """How many cases each (pilot, state) has: aggregates, no case data.

        Raises: PermissionDenied (only aggregate viewers may count)."""
        team.require(actor, Permission.VIEW_AGGREGATES)
        counts: dict[tuple[str, str], int] = {}
        after: UUID | None = None
        while True:
            with self.uow() as uow:     # read what is needed while the session is open
                page = [(c.id, c.pilot, c.state) for c in uow.cases.list(after=after, limit=500)]
            if not page:
                return counts
            after = page[-1][0]
            for _id, pilot, state in page:
                counts[(pilot, state)] = counts.get((pilot, state), 0) + 1

    def ping(self) -> None:
        """One cheap round trip to the store, for health checks. Raises what the store raises."""
        with self.uow() as uow:
            uow.cases.list(limit=1)

    # -- consent (coordinator/consent, coordinator/cases/sharing.py) ---------------------
    def grant_consent(self, cmd: GrantConsent) -> ConsentRecord:
        """Record a grant on the pilot's consent form. Raises: InvalidInput, CaseNotFound,
        NotCaseMember, PermissionDenied."""
        return self._consent(cmd)

    def withdraw_consent(self, cmd: WithdrawConsent) -> ConsentRecord:
        """Record a withdrawal, whole or in part; it holds from the next request."""
        return self._consent(cmd)

    def _consent(self, cmd: GrantConsent | WithdrawConsent) -> ConsentRecord:
        with self._denials(cmd.actor, "manage_consent", cmd.case_id), self.uow() as uow:
            case = uow.cases.get(cmd.case_id)
            team.authorize(uow, cmd.actor, case, Permission.MANAGE_CONSENT)
            now = self.clock.now()
            record = sharing.consent_record(case, cmd, now)
            uow.consents.add(record)
            if record.kind == "withdrawal" and not nav.covered(purposes_by_party(live_scopes(
                    {r.id: r for r in (*uow.consents.for_case(case.id), record)}.values(), now))):
                uow.outbox.cancel_channel(case.id, NAV_WEBHOOK)    # unsent Nav events
            uow.commit()
            return record

    def consent_log(self, case_id: UUID, *, actor: Actor = SYSTEM) -> Sequence[ConsentRecord]:
        """Every grant and withdrawal of the case, oldest first (the read is audited).
        Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        with self._denials(actor, "consent_log", case_id), self.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_CONSENT_LOG)
            return sharing.consent_log(uow, actor, case, self.clock.now())

    def pilot_consent_log(self, pilot: str, *, actor: Actor = SYSTEM,
                          since: datetime | None = None, until: datetime | None = None,
                          limit: int = 1000) -> Sequence[ConsentRecord]:
        """Consent changes in a pilot's cases in [since, until): auditors and operators.
        Raises: PermissionDenied, UnknownWorkflow, InvalidInput."""
        with self._denials(actor, "pilot_consent_log"):
            team.require(actor, Permission.AUDIT)
        self.workflows.latest(pilot)
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000")
        with self.uow() as uow:
            records = uow.consents.for_pilot(pilot, since=since, until=until, limit=limit)
            uow.audit.append(auditing.access("log_read", actor, self.clock.now(), case_id=None,
                                             data={"log": "pilot_consent_log",
                                                   "pilot": pilot}))
            uow.commit()
            return records

    # -- reading and sharing case data: the one enforcement point (cases/gate.py) --------
    def read_data(self, case_id: UUID, *, actor: Actor, purpose: str,
                  category: str) -> DataAccess:
        """May ``actor`` read ``category`` of the case for ``purpose`` now? The grant is
        audited (with its consent) before it is returned. Raises: InvalidInput,
        CaseNotFound, NotCaseMember, PermissionDenied, ConsentRequired (all audited)."""
        with self._denials(actor, "read_data", case_id, purpose=purpose, category=category), \
                self.uow() as uow:
            return sharing.access_data(uow, actor, case_id, action=gate.READ, purpose=purpose,
                                       category=category, audience=None, now=self.clock.now())

    def share_data(self, case_id: UUID, *, actor: Actor, purpose: str, category: str,
                   audience: str) -> DataAccess:
        """Disclose ``category`` to the party ``audience``. Raises as ``read_data``."""
        with self._denials(actor, "share_data", case_id, purpose=purpose, category=category,
                           audience=audience), self.uow() as uow:
            return sharing.access_data(uow, actor, case_id, action=gate.SHARE, purpose=purpose,
                                       category=category, audience=audience,
                                       now=self.clock.now())

    def emergency_access(self, case_id: UUID, *, actor: Actor, category: str,
                         reason: str) -> DataAccess:
        """Break the glass (health roles only, never Nav roles): logged with the reason and
        flagged for review. Raises: EmergencyAccessRefused, InvalidInput, CaseNotFound."""
        with self._denials(actor, "emergency_access", case_id, category=category), \
                self.uow() as uow:
            return sharing.emergency(uow, actor, case_id, category=category, reason=reason,
                                     now=self.clock.now())

    def pending_emergency_reviews(self, *, actor: Actor = SYSTEM) -> list[SealedEvent]:
        """Emergency accesses no auditor has reviewed yet. Raises: PermissionDenied."""
        with self._denials(actor, "emergency_reviews"):
            team.require(actor, Permission.AUDIT)
        with self.uow() as uow:
            return sharing.pending_reviews(uow)

    def review_emergency(self, case_id: UUID, seq: int, *, actor: Actor,
                         verdict: str) -> None:
        """Record an auditor's review of the emergency access at ``seq`` of the case."""
        with self._denials(actor, "review_emergency", case_id), self.uow() as uow:
            sharing.review_emergency(uow, actor, case_id, seq, verdict=verdict,
                                     now=self.clock.now())

    def access_log(self, case_id: UUID, *, actor: Actor = SYSTEM) -> list[AccessLogEntry]:
        """The person's access log (pasientjournalloven § 18): for the person themself and
        auditors. Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        with self._denials(actor, "access_log", case_id), self.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_ACCESS_LOG)
            return sharing.access_log(uow, actor, case, self.clock.now())

    # -- the audit trail (coordinator/audit) ----------------------------------------------
    def verify_audit(self, *, case_id: UUID | None = None, since: datetime | None = None,
                     actor: Actor = SYSTEM,
                     progress: Callable[[int, int], None] | None = None,
                     jobs: int = 1) -> Report:
        """Verify chains, heads and signed checkpoints; ``report.first`` names the first
        bad event. ``jobs`` > 1 scans a full verify in that many processes (PostgreSQL).
        Raises: PermissionDenied."""
        with self._denials(actor, "audit_verify"):
            team.require(actor, Permission.AUDIT)
        with self.uow() as uow:
            return runner.verify(uow.audit, self.signer, progress=progress, since=since,
                                 stream=None if case_id is None else stream_of(case_id),
                                 jobs=jobs)

    def checkpoint_audit(self, *, actor: Actor = SYSTEM) -> Checkpoint:
        """Sign a checkpoint over all chain heads. Raises: PermissionDenied,
        ConcurrentUpdate (another process checkpointed at the same moment)."""
        with self._denials(actor, "audit_checkpoint"):
            team.require(actor, Permission.AUDIT)
        if self.signer is None:
            raise CoordinatorError("no checkpoint signer is configured")
        with self.uow() as uow:
            checkpoint = runner.make_checkpoint(uow.audit, self.signer, self.clock.now())
            uow.commit()
            return checkpoint

    def checkpoint_audit_if_due(self, every: timedelta) -> Checkpoint | None:
        """The worker's scheduled checkpoint: sign one when events were appended since the
        last checkpoint and it is at least ``every`` old; None otherwise. Several workers
        may run it at the same moment: the checkpoint's sequence number is its primary
        key, so one insert wins and the others get None (as a lost claim of a reminder).
        Raises: CoordinatorError (no signer)."""
        if self.signer is None:
            raise CoordinatorError("no checkpoint signer is configured")
        with self.uow() as uow:
            try:
                checkpoint = runner.checkpoint_if_due(uow.audit, self.signer,
                                                      self.clock.now(), every)
                if checkpoint is not None:
                    uow.commit()
            except ConcurrentUpdate:
                return None
            return checkpoint

    def audit_extract(self, *, actor: Actor = SYSTEM, case_id: UUID | None = None,
                      since: datetime | None = None) -> Iterator[SealedEvent]:
        """Stored events in (stream, seq) order, streamed; the extract itself is audited
        first. Raises: PermissionDenied."""
        with self._denials(actor, "audit_extract", case_id):
            team.require(actor, Permission.AUDIT)
        with self.uow() as uow:
            uow.audit.append(auditing.access("log_read", actor, self.clock.now(), case_id=None,
                                             data={"log": "audit_extract",
                                                   "case": str(case_id) if case_id else None}))
            uow.commit()
        return self._extract(None if case_id is None else stream_of(case_id), since)

    def _extract(self, stream: str | None, since: datetime | None) -> Iterator[SealedEvent]:
        with self.uow() as uow:
            yield from uow.audit.events(stream=stream, since=since)

    # -- workflow versions ---------------------------------------------------------------
    def migrate(self, pilot: str, to_version: int, *, dry_run: bool,
                actor_id: str = "cli") -> MigrationReport:
        """Move running cases of ``pilot`` onto ``to_version``; one commit per case.

        Raises: UnknownWorkflow, MigrationBlocked (the target declares no migration)."""
        target = self.workflows.get(pilot, to_version)
        m = target.definition.migrates_from
        if m is None:
            raise MigrationBlocked(f"{pilot} v{to_version} declares no migration from an "
                                   f"older version", pilot=pilot, version=to_version)
        movable, blocked = self._plan_migration(target, pilot, m.from_version)
        moved = 0
        if not dry_run:
            moved = self._apply_migration(target, movable, actor_id)
        return MigrationReport(pilot, m.from_version, to_version, dry_run, tuple(movable),
                               tuple(blocked), moved)

    def _plan_migration(self, target: Workflow, pilot: str,
                        from_version: int) -> tuple[list[MigrationItem], list[MigrationItem]]:
        m = target.definition.migrates_from
        assert m is not None  # noqa: S101 - checked by the caller
        movable: list[MigrationItem] = []
        blocked: list[MigrationItem] = []
        after: UUID | None = None
        while True:
            with self.uow() as uow:     # read ids and states while the session is open
                page = [(c.id, c.state) for c in uow.cases.list(
                    pilot=pilot, workflow_version=from_version, after=after, limit=500)]
            if not page:
                break
            after = page[-1][0]
            for case_id, state in page:
                if state in CLOSED_STATES and state not in m.states:
                    continue    # finished cases stay on the version they ended on
                new = m.states.get(state)
                if new is None:
                    reason = m.reasons.get(state, f"state {state!r} has no "
                                                  f"counterpart in v{target.ref[1]}")
                    blocked.append(MigrationItem(case_id, state, None, reason))
                else:
                    movable.append(MigrationItem(case_id, state, new))
        return movable, blocked

    def _apply_migration(self, target: Workflow, items: list[MigrationItem],
                         actor_id: str) -> int:
        actor = Actor(actor_id, MIGRATION_ACTOR_ROLE)
        m = target.definition.migrates_from
        assert m is not None  # noqa: S101 - checked by the caller
        moved = 0
        for item in items:
            with self.uow() as uow:
                case = uow.cases.get(item.case_id)
                if case.workflow_version != m.from_version or case.state != item.from_state \
                        or item.to_state is None:
                    continue        # changed since the plan; a rerun picks it up
                case.migrate(target, item.to_state, by=actor, now=self.clock.now())
                uow.commit()
                moved += 1
        return moved
