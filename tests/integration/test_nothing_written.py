"""A refused request writes nothing: every table's row count and the case row stay the same.

RELIABILITY.md §2 ("failed transitions leave no partial write and no lock") and §7 (bad
input leaves the row count of every table unchanged), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from coordinator.bootstrap import build
from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.errors import (
    CaseNotFound,
    CoordinatorError,
    GuardFailed,
    InvalidInput,
    MeetingNotFound,
    NotEligible,
    ReferrerNotAllowed,
    StaleVersion,
    TransitionNotAllowed,
    UnknownTrigger,
    UnknownWorkflow,
)
from coordinator.meetings import ScheduleMeeting
from coordinator.persistence.tables import cases, metadata
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from tests.unit.definitions_for_tests import ELIGIBLE, TOO_YOUNG, synthetic_registry

GP = Actor("gp-1", "fastlege")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    db: Engine = request.getfixturevalue({"sqlite": "sqlite_engine",
                                          "postgres": "pg_engine"}[request.param])
    return db


Snapshot = tuple[dict[str, int], dict[str, Any]]


def snapshot(engine: Engine, case_id: uuid.UUID) -> Snapshot:
    with engine.connect() as conn:
        counts = {t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
                  for t in metadata.sorted_tables}
        counts = {name: n for name, n in counts.items() if n}    # empty tables left out
        row = dict(conn.execute(select(cases).where(cases.c.id == case_id)).mappings().one())
    return counts, row


def grant(case_id: uuid.UUID, purpose: str = "share_kartlegging", **kw: Any) -> GrantConsent:
    return GrantConsent(case_id, GP, frozenset({purpose}), frozenset({"kartlegging"}),
                        frozenset({"nav"}), kw.pop("method", "digital"), "v1", **kw)


def refusals(c: Coordinator, case_id: uuid.UUID,
             clock: FakeClock) -> list[tuple[str, Callable[[], object], type[Exception]]]:
    def fire(trigger: str, args: dict[str, Any] | None = None,
             expected: int | None = None) -> Callable[[], object]:
        return lambda: c.fire(FireTrigger(case_id, trigger, GP, args or {}, expected))

    return [
        ("unknown trigger", fire("teleport"), UnknownTrigger),
        ("transition not allowed from intake", fire("close"), TransitionNotAllowed),
        ("failed guard", fire("decide", {"attendees": ["fastlege"]}), GuardFailed),
        ("blank reason", fire("withdraw", {"reason": " "}), InvalidInput),
        ("invalid argument", fire("decide", {"attendees": ["astronaut"]}), InvalidInput),
        ("unexpected argument", fire("decide", {"phase": "start"}), InvalidInput),
        ("missing argument", fire("record_outcome"), InvalidInput),
        ("stale expected version", fire("decide", {"attendees": ["bruker"]}, 1), StaleVersion),
        ("future expected version", fire("decide", {"attendees": ["bruker"]}, 9), StaleVersion),
        ("unknown case", lambda: c.fire(FireTrigger(uuid.uuid4(), "decide", GP)), CaseNotFound),
        ("ineligible person", lambda: c.open_case(OpenCase("synthetic", "fastlege", TOO_YOUNG,
                                                           GP)), NotEligible),
        ("referrer not allowed", lambda: c.open_case(OpenCase("synthetic", "self_referral",
                                                              ELIGIBLE, GP)), ReferrerNotAllowed),
        ("unknown pilot", lambda: c.open_case(OpenCase("atlantis", "fastlege", ELIGIBLE, GP)),
         UnknownWorkflow),
        ("unknown consent purpose", lambda: c.grant_consent(grant(case_id, "gossip")),
         InvalidInput),
        ("unknown consent method", lambda: c.grant_consent(grant(case_id, method="telepathy")),
         InvalidInput),
        ("consent that already expired", lambda: c.grant_consent(
            grant(case_id, valid_to=clock.now() - timedelta(days=1))), InvalidInput),
        ("consent for an unknown case", lambda: c.grant_consent(grant(uuid.uuid4())),
         CaseNotFound),
        ("meeting in the past", lambda: c.meetings.schedule(ScheduleMeeting(
            case_id, "intake", clock.now() - timedelta(hours=2),
            clock.now() - timedelta(hours=1), ("fastlege",), GP)), InvalidInput),
        ("meeting of an unknown kind", lambda: c.meetings.schedule(ScheduleMeeting(
            case_id, "party", clock.now() + timedelta(days=2),
            clock.now() + timedelta(days=2, hours=1), ("fastlege",), GP)), InvalidInput),
        ("unknown meeting", lambda: c.meetings.cancel(uuid.uuid4(), actor=GP),
         MeetingNotFound),
    ]


def test_every_refusal_leaves_every_table_and_the_case_unchanged(engine: Engine) -> None:
    clock = FakeClock()
    c = build(engine=engine, clock=clock, workflows=synthetic_registry())
    case_id = c.open_case(OpenCase("synthetic", "fastlege", ELIGIBLE, GP)).id
    c.fire(FireTrigger(case_id, "begin_intake", GP))
    c.fire(FireTrigger(case_id, "record_outcome", GP, {"phase": "start"}))
    c.grant_consent(grant(case_id))
    before = snapshot(engine, case_id)
    assert before[0] == {"cases": 1, "case_events": 3, "consents": 1, "case_members": 1,
                         "outbox": 2, "audit_events": 4, "audit_heads": 1}
    assert (before[1]["state"], before[1]["version"]) == ("intake", 3)
    for name, call, error in refusals(c, case_id, clock):
        clock.advance(minutes=1)
        with pytest.raises(error):
            call()
        assert snapshot(engine, case_id) == before, name
    # Nothing is left locked: a good request goes through at once.
    started = time.perf_counter()
    done = c.fire(FireTrigger(case_id, "decide", GP, {"attendees": ["bruker"]}, 3))
    assert time.perf_counter() - started < 5
    assert (done.state, done.version) == ("consent", 4)
    counts, row = snapshot(engine, case_id)
    assert counts == {"cases": 1, "case_events": 4, "consents": 1, "case_members": 1,
                      "outbox": 2, "audit_events": 5, "audit_heads": 1}
    assert row["version"] == 4


def test_a_unit_of_work_refused_after_its_flush_rolls_everything_back(engine: Engine) -> None:
    """The case row is already updated in the transaction when the commit is refused."""
    clock = FakeClock()
    c = build(engine=engine, clock=clock, workflows=synthetic_registry())
    case_id = c.open_case(OpenCase("synthetic", "fastlege", ELIGIBLE, GP)).id
    before = snapshot(engine, case_id)
    workflow = c.workflows.get("synthetic", 1)
    with c.uow() as uow:
        case = uow.cases.get(case_id)
        for trigger in ("begin_intake", "withdraw"):
            case.fire(trigger, by=GP, workflow=workflow, consents=frozenset(), args={},
                      now=clock.now())
        uow.consents.add(_record(case_id, clock))
        with pytest.raises(CoordinatorError, match="only once"):
            uow.commit()
    assert snapshot(engine, case_id) == before
    assert c.fire(FireTrigger(case_id, "begin_intake", GP, expected_version=1)).version == 2


def _record(case_id: uuid.UUID, clock: FakeClock) -> Any:
    from coordinator.consent.model import ConsentRecord

    return ConsentRecord(uuid.uuid4(), case_id, "grant", frozenset({"coordination"}),
                         frozenset({"kartlegging"}), frozenset({"nav"}), clock.now(), None,
                         "digital", "v1", clock.now(), GP.id, GP.role)


def test_refused_document_writes_leave_every_table_unchanged(engine: Engine) -> None:
    """Bad document input is refused before any key is made or any row written."""
    from coordinator.cases.model import SYSTEM
    from coordinator.errors import DocumentNotFound
    from coordinator.testing import InMemoryKeyProvider

    clock = FakeClock()
    c = build(engine=engine, clock=clock, workflows=synthetic_registry(),
              keys=InMemoryKeyProvider())
    case_id = c.open_case(OpenCase("synthetic", "fastlege", ELIGIBLE, GP)).id
    doc = c.documents.write(case_id, actor=GP, kind="note", category="kartlegging",
                            text="Første versjon")
    before = snapshot(engine, case_id)
    assert before[0]["documents"] == 1 and before[0]["data_keys"] == 1
    docs = c.documents
    cases: list[tuple[str, Callable[[], object], type[Exception]]] = [
        ("unknown kind", lambda: docs.write(case_id, actor=GP, kind="diary",
                                            category="kartlegging", text="x"), InvalidInput),
        ("a category of the other side", lambda: docs.write(
            case_id, actor=GP, kind="note", category="work_status", text="x"), InvalidInput),
        ("blank text", lambda: docs.write(case_id, actor=GP, kind="note",
                                          category="kartlegging", text="  "), InvalidInput),
        ("stale revision", lambda: docs.update(case_id, doc.id, actor=GP, text="y",
                                               expected_revision=7), StaleVersion),
        ("unknown document", lambda: docs.read(case_id, uuid.uuid4(), actor=GP),
         DocumentNotFound),
        ("share within the owner's side", lambda: docs.share(case_id, doc.id, actor=GP,
                                                             party="fastlege"), InvalidInput),
        ("erasure without a reason", lambda: docs.erase(case_id, actor=SYSTEM, reason=" "),
         InvalidInput),
    ]
    for name, call, error in cases:
        clock.advance(minutes=1)
        with pytest.raises(error):
            call()
        assert snapshot(engine, case_id) == before, name
