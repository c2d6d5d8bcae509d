"""SQLAlchemy repositories and unit of work.

Cases are written by the ORM (version-checked UPDATE via ``version_id_col``) and loaded by
id with one Core statement, then attached to the session as loaded instances; their events
and consent records are read and written with Core statements on the session's connection
(the same transaction, without the ORM's per-statement overhead). The statements every
transition sends run below ``Connection.execute`` (``persistence.prepared``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from sqlalchemy import (
    Engine,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    inspect,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from coordinator.audit.events import stream_of
from coordinator.cases import auditing
from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.errors import CaseNotFound, ConcurrentUpdate, CoordinatorError
from coordinator.intake.model import (
    FormResponse,
    IdempotencyRecord,
    MeasureRecord,
    TherapySession,
)
from coordinator.persistence.audit_store import SqlAuditLog
from coordinator.persistence.documents import SqlDataKeyRepository, SqlDocumentRepository
from coordinator.persistence.mapping import start_mappers
from coordinator.persistence.prepared import prepared
from coordinator.persistence.reminders import SqlMeetingRepository, SqlOutboxRepository
from coordinator.persistence.tables import (
    audit_heads,
    case_events,
    case_forms,
    case_measures,
    case_members,
    cases,
    consents,
    idempotency_keys,
    therapy_sessions,
)


class SqlCaseRepository:
    def __init__(self, session: Session, members: SqlMemberRepository,
                 consents: SqlConsentRepository, audit: SqlAuditLog) -> None:
        self.session = session
        self.members = members
        self.consents = consents
        self.audit = audit
        self.seen: dict[UUID, Case] = {}

    def add(self, case: Case) -> None:
        self.session.add(case)
        self.seen[case.id] = case

    def get(self, case_id: UUID) -> Case:
        """The case with its team, its consent records and its audit stream's head, in one
        statement (every use case checks the team next, most the consents, and nearly all
        append to the case's audit stream), a UNION ALL of their rows (``_case_bundle``,
        run below ``Connection.execute``: ``persistence.prepared``). The head is read
        without a lock: on SQLite it is the head (``BEGIN IMMEDIATE`` serializes
        writers), on PostgreSQL the audit flush expects it and checks that in its insert
        (``SqlAuditLog.read``).

        The case is built from the row and attached to the session as a loaded instance
        (``make_transient_to_detached``): its flush is the same version-checked UPDATE
        as after an ORM query, without the ORM's loading machinery (half of this call)."""
        if case_id in self.seen:
            return self.seen[case_id]
        stream = stream_of(case_id)
        conn = self.session.connection()
        bundle = prepared(_case_bundle(), conn.dialect)
        rows = [dict(zip(bundle.keys, row, strict=True))
                for row in bundle.rows(conn, {"id": case_id, "stream": stream})]
        found = next((r for r in rows if r["part"] == "case"), None)
        if found is None:           # audit streams outlive cases: a head alone is no case
            raise CaseNotFound(case_id)
        listed = self.session.identity_map.get(identity_key(Case, case_id))
        if isinstance(listed, Case):        # already loaded by ``list`` in this session
            case = listed
        else:
            case = Case(**{k: found[k] for k in _CASE_COLUMNS})
            make_transient_to_detached(case)
            self.session.add(case)
        members, records, head = [], [], None
        for r in rows:
            if r["part"] == "member":
                members.append(Member(case.id, r["m_actor_id"], r["m_role"], r["m_added_at"],
                                      r["m_added_by"]))
            elif r["part"] == "consent":
                records.append(_consent({**{k: r[f"c_{k}"] for k in _CONSENT_COLUMNS},
                                         "case_id": case.id}))
            elif r["part"] == "head":
                head = (r["h_seq"], r["h_hash"])
        members.sort(key=lambda m: (m.added_at, m.actor_id))
        records.sort(key=lambda c: (c.recorded_at, str(c.id)))
        self.members.stored[case.id] = members
        self.consents.stored[case.id] = records
        self.audit.read(stream, head)
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


_CONSENT_COLUMNS = tuple(c.name for c in consents.c if c.name != "case_id")
_CASE_COLUMNS = tuple(c.name for c in cases.c)


