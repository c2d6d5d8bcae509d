"""Use cases around case data: read, disclose, break the glass, and the logs that show
it (the person's access log and the consent logs). Pure functions over a unit of work;
``service.Coordinator`` wraps them (one commit each).

Every granted read or disclosure commits its audit event (with the consent it rests on)
before the caller may hand out data; every refusal raises, and ``Coordinator`` then
audits the denial in a fresh unit of work, so a refused request writes no case data.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from coordinator.access.policy import Permission
from coordinator.audit import events as kinds
from coordinator.audit.events import SealedEvent
from coordinator.cases import auditing, gate, team
from coordinator.cases.commands import AccessLogEntry, DataAccess, GrantConsent, WithdrawConsent
from coordinator.cases.model import Actor, Case
from coordinator.consent import forms
from coordinator.consent.model import (
    CATEGORIES,
    CHANNELS,
    GIVERS,
    METHODS,
    PARTIES,
    PURPOSES,
    ConsentRecord,
)
from coordinator.errors import (
    EmergencyAccessRefused,
    InvalidInput,
)
from coordinator.ports import UnitOfWork

ACTIONS = {kinds.DATA_READ: "read", kinds.DATA_SHARED: "shared",
           kinds.EMERGENCY_ACCESS: "emergency", kinds.CASE_VIEWED: "viewed"}


def check_scope(purpose: str, category: str, audience: str | None) -> None:
    for name, given, known in (("purpose", purpose, PURPOSES), ("category", category,
                                                               CATEGORIES)):
        if given not in known:
            raise InvalidInput(f"unknown {name} {given!r}", field=name)
    if audience is not None and audience not in PARTIES:
        raise InvalidInput(f"unknown party {audience!r}", field="audience")


def access_data(uow: UnitOfWork, actor: Actor, case_id: UUID, *, action: str, purpose: str,
                category: str, audience: str | None, now: datetime) -> DataAccess:
    """Raises: InvalidInput, CaseNotFound, NotCaseMember, PermissionDenied, ConsentRequired."""
    check_scope(purpose, category, audience)
    case = uow.cases.get(case_id)
    rel = team.authorize(uow, actor, case, Permission.VIEW_METADATA)
    verdict = gate.enforce(actor, rel, action=action, purpose=purpose, category=category,
                           audience=audience, consents=uow.consents.for_case(case_id),
                           now=now)
    kind = kinds.DATA_READ if action == gate.READ else kinds.DATA_SHARED
    target = audience if action == gate.SHARE else None
    uow.audit.append(auditing.access(
        kind, actor, now, case_id=case_id, person_key=case.subject_id, purpose=purpose,
        category=category, audience=target, consent_id=verdict.consent_id,
        data={"basis": verdict.basis}))
    uow.commit()
    return DataAccess(case_id, category, purpose, target or actor.role, verdict.basis,
                      verdict.consent_id, now)


def emergency(uow: UnitOfWork, actor: Actor, case_id: UUID, *, category: str, reason: str,
              now: datetime) -> DataAccess:
    """Break the glass: health roles only, with a reason; flagged for review.

    Raises: EmergencyAccessRefused, InvalidInput, CaseNotFound."""
    if not gate.may_break_glass(actor):
        raise EmergencyAccessRefused(f"{actor.role} has no emergency access",
                                     permission="emergency_access", role=actor.role)
    check_scope("coordination", category, None)
    if not reason.strip() or len(reason) > 500:
        raise InvalidInput("emergency access needs a reason (at most 500 characters)",
                           field="reason")
    case = uow.cases.get(case_id)
    uow.audit.append(auditing.access(
        kinds.EMERGENCY_ACCESS, actor, now, case_id=case_id, person_key=case.subject_id,
        purpose="coordination", category=category, outcome="emergency",
        data={"basis": "emergency", "reason": reason.strip(), "review": "pending"}))
    uow.commit()
    return DataAccess(case_id, category, "coordination", actor.role, "emergency", None, now)


def review_emergency(uow: UnitOfWork, actor: Actor, case_id: UUID, seq: int, *,
                     verdict: str, now: datetime) -> None:
    """An auditor's review of one emergency access. Raises: InvalidInput, CaseNotFound."""
    if verdict not in ("justified", "unjustified"):
        raise InvalidInput("verdict must be justified or unjustified", field="verdict")
    case = uow.cases.get(case_id)
    team.authorize(uow, actor, case, Permission.VIEW_ACCESS_LOG)
    flagged = [e for e in uow.audit.query(case_id=case_id, kinds={kinds.EMERGENCY_ACCESS})
               if e.seq == seq]
    if not flagged:
        raise InvalidInput(f"no emergency access with seq {seq} on this case", field="seq")
    uow.audit.append(auditing.access(kinds.EMERGENCY_REVIEWED, actor, now, case_id=case_id,
                                     person_key=case.subject_id,
                                     data={"reviews": seq, "verdict": verdict}))
    uow.commit()


def pending_reviews(uow: UnitOfWork, since: datetime | None = None) -> list[SealedEvent]:
    flagged = uow.audit.query(kinds={kinds.EMERGENCY_ACCESS}, since=since)
    reviewed = {(e.stream, e.data.get("reviews"))
                for e in uow.audit.query(kinds={kinds.EMERGENCY_REVIEWED}, since=since)}
    return [e for e in flagged if (e.stream, e.seq) not in reviewed]


