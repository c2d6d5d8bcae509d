"""Shared fixtures: a fake clock, and fresh SQLite and PostgreSQL databases per test run.

PostgreSQL comes from COORDINATOR_TEST_PG (default: the local test server). Tests marked
``postgres`` skip when it is unreachable, except under CI=true, where they fail instead.
Each pytest process (each xdist worker) creates its own database and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from coordinator.bootstrap import build
from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.persistence.tables import metadata
from coordinator.service import Coordinator
from coordinator.testing import (
    FakeClock,
    InMemoryKeyProvider,
    InMemoryStore,
    InMemoryUnitOfWork,
)

PG_ADMIN_URL = os.environ.get("COORDINATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2027, 1, 4, 8, 0, tzinfo=UTC))    # a Monday, 09:00 in Oslo


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'coordinator.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _pg_reachable() -> str | None:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test process; dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    problem = _pg_reachable()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true and unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    name = f"coord_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_engine(pg_database_url: str) -> Iterator[Engine]:
    """The run's PostgreSQL database, emptied before each test."""
    engine = make_engine(pg_database_url, pool_size=20)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    yield engine
    engine.dispose()


CoordinatorFactory = Callable[[str], Coordinator]


@pytest.fixture
def make_coordinator(request: pytest.FixtureRequest, clock: FakeClock) -> CoordinatorFactory:
    """``make_coordinator("memory" | "sqlite" | "postgres")`` on a fresh store."""

    def make(backend: str) -> Coordinator:
        if backend == "memory":
            store = InMemoryStore()
            return build(clock=clock, uow=lambda: InMemoryUnitOfWork(store),
                         keys=InMemoryKeyProvider())
        fixture = {"sqlite": "sqlite_engine", "postgres": "pg_engine"}[backend]
        engine: Engine = request.getfixturevalue(fixture)
        return build(engine=engine, clock=clock, keys=InMemoryKeyProvider())

    return make


@pytest.fixture
def coordinator(sqlite_engine: Engine, clock: FakeClock) -> Coordinator:
    """The library on a freshly migrated SQLite database with a fake clock."""
    return build(engine=sqlite_engine, clock=clock, keys=InMemoryKeyProvider())


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_coordinator(request: pytest.FixtureRequest,
                    make_coordinator: CoordinatorFactory) -> Coordinator:
    """The same tests against the fake, SQLite and PostgreSQL."""
    return make_coordinator(request.param)
