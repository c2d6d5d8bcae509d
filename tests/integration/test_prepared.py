"""``persistence.prepared``: the hot statements run on the DBAPI cursor store and read
exactly what ``Connection.execute`` stores and reads, and fail the same way.

Each write goes once through Core and once through ``prepared`` into the real migrated
tables; the two rows, read back raw through the driver (no SQLAlchemy type processing),
must be equal but for their keys.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from coordinator.audit.events import stream_of
from coordinator.cases.commands import GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.persistence.audit_store import _EVENT_COLUMNS, _sqlite_move_heads
from coordinator.persistence.prepared import Prepared, insert_into, prepared
from coordinator.persistence.tables import audit_events, audit_heads, case_events
from coordinator.persistence.unit_of_work import _case_bundle
from coordinator.service import Coordinator
from tests.integration.test_repository_contract import GP, PERSON
from tests.integration.test_transition_path import _engine

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
AT = datetime(2027, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _raw(conn: Connection, table: Table, **where: Any) -> dict[str, Any]:
    """The row as the driver returns it, without SQLAlchemy's result processing."""
    cursor = conn.connection.driver_connection.cursor()    # type: ignore[union-attr]
    mark = "?" if conn.dialect.positional else "%s"
    cursor.execute(f"SELECT * FROM {table.name} WHERE "
                   + " AND ".join(f"{k} = {mark}" for k in where), tuple(where.values()))
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0], strict=True))


def _two_cases(c: Coordinator) -> tuple[uuid.UUID, uuid.UUID]:
    first, second = (c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id
                     for _ in range(2))
    return first, second


def _event(case_id: uuid.UUID) -> dict[str, Any]:
    return {"case_id": case_id, "seq": 100, "kind": "transitioned", "occurred_at": AT,
            "actor_id": "t-1", "actor_role": "kognitiv_terapeut", "from_state": None,
            "to_state": "oppfolging", "trigger": "record_outcome",
            "reason": "Første måling – «æøå»", "workflow_key": "ringsaker",
            "workflow_version": 1,
            "data": {"phase": "start", "nested": [1, 2.5, None, {"ø": True}]}}


def _audit(stream: str) -> dict[str, Any]:
    return {"stream": stream, "seq": 1, "occurred_at": AT + timedelta(hours=5),
            "kind": "case_transitioned", "case_id": uuid.uuid4(), "person_key": "pk-1",
            "actor_id": "t-1", "actor_role": "kognitiv_terapeut", "actor_org": None,
            "purpose": "coordination", "category": "kartlegging", "audience": "nav",
            "consent_id": uuid.uuid4(), "outcome": "allowed", "body": '{"å":"b"}',
            "prev_hash": "0" * 64, "hash": "f" * 64}


@pytest.mark.parametrize("backend", BACKENDS)
def test_inserts_store_what_core_stores(make_coordinator: Any, backend: str) -> None:
    c: Coordinator = make_coordinator(backend)
    first, second = _two_cases(c)
    with _engine(c).begin() as conn:
        core, fast = _event(first), _event(second)
        conn.execute(insert(case_events), core)
        prepared(insert_into(case_events, tuple(fast)), conn.dialect).execute(conn, [fast])
        stored = [_raw(conn, case_events, case_id=_key(conn, case_id), seq=100)
                  for case_id in (first, second)]
        for row in stored:
            row.pop("id"), row.pop("case_id")
        assert stored[0] == stored[1]

        core_a, fast_a = _audit("s-core"), _audit("s-fast")
        fast_a["case_id"], fast_a["consent_id"] = core_a["case_id"], core_a["consent_id"]
        conn.execute(insert(audit_events), core_a)
        prepared(insert_into(audit_events, _EVENT_COLUMNS), conn.dialect).execute(
            conn, [fast_a])
        a, b = (_raw(conn, audit_events, stream=s) for s in ("s-core", "s-fast"))
        for row in (a, b):
            row.pop("id"), row.pop("stream")
        assert a == b


def _key(conn: Connection, case_id: uuid.UUID) -> Any:
    """``case_id`` as the driver stores it (hex on SQLite, a UUID on PostgreSQL)."""
    process = case_events.c.case_id.type.dialect_impl(conn.dialect).bind_processor(
        conn.dialect)
    return process(case_id) if process else case_id


