"""The transition's hot path on the real stores: what it sends, and what it locks.

The case, its team, its consents and its audit stream's head come in one statement, so
the commit sends no statement of its own to read the head: on SQLite it is the head, on
PostgreSQL the audit insert moves it only if it has not moved since (and otherwise locks,
reads and chains again). These tests pin the statements and show the chain stays whole
when a reader appends to the stream in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Engine, event

from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from tests.integration.test_repository_contract import GP, PERSON

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _engine(c: Coordinator) -> Engine:
    with c.uow() as uow:
        engine: Engine = uow.engine     # type: ignore[attr-defined]
    return engine


THERAPIST = Actor("t-1", "kognitiv_terapeut")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_transition_reads_its_audit_head_with_the_case(make_coordinator: object,
                                                         backend: str) -> None:
    """B1's transition (ringsaker ``record_outcome`` by a team member, under consent):
    one read, which brings the head; nothing else reads ``audit_heads``."""
    c: Coordinator = make_coordinator(backend)      # type: ignore[operator]
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP,
                                   team=(THERAPIST,))).id
    c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                 frozenset({"kartlegging"}), frozenset({"nav"}), "digital",
                                 "v1"))
    c.fire(FireTrigger(case_id, "record_outcome", THERAPIST, {"phase": "start"}))
    with statements(_engine(c)) as sent:
        c.fire(FireTrigger(case_id, "record_outcome", THERAPIST, {"phase": "end"}))
    reads = [s for s in sent if "FROM audit_heads" in s]
    assert len(reads) == 1 and "FROM cases" in reads[0] and sent[0] == reads[0], sent
    # SQLite: no CTE riders; its BEGIN IMMEDIATE goes to the driver, unseen by listeners
    # (that it takes the lock: test_repository_contract)
    expected = {"sqlite": 5, "postgres": 3}[backend]
    assert len(sent) == expected, sent
    assert c.verify_audit().ok


@pytest.mark.postgres
def test_loading_a_case_locks_nothing(make_coordinator: object, pg_database_url: str) -> None:
    """The head comes with the case unlocked: a second unit of work of the same thread on
    the same case cannot wait for the first."""
    c: Coordinator = make_coordinator("postgres")   # type: ignore[operator]
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id
    dsn = pg_database_url.replace("postgresql+psycopg://", "postgresql://")
    with c.uow() as uow, psycopg.connect(dsn, autocommit=True) as other:
        uow.cases.get(case_id)
        other.execute("SELECT 1 FROM audit_heads WHERE stream = %s FOR UPDATE NOWAIT",
                      (f"case:{case_id}",))
        other.execute("SELECT 1 FROM cases WHERE id = %s FOR UPDATE NOWAIT", (case_id,))


@pytest.mark.parametrize("backend", ["memory", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_a_head_moved_after_the_case_was_read_is_chained_on(
        make_coordinator: object, backend: str, clock: FakeClock) -> None:
    """A reader appends to the case's stream between the transition's load and its commit
    (SQLite cannot interleave: its writers are serialized). The transition still commits,
    chained after the reader's event, and the chain verifies."""
    c: Coordinator = make_coordinator(backend)      # type: ignore[operator]
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id
    with c.uow() as uow:
        case = uow.cases.get(case_id)
        c.view(case_id, actor=GP)                   # its own unit of work, committed
        case.fire("begin_intake", by=GP, workflow=c.workflows.get(*case.workflow_ref),
                  consents=frozenset(), args={}, now=clock.now())
        uow.commit()
    events = list(c.audit_extract(case_id=case_id))
    assert [e.kind for e in events][-2:] == ["case_viewed", "case_transitioned"]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    report = c.verify_audit(case_id=case_id)
    assert report.ok, report
    assert c.summary(case_id).state == "intake"
    assert [e.to_state for e in c.history(case_id).events] == ["referred", "intake"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_case_with_an_audit_stream_is_not_found(make_coordinator: object,
                                                          backend: str,
                                                          clock: FakeClock) -> None:
    """Audit streams outlive cases: the bundle brings the head of a missing case's
    stream, and the case is still not found."""
    from coordinator.audit.events import AuditEvent
    from coordinator.errors import CaseNotFound

    c: Coordinator = make_coordinator(backend)      # type: ignore[operator]
    missing = uuid.uuid4()
    with c.uow() as uow:
        uow.audit.append(AuditEvent("case_viewed", clock.now(), "gp-1", "fastlege",
                                    case_id=missing))
        uow.commit()
    with c.uow() as uow:
        assert uow.audit.heads(f"case:{missing}")          # the stream has a head
    with pytest.raises(CaseNotFound):
        c.fire(FireTrigger(missing, "begin_intake", Actor("gp-1", "fastlege")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_case_listed_then_fetched_in_one_unit_of_work_is_one_instance(
        make_coordinator: object, backend: str, clock: FakeClock) -> None:
    c: Coordinator = make_coordinator(backend)      # type: ignore[operator]
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id
    with c.uow() as uow:
        (listed,) = uow.cases.list()
        fetched = uow.cases.get(case_id)
        assert fetched is listed
        fetched.fire("begin_intake", by=GP, workflow=c.workflows.get(*fetched.workflow_ref),
                     consents=frozenset(), args={}, now=clock.now())
        uow.commit()
    assert (c.summary(case_id).state, c.summary(case_id).version) == ("intake", 2)
    assert c.verify_audit(case_id=case_id).ok