def access_log(uow: UnitOfWork, actor: Actor, case: Case, now: datetime
               ) -> list[AccessLogEntry]:
    """Who read, received or viewed the case's data, when, for what and on which consent.
    The person's own reads are left out. The read of the log is itself audited."""
    rows = uow.audit.query(case_id=case.id, kinds=ACTIONS)
    entries = [AccessLogEntry(e.occurred_at, e.actor_id, e.actor_role, e.actor_org,
                              ACTIONS[e.kind], e.purpose, e.category, e.audience, e.consent_id,
                              e.data.get("basis"), _categories(e))
               for e in rows if not (e.actor_role == "bruker" and e.actor_id == case.subject_id)]
    log_read(uow, actor, case, "access_log", now)
    return entries


def _categories(e: SealedEvent) -> tuple[str, ...]:
    """Every category an access covered: a case page or history read lists several."""
    listed = e.data.get("categories")
    if isinstance(listed, list):
        return tuple(str(c) for c in listed)
    return (e.category,) if e.category else ()


def log_read(uow: UnitOfWork, actor: Actor, case: Case, what: str, now: datetime,
             withheld: list[str] | None = None) -> None:
    data: dict[str, object] = {"log": what, **({"withheld": withheld} if withheld else {})}
    uow.audit.append(auditing.access(kinds.LOG_READ, actor, now, case_id=case.id,
                                     person_key=case.subject_id, data=data))
    uow.commit()


def consent_record(case: Case, cmd: GrantConsent | WithdrawConsent, now: datetime
                   ) -> ConsentRecord:
    """A validated grant or withdrawal record. Raises: InvalidInput."""
    for name, given, known in (("purpose", cmd.purposes, PURPOSES),
                               ("category", cmd.categories, CATEGORIES),
                               ("party", cmd.parties, PARTIES)):
        if not given or given - known:
            raise InvalidInput(f"unknown or missing {name}: {sorted(given - known)}",
                               field=name)
    if cmd.method not in METHODS:
        raise InvalidInput(f"unknown consent method {cmd.method!r}", field="method")
    if cmd.given_by not in GIVERS or (cmd.given_by == "guardian") != bool(cmd.guardian_ref):
        raise InvalidInput("given_by is person, or guardian with a guardian_ref",
                           field="given_by")
    if isinstance(cmd, GrantConsent):
        return _grant(case, cmd, now)
    if cmd.channel is not None and cmd.channel not in CHANNELS:
        raise InvalidInput(f"unknown withdrawal channel {cmd.channel!r}", field="channel")
    return ConsentRecord(uuid.uuid4(), case.id, "withdrawal", cmd.purposes, cmd.categories,
                         cmd.parties, now, None, cmd.method, "", now, cmd.actor.id,
                         cmd.actor.role, pilot=case.pilot, given_by=cmd.given_by,
                         guardian_ref=cmd.guardian_ref, channel=cmd.channel or "in_person",
                         recorded_org=cmd.actor.org)


def _grant(case: Case, cmd: GrantConsent, now: datetime) -> ConsentRecord:
    valid_from = cmd.valid_from or now
    if cmd.valid_to is not None and cmd.valid_to <= max(now, valid_from):
        raise InvalidInput("valid_to must be in the future", field="valid_to")
    if cmd.method == "verbal_witnessed" and not cmd.witness_ref:
        raise InvalidInput("a verbal consent needs a witness_ref", field="witness_ref")
    digest = ""
    known = forms.forms_for(case.pilot)
    if known:                   # pilots without registered forms accept any version
        form = forms.form(case.pilot, cmd.form_version)
        if form is None:
            raise InvalidInput(f"{case.pilot} has no consent form {cmd.form_version!r}; "
                               f"forms: {', '.join(f.version for f in known)}",
                               field="form_version")
        outside = [sorted(g - f) for g, f in ((cmd.purposes, form.purposes),
                                              (cmd.categories, form.categories),
                                              (cmd.parties, form.parties)) if g - f]
        if outside or cmd.method not in form.methods:
            raise InvalidInput(f"form {cmd.form_version} does not cover {outside or cmd.method}",
                               field="form_version")
        digest = form.digest
    elif not cmd.form_version.strip():
        raise InvalidInput("a consent needs its form version", field="form_version")
    return ConsentRecord(uuid.uuid4(), case.id, "grant", cmd.purposes, cmd.categories,
                         cmd.parties, valid_from, cmd.valid_to, cmd.method, cmd.form_version,
                         now, cmd.actor.id, cmd.actor.role, pilot=case.pilot,
                         given_by=cmd.given_by, guardian_ref=cmd.guardian_ref,
                         witness_ref=cmd.witness_ref, document_ref=cmd.document_ref,
                         form_digest=digest, recorded_org=cmd.actor.org)


def consent_log(uow: UnitOfWork, actor: Actor, case: Case, now: datetime
                ) -> Sequence[ConsentRecord]:
    records = uow.consents.for_case(case.id)
    log_read(uow, actor, case, "consent_log", now)
    return records
