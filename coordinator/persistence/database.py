"""Engines for SQLite (embedded default) and PostgreSQL, set up the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use psycopg 3 for them."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(url, u.database)
    # No pool_pre_ping: it costs a round trip per checkout (a sixth of a transition).
    # A connection broken by a database restart fails one request, and SQLAlchemy
    # then invalidates the pool; pool_recycle retires idle connections.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                         pool_recycle=1800)


def _sqlite_engine(url: str, path: str | None) -> Engine:
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN IMMEDIATE: writers queue on the
        # database lock (busy_timeout) instead of failing on a stale read snapshot.
        # secure_delete: deleted rows (destroyed data keys) are overwritten, not left in
        # free pages of the file (docs/encryption.md).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "secure_delete=ON", "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # on the driver: a statement of every transaction, without SQLAlchemy's execution
        # context (a twentieth of a transition); execution listeners do not see it
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")

    return engine
