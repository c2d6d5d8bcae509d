"""`coordinator cases erase` (crypto-shredding), through the console script, on a SQLite
file and on PostgreSQL: afterwards nothing of the case's documents is recoverable from the
database (every table's rows; on SQLite also the bytes of the file and its WAL): not the
plaintext, not the data keys, not their wrapped form, not the ciphertexts. The audit
trail still verifies and records the erasure with its reason; another case is untouched.
Without --yes the command asks, and a "no" deletes nothing."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select

from coordinator.bootstrap import build
from coordinator.cases.commands import OpenCase
from coordinator.cases.document_model import DataKey
from coordinator.cases.documents import CASE_ERASED
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.demo import referral
from coordinator.errors import CaseErased
from coordinator.persistence.tables import data_keys, documents
from coordinator.ports import WrappedKey
from coordinator.service import Coordinator

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")
GP = Actor("gp-1", "fastlege")
NAV = Actor("nav-1", "nav_veileder")
TEXTS = ("Journalnotat: selvmordstanker i perioden etter oppsigelsen.",
         "Mestringsplan: eksponeringstrening tre ganger i uken.")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[tuple[str, Engine]]:
    fixture = "pg_engine" if request.param == "postgres" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(fixture)
    yield engine.url.render_as_string(hide_password=False), engine


def open_case(c: Coordinator, seed: int) -> uuid.UUID:
    _ch, profile = referral("ringsaker", c.clock.now().date(), random.Random(seed))
    return c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, team=(NAV,))).id


def cli(url: str, data_dir: Path, *args: str, answer: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(COORDINATOR_DATABASE_URL=url, COORDINATOR_DATA_DIR=str(data_dir), NO_COLOR="1")
    return subprocess.run([str(CONSOLE_SCRIPT), *args], env=env, input=answer,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)


def every_row(engine: Engine) -> bytes:
    """Every row of every table, as bytes (text columns UTF-8, blobs as they are)."""
    meta = MetaData()
    meta.reflect(engine)
    out = bytearray()
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    out += value if isinstance(value, bytes | memoryview) else \
                        str(value).encode()
                    out += b"\x00"
    return bytes(out)


def file_bytes(engine: Engine) -> bytes:
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return b""
    path = Path(engine.url.database)
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))
                    if p.exists())


def test_erasure_leaves_nothing_recoverable_and_the_audit_trail_verifies(
        database: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = database
    data_dir = tmp_path / "data"
    c = build(Settings(data_dir=data_dir), engine=engine)
    case_id, kept_case = open_case(c, 1), open_case(c, 2)
    docs = [c.documents.write(case_id, actor=GP, kind="note", category="kartlegging",
                              text=t) for t in TEXTS]
    kept = c.documents.write(kept_case, actor=GP, kind="note", category="kartlegging",
                             text="Denne saken beholdes.")
    assert c.keys is not None
    with engine.connect() as conn:
        wrapped = [(r.kek_id, bytes(r.blob), r.audience, r.key_version) for r in conn.execute(
            select(data_keys).where(data_keys.c.case_id == case_id))]
        sealed = [bytes(r.sealed) for r in conn.execute(
            select(documents).where(documents.c.case_id == case_id))]
    assert len(wrapped) == 1 and len(sealed) == 2
    plain_keys = [c.keys.unwrap(WrappedKey(kek, blob), DataKey(
        case_id, aud, ver, kek, blob, c.clock.now()).context) for kek, blob, aud, ver in wrapped]
    secrets = [t.encode() for t in TEXTS] + plain_keys + [b for _k, b, _a, _v in wrapped] + sealed
    stored = every_row(engine) + file_bytes(engine)
    # before: the wrapped key and the ciphertexts are there (the search can find them),
    # the plaintext and the plain data key never are
    assert all(s in stored for s in [*sealed, wrapped[0][1]])
    assert not any(s in stored for s in [t.encode() for t in TEXTS] + plain_keys)

    asked = cli(url, data_dir, "cases", "erase", str(case_id), "--reason", "Krav", answer="n\n")
    assert asked.returncode == 1 and "ingenting er slettet" in asked.stderr
    assert c.documents.read(case_id, docs[0].id, actor=GP).text == TEXTS[0]

    done = cli(url, data_dir, "cases", "erase", str(case_id), "--reason",
               "Sletting etter krav fra personen (sak 2027-17)", "--yes")
    assert done.returncode == 0, done.stderr
    assert "2 dokumenter og 1 datanøkler er borte" in done.stdout
    engine.dispose()        # let go of pooled connections; read what is on disk now
    stored = every_row(engine) + file_bytes(engine)
    leaks = [s[:12].hex() for s in secrets if s in stored]
    assert leaks == []
    with pytest.raises(CaseErased):
        c.documents.read(case_id, docs[0].id, actor=GP)
    assert c.documents.read(kept_case, kept.id, actor=GP).text == "Denne saken beholdes."
    verified = cli(url, data_dir, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    with c.uow() as uow:
        erasures = [e for e in uow.audit.query(case_id=case_id) if e.kind == CASE_ERASED]
    assert [(e.actor_role, e.data["reason"], e.data["documents"]) for e in erasures] == [
        ("system", "Sletting etter krav fra personen (sak 2027-17)", 2)]
    again = cli(url, data_dir, "cases", "erase", str(case_id), "--reason", "igjen", "--yes")
    assert again.returncode == 0 and "allerede slettet" in again.stdout
