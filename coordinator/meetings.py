"""Use cases for meetings and reminders; the ``Coordinator`` facade delegates here.

Every change of a meeting is a change of its case: one case event (one version), the
meeting row, and the outbox rows it causes, in one transaction. After every change the
case's reminders are planned again (``replan``): rows that no longer apply are retracted,
new ones added, and a closed case loses every pending row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from coordinator.access.policy import Permission
from coordinator.cases import team
from coordinator.cases.meetings import HELD_TRIGGERS, Meeting
from coordinator.cases.model import SYSTEM, Actor, Case, Member
from coordinator.consent.policy import live_scopes, purposes_by_party
from coordinator.errors import InvalidInput
from coordinator.ports import Clock, OutboxStore, UnitOfWork
from coordinator.scheduling import nav, policy
from coordinator.scheduling.outbox import NOTICE, RULE, OutboxRow
from coordinator.workflows import deadlines
from coordinator.workflows.definition import CLOSED_STATES
from coordinator.workflows.engine import Workflow
from coordinator.workflows.registry import WorkflowRegistry


@dataclass(frozen=True)
class ScheduleMeeting:
    case_id: UUID
    kind: str
    starts_at: datetime
    ends_at: datetime
    participants: tuple[str, ...]
    actor: Actor
    meeting_id: UUID | None = None


@dataclass(frozen=True)
class OverdueItem:
    case_id: UUID
    pilot: str
    state: str
    deadline: str
    due_at: datetime


def recipients(roles: Sequence[str], members: Sequence[Member],
               subject_id: str | None) -> list[str]:
    """Actor ids for ``roles`` on this team (``team``: every member; ``bruker``: the
    person the case is about, when known)."""
    out = [m.actor_id for m in members if policy.TEAM in roles or m.role in roles]
    if "bruker" in roles and subject_id:
        out.append(subject_id)
    return list(dict.fromkeys(out))


def rows_for(case: Case, planned: policy.Planned, source: str, members: Sequence[Member],
             channels: Sequence[str], now: datetime) -> list[OutboxRow]:
    payload = {**planned.data, "kind": planned.kind}
    return [OutboxRow(uuid.uuid4(), case.id, case.pilot, source, planned.key, planned.kind,
                      channel, who, planned.due_at, planned.meeting_id, payload,
                      created_at=now)
            for who in recipients(planned.roles, members, case.subject_id)
            for channel in channels]


def replan(uow: UnitOfWork, case: Case, workflow: Workflow, now: datetime,
           channels: Sequence[str]) -> None:
    """Make the outbox hold exactly the reminders the case's facts call for."""
    if case.state in CLOSED_STATES:
        uow.outbox.cancel_case(case.id)
        return
    members = uow.members.for_case(case.id)
    planned = policy.plan(workflow.definition, state=case.state, referred_at=case.referred_at,
                          profile=case.profile, record=case.record,
                          meetings=uow.meetings.for_case(case.id), now=now)
    uow.outbox.replace_planned(case.id, [r for p in planned
                                         for r in rows_for(case, p, RULE, members, channels,
                                                           now)])


def plan_inputs(case: Case, workflow: Workflow) -> tuple[object, ...]:
    """What the reminder plan reads of the case (``policy.inputs``): a fire that leaves it
    equal and touches no meeting need not plan again (two statements fewer)."""
    return policy.inputs(workflow.definition, state=case.state, referred_at=case.referred_at,
                         profile=case.profile, record=case.record)


def notify_nav(uow: UnitOfWork, case: Case, before: str,
               consents: frozenset[tuple[str, str]], now: datetime, enabled: bool) -> None:
    """Write the Nav event of the change ``before`` → ``case.state`` (if any, and only under
    a live consent covering coordination with Nav) into this unit of work's outbox."""
    if enabled:
        uow.outbox.add(nav.rows_for_change(case_id=case.id, pilot=case.pilot,
                                           version=case.version, before=before,
                                           after=case.state, consents=consents, now=now))


