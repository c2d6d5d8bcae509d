"""SQLAlchemy repositories and unit of work.

Cases go through the ORM (version-checked UPDATE via ``version_id_col``); their events and
consent records are read and written with Core statements on the session's connection (the
same transaction, without the ORM's per-statement overhead).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from sqlalchemy import Engine, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from coordinator.cases import auditing
from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.errors import CaseNotFound, ConcurrentUpdate, CoordinatorError
from coordinator.persistence.audit_store import SqlAuditLog
from coordinator.persistence.mapping import start_mappers
from coordinator.persistence.tables import case_events, case_members, cases, consents


class SqlCaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.seen: dict[UUID, Case] = {}

    def add(self, case: Case) -> None:
        self.session.add(case)
        self.seen[case.id] = case

    def get(self, case_id: UUID) -> Case:
        case = self.session.get(Case, case_id)
        if case is None:
            raise CaseNotFound(case_id)
        self.seen[case.id] = case
        return case

    def list(self, *, pilot: str | None = None, state: str | None = None,
             workflow_version: int | None = None, after: UUID | None = None,
             limit: int = 50, member: tuple[str, str] | None = None,
             subject: str | None = None) -> Sequence[Case]:
        c = cases.c
        q = select(Case).order_by(c.id).limit(limit)
        if pilot is not None:
            q = q.where(c.pilot == pilot)
        if state is not None:
            q = q.where(c.state == state)
        if workflow_version is not None:
            q = q.where(c.workflow_version == workflow_version)
        if after is not None:
            q = q.where(c.id > after)
        if subject is not None:
            q = q.where(c.subject_id == subject)
        if member is not None:
            m = case_members.c
            q = q.where(exists().where(m.case_id == c.id, m.actor_id == member[0],
                                       m.role == member[1]))
        return list(self.session.scalars(q))

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(Case)) or 0)


class SqlEventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def history(self, case_id: UUID) -> Sequence[CaseEvent]:
        rows = self.session.connection().execute(
            select(case_events).where(case_events.c.case_id == case_id)
            .order_by(case_events.c.seq)).mappings()
        return [CaseEvent(r["case_id"], r["kind"], r["occurred_at"], r["actor_id"],
                          r["actor_role"], r["from_state"], r["to_state"], r["trigger"],
                          r["reason"], r["workflow_key"], r["workflow_version"], r["data"],
                          r["seq"]) for r in rows]


class SqlConsentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[ConsentRecord] = []

    def add(self, record: ConsentRecord) -> None:
        self.pending.append(record)

    def for_case(self, case_id: UUID) -> Sequence[ConsentRecord]:
        rows = self.session.connection().execute(
            select(consents).where(consents.c.case_id == case_id)
            .order_by(consents.c.recorded_at, consents.c.id)).mappings()
        return [_consent(r) for r in rows] + [r for r in self.pending if r.case_id == case_id]

    def for_pilot(self, pilot: str, *, since: datetime | None = None,
                  until: datetime | None = None, limit: int = 1000) -> Sequence[ConsentRecord]:
        c = consents.c
        q = select(consents).where(c.pilot == pilot).order_by(c.recorded_at, c.id).limit(limit)
        if since is not None:
            q = q.where(c.recorded_at >= since)
        if until is not None:
            q = q.where(c.recorded_at < until)
        return [_consent(r) for r in self.session.connection().execute(q).mappings()]

    def flush(self) -> None:
        if self.pending:
            self.session.connection().execute(insert(consents),
                                              [_consent_row(r) for r in self.pending])
            self.pending.clear()


class SqlMemberRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[Member] = []

    def add(self, member: Member) -> None:
        self.pending.append(member)

    def for_case(self, case_id: UUID) -> Sequence[Member]:
        m = case_members.c
        rows = self.session.connection().execute(
            select(case_members).where(m.case_id == case_id)
            .order_by(m.added_at, m.actor_id)).mappings()
        return [Member(r["case_id"], r["actor_id"], r["role"], r["added_at"], r["added_by"])
                for r in rows] + [r for r in self.pending if r.case_id == case_id]

    def flush(self) -> None:
        if self.pending:
            self.session.connection().execute(insert(case_members), [
                {"case_id": r.case_id, "actor_id": r.actor_id, "role": r.role,
                 "added_at": r.added_at, "added_by": r.added_by} for r in self.pending])
            self.pending.clear()


_CONSENT_EXTRA = ("pilot", "given_by", "guardian_ref", "witness_ref", "document_ref",
                  "channel", "form_digest", "recorded_org")


def _consent(r: Any) -> ConsentRecord:
    extra = {k: r[k] for k in _CONSENT_EXTRA if r[k] is not None}
    return ConsentRecord(
        r["id"], r["case_id"], r["kind"], frozenset(r["purposes"]),
        frozenset(r["categories"]), frozenset(r["parties"]), r["valid_from"], r["valid_to"],
        r["method"], r["form_version"], r["recorded_at"], r["recorded_by"],
        r["recorded_role"], **extra)


def _consent_row(r: ConsentRecord) -> dict[str, Any]:
    return {"id": r.id, "case_id": r.case_id, "kind": r.kind,
            "purposes": sorted(r.purposes), "categories": sorted(r.categories),
            "parties": sorted(r.parties), "valid_from": r.valid_from, "valid_to": r.valid_to,
            "method": r.method, "form_version": r.form_version, "recorded_at": r.recorded_at,
            "recorded_by": r.recorded_by, "recorded_role": r.recorded_role,
            **{k: getattr(r, k) for k in _CONSENT_EXTRA}}


def _event_row(e: CaseEvent, seq: int) -> dict[str, Any]:
    return {"case_id": e.case_id, "seq": seq, "kind": e.kind, "occurred_at": e.occurred_at,
            "actor_id": e.actor_id, "actor_role": e.actor_role, "from_state": e.from_state,
            "to_state": e.to_state, "trigger": e.trigger, "reason": e.reason,
            "workflow_key": e.workflow_key, "workflow_version": e.workflow_version,
            "data": e.data}


class SqlUnitOfWork:
    """One Session, one transaction. Leaving the ``with`` block without commit rolls back."""

    def __init__(self, engine: Engine) -> None:
        start_mappers()
        self.engine = engine

    def __enter__(self) -> Self:
        self.session = Session(self.engine, expire_on_commit=False, autoflush=False)
        self.cases = SqlCaseRepository(self.session)
        self.events = SqlEventRepository(self.session)
        self.consents = SqlConsentRepository(self.session)
        self.members = SqlMemberRepository(self.session)
        self.audit = SqlAuditLog(self.session)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        touched = [c for c in self.cases.seen.values() if c.events]
        try:
            self.session.flush()          # version-checked UPDATE / INSERT of cases
            rows = []
            for case in touched:
                if len(case.events) != 1:
                    raise CoordinatorError("a unit of work may change a case only once")
                rows.append(_event_row(case.events[0], case.version))
            if rows:
                self.session.connection().execute(insert(case_events), rows)
            self._audit_changes(touched)
            self.consents.flush()
            self.members.flush()
            self.audit.flush()
            self.session.commit()
        except StaleDataError as exc:
            self.session.rollback()
            raise ConcurrentUpdate() from exc
        except IntegrityError as exc:
            self.session.rollback()
            if any(t in str(exc.orig) for t in ("case_events", "case_members", "audit_heads",
                                                "audit_events", "audit_checkpoints")):
                raise ConcurrentUpdate() from exc
            raise
        for case in touched:
            case.events.clear()

    def _audit_changes(self, touched: list[Case]) -> None:
        """Every case event and consent record becomes a chained audit event."""
        for case in touched:
            self.audit.append(auditing.for_case_event(case.events[0], case.subject_id))
        subjects = {c.id: c.subject_id for c in self.cases.seen.values()}
        for record in self.consents.pending:
            self.audit.append(auditing.for_consent(record, subjects.get(record.case_id)))