@functools.cache
def _case_bundle() -> Any:
    """The case's row, its members', its consent records' and its audit head's, as one
    UNION ALL: ``part`` says which row is which, and each row carries only its part's
    columns (the others NULL), so nothing is decoded twice. Built once."""
    m, c, h = case_members.c, consents.c, audit_heads.c
    owner = bindparam("id", type_=cases.c.id.type)
    groups = {"case": ("", [cases.c[k] for k in _CASE_COLUMNS]),      # (prefix, columns)
              "member": ("m_", [m.actor_id, m.role, m.added_at, m.added_by]),
              "consent": ("c_", [c[k] for k in _CONSENT_COLUMNS]),
              "head": ("h_", [h.seq, h.hash])}

    def arm(part: str) -> Any:
        # The first arm's NULLs are typed: PostgreSQL resolves a UNION's column types arm
        # by arm from the left (two untyped NULLs would become text), and SQLAlchemy
        # takes the result types from the first arm. The other arms' NULLs are bare, to
        # keep the statement short (psycopg caches its conversion only up to 4 KiB).
        first = part == "case"
        columns: list[Any] = [literal(part).label("part")]
        for group, (prefix, cols) in groups.items():
            for col in cols:
                name = prefix + col.name
                columns.append(col.label(name) if group == part else
                               cast(null(), col.type).label(name) if first else
                               literal_column("NULL"))
        return select(*columns)

    return union_all(           # each arm found by its own index
        arm("case").where(cases.c.id == owner),
        arm("member").where(m.case_id == owner),
        arm("consent").where(c.case_id == owner),
        arm("head").where(h.stream == bindparam("stream")))



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

    def redact(self, case_id: UUID) -> int:
        return int(self.session.connection().execute(
            update(case_events).where(case_events.c.case_id == case_id)
            .values(reason=None, data={})).rowcount)


class SqlConsentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[ConsentRecord] = []
        self.stored: dict[UUID, list[ConsentRecord]] = {}   # read once per unit of work

    def add(self, record: ConsentRecord) -> None:
        self.pending.append(record)

    def for_case(self, case_id: UUID) -> Sequence[ConsentRecord]:
        if case_id not in self.stored:
            rows = self.session.connection().execute(
                select(consents).where(consents.c.case_id == case_id)
                .order_by(consents.c.recorded_at, consents.c.id)).mappings()
            self.stored[case_id] = [_consent(r) for r in rows]
        return self.stored[case_id] + [r for r in self.pending if r.case_id == case_id]

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
        self.stored: dict[UUID, list[Member]] = {}   # read once per unit of work

    def add(self, member: Member) -> None:
        self.pending.append(member)

    def for_case(self, case_id: UUID) -> Sequence[Member]:
        if case_id not in self.stored:
            m = case_members.c
            rows = self.session.connection().execute(
                select(case_members).where(m.case_id == case_id)
                .order_by(m.added_at, m.actor_id)).mappings()
            self.stored[case_id] = [
                Member(r["case_id"], r["actor_id"], r["role"], r["added_at"], r["added_by"])
                for r in rows]
        return self.stored[case_id] + [r for r in self.pending if r.case_id == case_id]

    def flush(self) -> None:
        if self.pending:
            self.session.connection().execute(insert(case_members), [
                {"case_id": r.case_id, "actor_id": r.actor_id, "role": r.role,
                 "added_at": r.added_at, "added_by": r.added_by} for r in self.pending])
            self.pending.clear()


class SqlIdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[tuple[str, str, UUID | None, dict[str, Any] | None, Any]] = []

    def get(self, source: str, key: str) -> IdempotencyRecord | None:
        t = idempotency_keys.c
        r = self.session.connection().execute(select(idempotency_keys).where(
            t.source == source, t.key == key)).mappings().first()
        if r is None:
            return None
        return IdempotencyRecord(r["source"], r["key"], r["request_hash"], r["state"],
                                 r["created_at"], r["case_id"], r["response"] or {},
                                 r["completed_at"])

    def claim(self, record: IdempotencyRecord) -> bool:
        try:
            with self.session.begin_nested():       # a savepoint: PG survives the conflict
                self.session.connection().execute(insert(idempotency_keys).values(
                    source=record.source, key=record.key, request_hash=record.request_hash,
                    state=record.state, created_at=record.created_at))
        except IntegrityError:
            return False
        return True

    def complete(self, source: str, key: str, case_id: UUID, response: dict[str, object],
                 at: Any) -> None:
        self.pending.append((source, key, case_id, dict(response), at))

    def release(self, source: str, key: str) -> None:
        self.pending.append((source, key, None, None, None))

    def flush(self) -> None:
        if not self.pending:
            return
        t = idempotency_keys.c
        conn = self.session.connection()
        for source, key, case_id, response, at in self.pending:
            where = (t.source == source, t.key == key, t.state == "processing")
            if case_id is None:
                conn.execute(delete(idempotency_keys).where(*where))
            else:
                conn.execute(update(idempotency_keys).where(*where).values(
                    state="done", case_id=case_id, response=response, completed_at=at))
        self.pending.clear()


