"""The Alembic migrations build exactly ``persistence.tables.metadata``, and can be undone.

Runs on a fresh SQLite file and a fresh PostgreSQL database of its own (the run's shared
test database is left alone).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, String, inspect
from sqlalchemy.engine import make_url

from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.persistence.tables import metadata

TABLES = {t.name for t in metadata.sorted_tables}


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def fresh_postgres(pg_database_url: str) -> Iterator[Engine]:
    url = make_url(pg_database_url)
    name = f"coord_mig_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest) -> Engine:
    fixture = {"sqlite": "fresh_sqlite", "postgres": "fresh_postgres"}[request.param]
    engine: Engine = request.getfixturevalue(fixture)
    return engine


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True})
        return list(compare_metadata(context, metadata))


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        cfg = Config()
        cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def user_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_builds_exactly_the_metadata(empty_engine: Engine) -> None:
    assert migrate.current(empty_engine) is None
    assert user_tables(empty_engine) == set()
    assert differences(empty_engine) != []          # the comparison does see missing tables
    migrate.upgrade(empty_engine)
    assert user_tables(empty_engine) == TABLES
    assert differences(empty_engine) == []
    assert migrate.current(empty_engine) == migrate.head()
    assert migrate.head() is not None


def test_downgrade_to_base_and_upgrade_again(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    downgrade(empty_engine)
    assert user_tables(empty_engine) == set()
    assert migrate.current(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert user_tables(empty_engine) == TABLES
    assert differences(empty_engine) == []
    assert migrate.current(empty_engine) == migrate.head()


def test_upgrade_twice_is_a_no_op(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) == migrate.head()
    assert differences(empty_engine) == []


def test_the_shared_test_databases_are_at_head(sqlite_engine: Engine) -> None:
    assert migrate.current(sqlite_engine) == migrate.head()
    assert differences(sqlite_engine) == []


def test_the_comparison_notices_a_column_the_migrations_lack(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    wider = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(wider)
    wider.tables["cases"].append_column(Column("nickname", String(40), nullable=True))
    wider.tables["consents"].c.method.type = String(80)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = list(compare_metadata(context, wider))
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in found}
    assert "add_column" in kinds
    assert "modify_type" in kinds
