"""Baselines measured in the same run as each subject.

- ``pgbench-N4`` / ``pgbench-N1``: ``pgbench -N`` (simple-update, TPC-B-like without the
  branch/teller updates) against its own freshly initialised database.
- ``psycopg-txn``: raw psycopg 3, a 1 KiB ``UPDATE … RETURNING`` plus 2 INSERTs per
  transaction; also a primary-key SELECT for its p99.
- ``sqlite-txn``: stdlib sqlite3, WAL + ``synchronous=FULL``, the same 3-statement
  transaction inside ``BEGIN IMMEDIATE``.
- ``orm-uow``: a bare SQLAlchemy Session: ``get``, version-checked update, 2 Core inserts,
  on an engine from ``coordinator.persistence.database.make_engine`` (same pool and pragmas
  as the subject), so the ratio shows what the coordinator adds on top of the ORM.

Worker factories (``*_op``) run in spawned processes; see ``bench.workers``.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, Table, Text, insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.common import Measure, percentiles

ROWS_PER_LOAD = 1000
_Op = tuple[Callable[[], bool], Callable[[], None]]


def payload(n: int) -> str:
    """1 KiB of text that changes with every transaction."""
    return f"{n:016d}" * 64


def _mine(rows: int, workers: int, index: int) -> list[int]:
    """This worker's share of the ids 1..rows, so workers never contend for a row."""
    return [i for i in range(1, rows + 1) if i % workers == index % workers]


# -- pgbench ----------------------------------------------------------------------------
def _pgbench_cmd(url: str) -> tuple[str, dict[str, str]]:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return u.set(password=None).render_as_string(hide_password=False), env


def pgbench_init(url: str, scale: int) -> None:
    dsn, env = _pgbench_cmd(url)
    subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), dsn], env=env, check=True,
                   capture_output=True, text=True, timeout=900)


_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def pgbench_run(url: str, clients: int, threads: int, seconds: int, log: bool) -> Measure:
    """``pgbench -N -c clients -j threads -T seconds [-l]``: TPS, and with ``log`` the
    latency percentiles from the per-transaction logs."""
    dsn, env = _pgbench_cmd(url)
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        cmd = ["pgbench", "-N", "-c", str(clients), "-j", str(threads), "-T", str(seconds)]
        if log:
            cmd += ["-l", f"--log-prefix={Path(tmp) / 'tx'}"]
        done = subprocess.run([*cmd, dsn], env=env, check=True, capture_output=True, text=True,
                              timeout=seconds + 120)
        match = _TPS.search(done.stdout)
        if match is None:
            raise RuntimeError(f"no TPS in pgbench output:\n{done.stdout}\n{done.stderr}")
        latencies = _pgbench_latencies(Path(tmp)) if log else []
    p50, p95, p99 = percentiles(latencies)
    return Measure(float(match.group(1)), "tps", len(latencies), float(seconds), p50, p95, p99)


def _pgbench_latencies(folder: Path) -> list[float]:
    """Per-transaction logs: ``client tx latency_us script epoch_s epoch_us``."""
    out: list[float] = []
    for f in sorted(folder.glob("tx*")):
        for line in f.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                out.append(int(fields[2]) / 1000)
    return out


# -- psycopg-txn ------------------------------------------------------------------------
PG_SCHEMA = (
    "CREATE TABLE bench_items (id bigint PRIMARY KEY, version int NOT NULL, payload text"
    " NOT NULL)",
    "CREATE TABLE bench_events (id bigserial PRIMARY KEY, item_id bigint NOT NULL, seq int"
    " NOT NULL, body text NOT NULL)",
    "CREATE TABLE bench_outbox (id bigserial PRIMARY KEY, item_id bigint NOT NULL, body text"
    " NOT NULL)",
)
UPDATE = ("UPDATE bench_items SET payload = %s, version = version + 1 WHERE id = %s"
          " RETURNING version")
INSERT_EVENT = "INSERT INTO bench_events (item_id, seq, body) VALUES (%s, %s, %s)"
INSERT_OUTBOX = "INSERT INTO bench_outbox (item_id, body) VALUES (%s, %s)"
BODY = '{"kind": "transitioned", "trigger": "record_outcome", "phase": "start"}'