class _RowRepository:
    """Append-only rows of one table keyed by case, written on commit."""

    table: Any

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[Any] = []

    def add(self, item: Any) -> None:
        self.pending.append(item)

    def _rows(self, case_id: UUID, order: Any) -> Any:
        return self.session.connection().execute(
            select(self.table).where(self.table.c.case_id == case_id)
            .order_by(order, self.table.c.id)).mappings()

    def _pending_for(self, case_id: UUID) -> list[Any]:
        return [r for r in self.pending if r.case_id == case_id]

    def erase(self, case_id: UUID) -> int:
        """Delete the case's rows now (in the transaction) and drop its pending ones."""
        self.pending = [r for r in self.pending if r.case_id != case_id]
        return int(self.session.connection().execute(
            delete(self.table).where(self.table.c.case_id == case_id)).rowcount)

    def flush(self) -> None:
        if self.pending:
            self.session.connection().execute(insert(self.table),
                                              [self._row(r) for r in self.pending])
            self.pending.clear()

    def _row(self, item: Any) -> dict[str, Any]:
        return dict(item.__dict__)


class SqlFormRepository(_RowRepository):
    table = case_forms

    def for_case(self, case_id: UUID) -> Sequence[FormResponse]:
        return [FormResponse(r["id"], r["case_id"], r["questionnaire"], r["answers"],
                             r["received_at"], r["recorded_by"], r["recorded_role"])
                for r in self._rows(case_id, case_forms.c.received_at)] + \
            self._pending_for(case_id)

    def _row(self, item: Any) -> dict[str, Any]:
        return {**item.__dict__, "answers": dict(item.answers)}


class SqlMeasureRepository(_RowRepository):
    table = case_measures

    def for_case(self, case_id: UUID) -> Sequence[MeasureRecord]:
        return [MeasureRecord(r["id"], r["case_id"], r["instrument"], r["phase"],
                              r["recorded_at"], r["recorded_by"], r["recorded_role"],
                              tuple(r["items"]), r["total"], r["band"], r["value"])
                for r in self._rows(case_id, case_measures.c.recorded_at)] + \
            self._pending_for(case_id)

    def _row(self, item: Any) -> dict[str, Any]:
        return {**item.__dict__, "items": list(item.items)}


class SqlSessionRepository(_RowRepository):
    table = therapy_sessions

    def for_case(self, case_id: UUID) -> Sequence[TherapySession]:
        return [TherapySession(r["id"], r["case_id"], r["held_on"], r["minutes"], r["kind"],
                               r["therapist_id"], r["recorded_at"])
                for r in self._rows(case_id, therapy_sessions.c.held_on)] + \
            self._pending_for(case_id)
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
        self.members = SqlMemberRepository(self.session)
        self.consents = SqlConsentRepository(self.session)
        self.audit = SqlAuditLog(self.session)
        self.cases = SqlCaseRepository(self.session, self.members, self.consents, self.audit)
        self.events = SqlEventRepository(self.session)
        self.idempotency = SqlIdempotencyRepository(self.session)
        self.forms = SqlFormRepository(self.session)
        self.measures = SqlMeasureRepository(self.session)
        self.sessions = SqlSessionRepository(self.session)
        self.meetings = SqlMeetingRepository(self.session)
        self.outbox = SqlOutboxRepository(self.session)
        self.documents = SqlDocumentRepository(self.session)     # written at once, in the
        self.data_keys = SqlDataKeyRepository(self.session)      # transaction
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        touched = [c for c in self.cases.seen.values() if c.events]
        for case in touched:
            # Every event is a new version, even when no column changed (a member added
            # within the same clock tick as the last change): force the versioned UPDATE.
            if inspect(case).persistent:
                flag_modified(case, "updated_at")
        try:
            self.session.flush()          # version-checked UPDATE / INSERT of cases
            self._audit_changes(touched)        # reads the pending consents: before flush
            self._write_events(touched)         # rides in the audit insert on PostgreSQL
            for repo in (self.consents, self.members, self.audit, self.forms, self.measures,
                         self.sessions, self.idempotency, self.meetings, self.outbox):
                repo.flush()
            self.session.commit()
        except StaleDataError as exc:
            self.session.rollback()
            raise ConcurrentUpdate() from exc
        except IntegrityError as exc:
            self.session.rollback()
            if any(t in str(exc.orig) for t in ("case_events", "case_members", "case_measures",
                                                "audit_heads", "audit_events",
                                                "audit_checkpoints")):
                raise ConcurrentUpdate() from exc
            raise
        for case in touched:
            case.events.clear()
        self.audit.heads_read.clear()   # the next transaction reads them again

    def _write_events(self, touched: list[Case]) -> None:
        rows = []
        for case in touched:
            if len(case.events) != 1:
                raise CoordinatorError("a unit of work may change a case only once")
            rows.append(_event_row(case.events[0], case.version))
        if rows:
            self.audit.ride(case_events, rows)
    def _audit_changes(self, touched: list[Case]) -> None:
        """Every case event and consent record becomes a chained audit event."""
        for case in touched:
            self.audit.append(auditing.for_case_event(case.events[0], case.subject_id))
        subjects = {c.id: c.subject_id for c in self.cases.seen.values()}
        for record in self.consents.pending:
            self.audit.append(auditing.for_consent(record, subjects.get(record.case_id)))