@dataclass
class Meetings:
    uow: Callable[[], UnitOfWork]
    workflows: WorkflowRegistry
    clock: Clock
    channels: tuple[str, ...]
    store: OutboxStore | None = None
    nav_webhook: bool = False       # write Nav events (docs/referrals.md)

    def schedule(self, cmd: ScheduleMeeting) -> Meeting:
        """Raises: CaseNotFound, NotCaseMember, PermissionDenied, InvalidInput,
        ConcurrentUpdate."""
        now = self.clock.now()
        meeting = Meeting.new(cmd.meeting_id or uuid.uuid4(), cmd.case_id, cmd.kind,
                              cmd.starts_at, cmd.ends_at, cmd.participants,
                              by=cmd.actor.id, now=now)
        return self._change(cmd.case_id, None, cmd.actor, "meeting_scheduled",
                            lambda _: meeting, "meeting_invitation")

    def reschedule(self, meeting_id: UUID, starts_at: datetime, ends_at: datetime, *,
                   actor: Actor) -> Meeting:
        """Retracts the meeting's pending reminders and sends an updated invitation.
        Raises: MeetingNotFound, NotCaseMember, PermissionDenied, MeetingClosed,
        InvalidInput, ConcurrentUpdate."""
        now = self.clock.now()
        return self._change(None, meeting_id, actor, "meeting_rescheduled",
                            lambda m: _existing(m).rescheduled(starts_at, ends_at, now),
                            "meeting_updated")

    def cancel(self, meeting_id: UUID, *, actor: Actor) -> Meeting:
        """Retracts the meeting's pending reminders and sends a cancellation.
        Raises: MeetingNotFound, NotCaseMember, PermissionDenied, MeetingClosed,
        ConcurrentUpdate."""
        now = self.clock.now()
        return self._change(None, meeting_id, actor, "meeting_cancelled",
                            lambda m: _existing(m).cancelled(now), "meeting_cancelled")

    def hold(self, meeting_id: UUID, attendees: Sequence[str], *, actor: Actor) -> Meeting:
        """Record that the meeting was held and who attended. When the pilot's workflow
        has the trigger for this kind of meeting (``hold_get_to_know`` …) it fires with
        the attendees, so its guards decide. Raises: MeetingNotFound, NotCaseMember,
        PermissionDenied, MeetingClosed, InvalidInput, GuardFailed,
        TransitionNotAllowed, ConcurrentUpdate."""
        if isinstance(attendees, str):
            raise InvalidInput("attendees must be a list of roles", field="attendees")
        now = self.clock.now()
        with self.uow() as uow:
            before = uow.meetings.get(meeting_id)
            case = uow.cases.get(before.case_id)
            team.authorize(uow, actor, case, Permission.ADVANCE_CASE)
            meeting = before.held(tuple(attendees), now)
            workflow = self.workflows.get(*case.workflow_ref)
            trigger = HELD_TRIGGERS.get(meeting.kind)
            if trigger is not None and trigger in workflow.definition.triggers():
                consents = purposes_by_party(live_scopes(uow.consents.for_case(case.id), now))
                state = case.state
                case.fire(trigger, by=actor, workflow=workflow, consents=consents,
                          args={"attendees": list(meeting.attendees or ())}, now=now)
                notify_nav(uow, case, state, consents, now, self.nav_webhook)
            else:
                case.note("meeting_held", by=actor, now=now, data=_event_data(meeting))
            uow.meetings.add(meeting)
            uow.outbox.cancel_meeting(meeting.id)
            replan(uow, case, workflow, now, self.channels)
            uow.commit()
            return meeting

    def for_case(self, case_id: UUID, *, actor: Actor = SYSTEM) -> Sequence[Meeting]:
        """Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        with self.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_CASE)
            return uow.meetings.for_case(case_id)

    def _change(self, case_id: UUID | None, meeting_id: UUID | None, actor: Actor,
                event: str, change: Callable[[Meeting | None], Meeting],
                notice: str) -> Meeting:
        now = self.clock.now()
        with self.uow() as uow:
            before = uow.meetings.get(meeting_id) if meeting_id is not None else None
            case = uow.cases.get(before.case_id if before is not None else case_id)  # type: ignore[arg-type]
            team.authorize(uow, actor, case, Permission.ADVANCE_CASE)
            if case.state in CLOSED_STATES:
                raise InvalidInput("the case is closed; no meetings can be planned",
                                   field="case_id")
            meeting = change(before)
            case.note(event, by=actor, now=now, data=_event_data(meeting))
            uow.meetings.add(meeting)
            uow.outbox.cancel_meeting(meeting.id)       # retract what was planned for it
            members = uow.members.for_case(case.id)
            heads_up = policy.Planned(f"meeting:{meeting.id}:{meeting.sequence}:{notice}",
                                      notice, now, meeting.participants, meeting.id,
                                      policy.meeting_data(meeting))
            uow.outbox.add(rows_for(case, heads_up, NOTICE, members, self.channels, now))
            replan(uow, case, self.workflows.get(*case.workflow_ref), now, self.channels)
            uow.commit()
            return meeting

    # -- oversight (prosjektleder) -------------------------------------------------------
    def overdue(self, pilot: str | None = None, *, actor: Actor = SYSTEM) -> list[OverdueItem]:
        """Open cases with a deadline that has passed unmet, per pilot (ids, no content).
        Raises: PermissionDenied, UnknownWorkflow."""
        team.require(actor, Permission.OVERSEE_REMINDERS)
        if pilot is not None:
            self.workflows.latest(pilot)
        now = self.clock.now()
        out: list[OverdueItem] = []
        after: UUID | None = None
        while True:
            with self.uow() as uow:       # read while the session is open
                page = list(uow.cases.list(pilot=pilot, after=after, limit=500))
                if not page:
                    break
                after = page[-1].id
                out += [item for case in page for item in self._overdue(case, now)]
        return sorted(out, key=lambda i: (i.pilot, i.due_at, str(i.case_id)))

    def _overdue(self, case: Case, now: datetime) -> list[OverdueItem]:
        if case.state in CLOSED_STATES:
            return []
        d = self.workflows.get(*case.workflow_ref).definition
        return [OverdueItem(case.id, case.pilot, case.state, s.name, s.due_at)
                for s in deadlines.statuses(d, state=case.state, referred_at=case.referred_at,
                                            profile=case.profile, record=case.record, now=now)
                if s.status == "overdue" and s.due_at is not None]

    def dead_letters(self, pilot: str | None = None, *, actor: Actor = SYSTEM,
                     limit: int = 100, offset: int = 0) -> Sequence[OutboxRow]:
        """Messages given up after the maximum number of attempts, by due time, a page
        of ``limit`` from ``offset``. Raises: PermissionDenied."""
        team.require(actor, Permission.OVERSEE_REMINDERS)
        return self._store().dead(pilot, limit, offset)

    def requeue(self, outbox_id: UUID, *, actor: Actor = SYSTEM) -> OutboxRow:
        """Raises: PermissionDenied, ReminderNotFound."""
        team.require(actor, Permission.OVERSEE_REMINDERS)
        return self._store().requeue(outbox_id, self.clock.now())

    def _store(self) -> OutboxStore:
        if self.store is None:
            raise InvalidInput("no outbox store is configured")
        return self.store


def _existing(m: Meeting | None) -> Meeting:
    assert m is not None  # noqa: S101 - a change of an existing meeting always loads it
    return m


def _event_data(m: Meeting) -> dict[str, object]:
    return {"meeting_id": str(m.id), "kind": m.kind, "starts_at": m.starts_at.isoformat(),
            "sequence": m.sequence, "attendees": list(m.attendees or ())}
