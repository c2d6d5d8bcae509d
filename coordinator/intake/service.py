"""Use cases of the intake capability, over the Coordinator's unit of work and registry.

``receive_referral`` is idempotent (the IETF Idempotency-Key draft): the caller's key is
claimed in its own short transaction, then the case, its team, its forms, its start measures
and the completed key commit together. A second request with the key gets the stored
receipt (same body) or ``IdempotencyKeyReused`` (another body), or ``IdempotencyInFlight``
while the first is still running. A claim older than ``lease`` (a crashed request) is taken
over. A refused referral releases its claim, so nothing stays written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from coordinator.access.policy import HEALTH_ROLES, SYSTEM_ROLE, Permission
from coordinator.cases import team
from coordinator.cases.commands import FireTrigger, OpenCase
from coordinator.cases.model import Actor, Case
from coordinator.consent.policy import live_scopes, purposes_by_party
from coordinator.errors import (
    AlreadyRecorded,
    CaseErased,
    ConcurrentUpdate,
    CoordinatorError,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
    PermissionDenied,
)
from coordinator.intake import measures as m
from coordinator.intake.model import (
    SESSION_KINDS,
    FormResponse,
    HoursUsed,
    IdempotencyKey,
    IdempotencyRecord,
    MeasureRecord,
    Referral,
    ReferralReceipt,
    StartMeasures,
    TherapySession,
)
from coordinator.ports import UnitOfWork
from coordinator.service import Coordinator

THERAPIST_ROLES = frozenset({"kognitiv_terapeut", "rph_behandler"})
MAX_SESSION_MINUTES = 8 * 60


@dataclass
class Intake:
    coordinator: Coordinator
    lease: timedelta = timedelta(minutes=2)
    # Called after the key is claimed, before the case commits (tests hold a request here).
    hook: Callable[[], None] | None = None

    # -- referrals ------------------------------------------------------------------------
    def receive_referral(self, referral: Referral, actor: Actor,
                         key: IdempotencyKey) -> ReferralReceipt:
        """Open a case for ``referral`` (pilot, eligibility and team as ``open_case``),
        with its forms and start measures, exactly once per ``key``.

        Raises: IdempotencyKeyReused, IdempotencyInFlight, and what ``open_case`` raises."""
        replay = self._existing(key)
        if replay is not None:
            return replay
        now = self.coordinator.clock.now()
        cmd = OpenCase(pilot=referral.pilot, referrer="fastlege", profile=referral.profile,
                       actor=actor)
        case, members = self.coordinator.prepare_case(cmd, now)   # checks before claiming
        replay = self._claim(key, now)
        if replay is not None:
            return replay
        try:
            if self.hook is not None:
                self.hook()
            with self.coordinator.uow() as uow:
                self.coordinator.add_new_case(uow, case, members)
                self._attach(uow, case, referral, actor, now)
                self.coordinator.plan_reminders(uow, case, now)
                receipt = ReferralReceipt(case.id, case.pilot, case.workflow_version,
                                          case.state)
                uow.idempotency.complete(key.source, key.key, case.id, receipt.to_json(), now)
                uow.commit()
        except BaseException:
            self._release(key)
            raise
        self._mark_start_outcome(case, actor, referral.start)
        return receipt

    def _existing(self, key: IdempotencyKey) -> ReferralReceipt | None:
        with self.coordinator.uow() as uow:
            found = uow.idempotency.get(key.source, key.key)
        if found is None:
            return None
        if found.request_hash != key.request_hash:
            raise IdempotencyKeyReused(
                "this idempotency key was used with a different request", key=key.key)
        if found.state == "done":
            return ReferralReceipt.from_json(found.response, replayed=True)
        if self.coordinator.clock.now() - found.created_at < self.lease:
            raise IdempotencyInFlight(
                "a request with this idempotency key is still being processed", key=key.key)
        self._release(key)          # abandoned by a crashed request: take it over
        return None

    def _claim(self, key: IdempotencyKey, now: datetime) -> ReferralReceipt | None:
        """Claim ``key``; when another request got it first, its stored receipt (or
        IdempotencyInFlight while it runs)."""
        record = IdempotencyRecord(key.source, key.key, key.request_hash, "processing", now)
        try:
            with self.coordinator.uow() as uow:
                claimed = uow.idempotency.claim(record)
                if claimed:
                    uow.commit()
        except ConcurrentUpdate:
            claimed = False
        if claimed:
            return None
        replay = self._existing(key)
        if replay is None:
            raise IdempotencyInFlight("the idempotency key is being released; retry",
                                      key=key.key)
        return replay

    def _release(self, key: IdempotencyKey) -> None:
        with self.coordinator.uow() as uow:
            uow.idempotency.release(key.source, key.key)
            uow.commit()

    def _attach(self, uow: UnitOfWork, case: Case, referral: Referral, actor: Actor,
                now: datetime) -> None:
        for questionnaire, answers in referral.forms:
            uow.forms.add(FormResponse(uuid.uuid4(), case.id, questionnaire, dict(answers),
                                       now, actor.id, actor.role))
        for record in _measure_records(case.id, "start", referral.start, actor, now):
            uow.measures.add(record)

    def _mark_start_outcome(self, case: Case, actor: Actor, start: StartMeasures) -> None:
        """Record the workflow's start outcome when the referral carried every measure the
        pilot names (a second, separate event: one unit of work changes a case once)."""
        d = self.coordinator.workflows.get(*case.workflow_ref).definition
        recorded = set(start.scores) | ({m.WORK_STATUS} if start.work_status else set())
        if d.outcomes.measures and m.phase_complete(d.outcomes.measures, recorded):
            try:
                self.coordinator.fire(FireTrigger(case.id, "record_outcome", actor,
                                                  {"phase": "start"}))
            except CoordinatorError:    # the measures are stored; the mark can be redone
                return

    # -- measures -------------------------------------------------------------------------
    def record_measures(self, case_id: UUID, phase: str, actor: Actor, *,
                        scores: Mapping[str, object] | None = None,
                        work_status: str | None = None) -> list[MeasureRecord]:
        """Record PHQ-9/GAD-7 item answers and/or the work status for ``phase``; when that
        completes the pilot's measures for the phase, mark the outcome on the case in the
        same unit of work. Scores need a health role; the work status any team member.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied, InvalidInput, AlreadyRecorded,
        CaseErased, and what firing ``record_outcome`` raises."""
        m.check_phase(phase)
        start = StartMeasures({k: m.score(k, _items(v)).items for k, v in (scores or {}).items()},
                              m.check_work_status(work_status) if work_status else None)
        if not start.scores and start.work_status is None:
            raise InvalidInput("nothing to record", field="scores")
        if start.scores and actor.role not in HEALTH_ROLES | {SYSTEM_ROLE}:
            raise PermissionDenied("symptom scores are recorded by health personnel",
                                   role=actor.role)
        now = self.coordinator.clock.now()
        with self.coordinator.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.ADVANCE_CASE)
            if uow.documents.erasure(case.id) is not None:
                raise CaseErased(case.id)       # an erased case takes no new health data
            existing = [r for r in uow.measures.for_case(case_id) if r.phase == phase]
            records = _measure_records(case_id, phase, start, actor, now)
            taken = {r.instrument for r in existing} & {r.instrument for r in records}
            if taken:
                raise AlreadyRecorded(f"already recorded for {phase}: {sorted(taken)}",
                                      instruments=sorted(taken), phase=phase)
            for record in records:
                uow.measures.add(record)
            self._maybe_outcome(uow, case, phase, actor, existing + records, now)
            uow.commit()
            return records

    def _maybe_outcome(self, uow: UnitOfWork, case: Case, phase: str, actor: Actor,
                       records: Sequence[MeasureRecord], now: datetime) -> None:
        workflow = self.coordinator.workflows.get(*case.workflow_ref)
        wanted = workflow.definition.outcomes.measures
        if not wanted or phase in case.record.outcomes \
                or not m.phase_complete(wanted, {r.instrument for r in records}):
            return
        consents = purposes_by_party(live_scopes(uow.consents.for_case(case.id), now))
        case.fire("record_outcome", by=actor, workflow=workflow, consents=consents,
                  args={"phase": phase}, now=now)

    def measures(self, case_id: UUID, actor: Actor) -> list[MeasureRecord]:
        """A case's measures. Health roles see all; other team members only work status.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        with self.coordinator.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_CASE)
            records = list(uow.measures.for_case(case_id))
        if actor.role in HEALTH_ROLES | {SYSTEM_ROLE}:
            return records
        return [r for r in records if r.instrument == m.WORK_STATUS]

    def forms(self, case_id: UUID, actor: Actor) -> list[FormResponse]:
        """The kartlegging forms of a case: health roles only (health data).

        Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        self._health_only(actor, "the mapping form")
        with self.coordinator.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_CASE)
            return list(uow.forms.for_case(case_id))

    # -- therapy sessions -----------------------------------------------------------------
    def log_session(self, case_id: UUID, actor: Actor, *, held_on: date, minutes: int,
                    kind: str, summary: str | None = None) -> TherapySession:
        """A therapist on the team logs a session. Hours may pass the pilot's range (the
        therapist tailors them, 004:897, 998-1000); ``hours_used`` shows where they stand.
        A ``summary`` becomes an encrypted health document (kind and category
        ``session_summary``, id = the session's id), committed with the session.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied, InvalidInput, CaseErased."""
        if actor.role not in THERAPIST_ROLES | {SYSTEM_ROLE}:
            raise PermissionDenied("sessions are logged by the therapist", role=actor.role)
        if kind not in SESSION_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(SESSION_KINDS)}", field="kind")
        if isinstance(minutes, bool) or not isinstance(minutes, int) \
                or not 1 <= minutes <= MAX_SESSION_MINUTES:
            raise InvalidInput(f"minutes must be 1-{MAX_SESSION_MINUTES}", field="minutes")
        now = self.coordinator.clock.now()
        if held_on > now.date():
            raise InvalidInput("a session cannot be logged before it is held",
                               field="held_on")
        session = TherapySession(uuid.uuid4(), case_id, held_on, minutes, kind, actor.id, now)
        with self.coordinator.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.ADVANCE_CASE)
            if held_on < case.referred_at.date():
                raise InvalidInput("a session cannot be before the referral", field="held_on")
            uow.sessions.add(session)
            if summary is not None:
                self.coordinator.documents.add(
                    uow, case, actor, kind="session_summary", category="session_summary",
                    text=summary, now=now, document_id=session.id)
            uow.commit()
        return session

    def hours_used(self, case_id: UUID, actor: Actor) -> HoursUsed:
        """Therapy hours logged on the case against the pilot's range (e.g. Stovner 6-12).

        Raises: CaseNotFound, NotCaseMember, PermissionDenied."""
        self._health_only(actor, "therapy hours")
        with self.coordinator.uow() as uow:
            case = uow.cases.get(case_id)
            team.authorize(uow, actor, case, Permission.VIEW_CASE)
            sessions = list(uow.sessions.for_case(case_id))
            ref = case.workflow_ref
        rng = self.coordinator.workflows.get(*ref).definition.follow_up.therapy_hours
        minutes = sum(s.minutes for s in sessions)
        return HoursUsed(case_id, len(sessions), minutes, rng, _hours_status(minutes, rng))

    @staticmethod
    def _health_only(actor: Actor, what: str) -> None:
        if actor.role not in HEALTH_ROLES | {SYSTEM_ROLE}:
            raise PermissionDenied(f"{what} is health data for health personnel",
                                   role=actor.role)


def _items(values: object) -> list[object]:
    if not isinstance(values, list | tuple):
        raise InvalidInput("item answers must be a list of integers", field="items")
    return list(values)


def _measure_records(case_id: UUID, phase: str, start: StartMeasures, actor: Actor,
                     now: datetime) -> list[MeasureRecord]:
    out = []
    for instrument, items in sorted(start.scores.items()):
        s = m.score(instrument, items)
        out.append(MeasureRecord(uuid.uuid4(), case_id, instrument, phase, now, actor.id,
                                 actor.role, s.items, s.total, s.band))
    if start.work_status is not None:
        out.append(MeasureRecord(uuid.uuid4(), case_id, m.WORK_STATUS, phase, now, actor.id,
                                 actor.role, value=m.check_work_status(start.work_status)))
    return out


def _hours_status(minutes: int, rng: tuple[int, int] | None) -> str:
    if rng is None:
        return "no_range"
    if minutes < rng[0] * 60:
        return "below_range"
    return "within_range" if minutes <= rng[1] * 60 else "above_range"