def setup_psycopg(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        for ddl in PG_SCHEMA:
            conn.execute(ddl)
        with conn.cursor().copy("COPY bench_items (id, version, payload) FROM STDIN") as copy:
            for i in range(1, rows + 1):
                copy.write_row((i, 1, payload(i)))
        conn.execute("ANALYZE bench_items")


def psycopg_txn_op(params: dict[str, Any], index: int) -> _Op:
    import psycopg

    conn = psycopg.connect(params["url"])
    ids = _mine(params["rows"], params["workers"], index)
    rng = random.Random(index)
    counter = itertools.count(index * 10_000_000)

    def op() -> bool:
        item = rng.choice(ids)
        with conn.cursor() as cur:
            cur.execute(UPDATE, (payload(next(counter)), item))
            row = cur.fetchone()
            version = row[0] if row else 0
            cur.execute(INSERT_EVENT, (item, version, BODY))
            cur.execute(INSERT_OUTBOX, (item, BODY))
        conn.commit()
        return True

    return op, conn.close


def psycopg_select_op(params: dict[str, Any], index: int) -> _Op:
    import psycopg

    conn = psycopg.connect(params["url"], autocommit=True)
    rng = random.Random(1000 + index)
    rows = params["rows"]

    def op() -> bool:
        conn.execute("SELECT version, payload FROM bench_items WHERE id = %s",
                     (rng.randint(1, rows),)).fetchone()
        return True

    return op, conn.close


# -- sqlite-txn -------------------------------------------------------------------------
SQLITE_SCHEMA = (
    "CREATE TABLE bench_items (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, payload TEXT"
    " NOT NULL)",
    "CREATE TABLE bench_events (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, seq INTEGER"
    " NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE bench_outbox (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, body TEXT"
    " NOT NULL)",
)


def _sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def setup_sqlite(path: str, rows: int) -> None:
    conn = _sqlite_connect(path)
    try:
        for ddl in SQLITE_SCHEMA:
            conn.execute(ddl)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO bench_items VALUES (?, 1, ?)",
                         ((i, payload(i)) for i in range(1, rows + 1)))
        conn.execute("COMMIT")
    finally:
        conn.close()


def sqlite_txn_op(params: dict[str, Any], index: int) -> _Op:
    conn = _sqlite_connect(params["path"])
    rng = random.Random(index)
    counter = itertools.count()
    rows = params["rows"]

    def op() -> bool:
        item = rng.randint(1, rows)
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute(UPDATE.replace("%s", "?"),
                               (payload(next(counter)), item)).fetchone()[0]
        conn.execute(INSERT_EVENT.replace("%s", "?"), (item, version, BODY))
        conn.execute(INSERT_OUTBOX.replace("%s", "?"), (item, BODY))
        conn.execute("COMMIT")
        return True

    return op, conn.close


# -- orm-uow ----------------------------------------------------------------------------
class _Base(DeclarativeBase):
    pass


_BigId: Any = BigInteger().with_variant(Integer(), "sqlite")


class OrmItem(_Base):
    __tablename__ = "orm_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    __mapper_args__ = {"version_id_col": version}   # noqa: RUF012 - SQLAlchemy's idiom


orm_events = Table("orm_events", _Base.metadata,
                   Column("id", _BigId, primary_key=True, autoincrement=True),
                   Column("item_id", Integer, nullable=False),
                   Column("seq", Integer, nullable=False),
                   Column("body", Text, nullable=False))
orm_outbox = Table("orm_outbox", _Base.metadata,
                   Column("id", _BigId, primary_key=True, autoincrement=True),
                   Column("item_id", Integer, nullable=False),
                   Column("body", Text, nullable=False))


def setup_orm(url: str, rows: int) -> None:
    from coordinator.persistence.database import make_engine

    engine = make_engine(url)
    try:
        _Base.metadata.create_all(engine)
        with engine.begin() as conn:
            for start in range(1, rows + 1, ROWS_PER_LOAD):
                conn.execute(insert(OrmItem), [
                    {"id": i, "version": 1, "payload": payload(i)}
                    for i in range(start, min(rows, start + ROWS_PER_LOAD - 1) + 1)])
    finally:
        engine.dispose()


def orm_uow_op(params: dict[str, Any], index: int) -> _Op:
    from coordinator.persistence.database import make_engine

    engine = make_engine(params["url"])
    ids = _mine(params["rows"], params["workers"], index)
    rng = random.Random(index)
    counter = itertools.count(index * 10_000_000)

    def op() -> bool:
        with Session(engine, expire_on_commit=False, autoflush=False) as s:
            item = s.get(OrmItem, rng.choice(ids))
            assert item is not None
            item.payload = payload(next(counter))
            s.flush()                                   # UPDATE … WHERE version = :old
            s.execute(insert(orm_events), {"item_id": item.id, "seq": item.version,
                                           "body": BODY})
            s.execute(insert(orm_outbox), {"item_id": item.id, "body": BODY})
            s.commit()
        return True

    return op, engine.dispose