def test_the_heads_upsert_inserts_then_moves(sqlite_engine: Engine) -> None:
    """SQLite's heads upsert, one row and several (PostgreSQL moves heads inside the
    audit insert: test_transition_path)."""
    with sqlite_engine.begin() as conn:
        upsert = prepared(_sqlite_move_heads(), conn.dialect)
        upsert.execute(conn, [{"stream": "s", "seq": 1, "hash": "a" * 64}])
        upsert.execute(conn, [{"stream": "s", "seq": 2, "hash": "b" * 64},
                              {"stream": "t", "seq": 1, "hash": "c" * 64}])
        rows = conn.execute(select(audit_heads).order_by(audit_heads.c.stream)).all()
    assert [tuple(r) for r in rows] == [("s", 2, "b" * 64), ("t", 1, "c" * 64)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_case_bundle_reads_what_core_reads(make_coordinator: Any, backend: str) -> None:
    c: Coordinator = make_coordinator(backend)
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP,
                                   team=(Actor("t-1", "kognitiv_terapeut"),))).id
    c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                 frozenset({"kartlegging", "mestringsplan"}),
                                 frozenset({"nav"}), "digital", "v1"))
    params = {"id": case_id, "stream": stream_of(case_id)}
    with _engine(c).connect() as conn:
        core = [dict(r._mapping) for r in conn.execute(_case_bundle(), params)]
        bundle = prepared(_case_bundle(), conn.dialect)
        fast = [dict(zip(bundle.keys, r, strict=True)) for r in bundle.rows(conn, params)]
        again = [dict(zip(bundle.keys, r, strict=True)) for r in bundle.rows(conn, params)]
    assert sorted(r["part"] for r in core) == ["case", "consent", "head", "member", "member"]
    key = lambda r: str(r["part"])     # noqa: E731
    assert sorted(fast, key=key) == sorted(core, key=key) == sorted(again, key=key)
    (case,) = (r for r in fast if r["part"] == "case")
    assert isinstance(case["referred_at"], datetime) and case["referred_at"].tzinfo
    assert case["profile_data"] and isinstance(case["profile_data"], dict)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_constraint_violation_is_sqlalchemys_integrity_error(make_coordinator: Any,
                                                               backend: str) -> None:
    """The unit of work turns SQLAlchemy's IntegrityError into ConcurrentUpdate (a lost
    race on a unique key): a prepared insert must raise the same error, and write
    nothing."""
    c: Coordinator = make_coordinator(backend)
    first, _ = _two_cases(c)
    engine = _engine(c)
    with engine.begin() as conn:
        prepared(insert_into(case_events, tuple(_event(first))), conn.dialect).execute(
            conn, [_event(first)])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        prepared(insert_into(case_events, tuple(_event(first))), conn.dialect).execute(
            conn, [{**_event(first), "seq": 101}, _event(first)])
    with engine.connect() as conn:
        seqs = conn.execute(select(case_events.c.seq).where(
            case_events.c.case_id == first, case_events.c.seq >= 100)).scalars().all()
    assert seqs == [100]


def test_statements_rendered_at_execution_are_refused(sqlite_engine: Engine) -> None:
    q = select(case_events.c.id).where(case_events.c.seq.in_(bindparam("s", expanding=True)))
    with pytest.raises(ValueError, match="plain named parameters"):
        Prepared(q, sqlite_engine.dialect)


@pytest.mark.postgres
def test_a_dropped_connection_is_invalidated_and_the_next_request_works(
        pg_database_url: str, clock: Any) -> None:
    """A prepared statement on a connection the server has dropped raises SQLAlchemy's
    error marked ``connection_invalidated`` and invalidates the connection, as
    ``Connection.execute`` would; the pool then hands out a working one."""
    import psycopg
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from coordinator.bootstrap import build
    from coordinator.persistence.database import make_engine
    from coordinator.testing import InMemoryKeyProvider

    engine = make_engine(pg_database_url, pool_size=1)
    dsn = pg_database_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        c = build(engine=engine, clock=clock, keys=InMemoryKeyProvider())
        case_id = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.rollback()
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            bundle = prepared(_case_bundle(), conn.dialect)
            with pytest.raises(DBAPIError) as failed:
                bundle.rows(conn, {"id": case_id, "stream": stream_of(case_id)})
            assert failed.value.connection_invalidated
            assert conn.invalidated
        assert c.summary(case_id).id == case_id
    finally:
        engine.dispose()
