"""`coordinator cases erase` (crypto-shredding), through the console script, on a SQLite
file and on PostgreSQL: afterwards nothing of the case's documents is recoverable from the
database (every table's rows; on SQLite also the bytes of the file and its WAL): not the
plaintext, not the data keys, not their wrapped form, not the ciphertexts, and neither
the case's other plaintext: its kartlegging answers, its PHQ-9 item scores and the
free-text reason of a transition. The history keeps its length, the workflow goes on, the
audit trail still verifies and records the erasure with its reason; another case is
untouched. Without --yes the command asks, and a "no" deletes nothing. On the fake too
(one contract): forms and measures are gone and the events' free text is blank."""

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
from coordinator.cases.commands import FireTrigger, OpenCase
from coordinator.cases.document_model import DataKey
from coordinator.cases.documents import CASE_ERASED
from coordinator.cases.model import SYSTEM, Actor, CaseEvent
from coordinator.config import Settings
from coordinator.demo import referral
from coordinator.errors import CaseErased
from coordinator.intake.model import IdempotencyKey, Referral, StartMeasures
from coordinator.intake.service import Intake
from coordinator.persistence.tables import (
    case_events,
    case_forms,
    case_measures,
    data_keys,
    documents,
)
from coordinator.ports import WrappedKey
from coordinator.service import Coordinator
from coordinator.testing import FakeClock

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")
GP = Actor("gp-1", "fastlege")
NAV = Actor("nav-1", "nav_veileder")
TEXTS = ("Journalnotat: selvmordstanker i perioden etter oppsigelsen.",
         "Mestringsplan: eksponeringstrening tre ganger i uken.")
# The case's other plaintext: a kartlegging answer, PHQ-9 item scores, a transition reason.
KARTLEGGING = "urn:coordinator:questionnaire:kartlegging|1"
SICK_LEAVE_START = "2024-02-29"
PHQ9 = (3, 2, 3, 1, 0, 2, 3, 1, 2)
REASON = "Tilbakefall etter samlivsbruddet i oktober, drikker mer."
PLANTED = (SICK_LEAVE_START.encode(), str(list(PHQ9)).encode(), REASON.encode())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[tuple[str, Engine]]:
    fixture = "pg_engine" if request.param == "postgres" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(fixture)
    yield engine.url.render_as_string(hide_password=False), engine


def open_case(c: Coordinator, seed: int) -> uuid.UUID:
    _ch, profile = referral("ringsaker", c.clock.now().date(), random.Random(seed))
    return c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, team=(NAV,))).id


def open_planted_case(c: Coordinator, key: str = "erase-me") -> uuid.UUID:
    """A ringsaker case through referral intake, with a kartlegging form and a PHQ-9 start
    measure, then a transition with a free-text reason."""
    _ch, profile = referral("ringsaker", c.clock.now().date(), random.Random(1))
    answers = {"work_situation": "full_sick_leave", "sick_leave_start": SICK_LEAVE_START,
               "nav_contact": True}
    receipt = Intake(c).receive_referral(
        Referral("ringsaker", profile, "500000058", "900000001", ((KARTLEGGING, answers),),
                 StartMeasures({"phq9": PHQ9})), GP, IdempotencyKey("gp-1", key, "h"))
    tick(c)
    c.add_member(receipt.case_id, NAV.id, NAV.role, by=GP)
    tick(c)
    c.fire(FireTrigger(receipt.case_id, "record_outcome", GP,
                       {"phase": "start", "reason": REASON}))
    return receipt.case_id


def events_of(c: Coordinator, case_id: uuid.UUID) -> list[CaseEvent]:
    with c.uow() as uow:
        return list(uow.events.history(case_id))


def tick(c: Coordinator) -> None:
    """Each change of a case at a later time (the fake clock stands still otherwise)."""
    if isinstance(c.clock, FakeClock):
        c.clock.advance(minutes=1)


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
    case_id, kept_case = open_planted_case(c), open_case(c, 2)
    history = events_of(c, case_id)
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
    secrets = [t.encode() for t in TEXTS] + plain_keys + [b for _k, b, _a, _v in wrapped] + \
        sealed + list(PLANTED)
    stored = every_row(engine) + file_bytes(engine)
    # before: the wrapped key, the ciphertexts and the case's other plaintext are there
    # (the search can find them), the documents' plaintext and the plain data key never are
    assert all(s in stored for s in [*sealed, wrapped[0][1], *PLANTED])
    assert not any(s in stored for s in [t.encode() for t in TEXTS] + plain_keys)

    asked = cli(url, data_dir, "cases", "erase", str(case_id), "--reason", "Krav", answer="n\n")
    assert asked.returncode == 1 and "ingenting er slettet" in asked.stderr
    assert c.documents.read(case_id, docs[0].id, actor=GP).text == TEXTS[0]

    done = cli(url, data_dir, "cases", "erase", str(case_id), "--reason",
               "Sletting etter krav fra personen (sak 2027-17)", "--yes")
    assert done.returncode == 0, done.stderr
    assert "2 dokumenter og 1 datanøkler er borte, 1 skjemaer og 1 resultatmål er slettet, " \
        f"og fritekst er fjernet fra {len(history)} hendelser" in done.stdout
    engine.dispose()        # let go of pooled connections; read what is on disk now
    stored = every_row(engine) + file_bytes(engine)
    leaks = [s[:12].hex() for s in secrets if s in stored]
    assert leaks == []
    with pytest.raises(CaseErased):
        c.documents.read(case_id, docs[0].id, actor=GP)
    assert c.documents.read(kept_case, kept.id, actor=GP).text == "Denne saken beholdes."
    with engine.connect() as conn:
        for table in (case_forms, case_measures):
            assert conn.execute(select(table).where(table.c.case_id == case_id)).all() == []
        events = conn.execute(select(case_events).where(case_events.c.case_id == case_id)
                              .order_by(case_events.c.seq)).mappings().all()
    # the history keeps every event with its metadata; only the free text is gone
    assert [(e["seq"], e["kind"], e["trigger"], e["to_state"], e["actor_id"])
            for e in events] == [(e.seq, e.kind, e.trigger, e.to_state, e.actor_id)
                                 for e in history]
    assert {(e["reason"], str(e["data"])) for e in events} == {(None, "{}")}
    after = c.fire(FireTrigger(case_id, "record_outcome", GP, {"phase": "end"}))
    assert after.version == history[-1].seq + 1                  # the workflow goes on
    verified = cli(url, data_dir, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    with c.uow() as uow:
        erasures = [e for e in uow.audit.query(case_id=case_id) if e.kind == CASE_ERASED]
    assert [(e.actor_role, e.data["reason"], e.data["documents"], e.data["forms"],
             e.data["measures"]) for e in erasures] == [
        ("system", "Sletting etter krav fra personen (sak 2027-17)", 2, 1, 1)]
    again = cli(url, data_dir, "cases", "erase", str(case_id), "--reason", "igjen", "--yes")
    assert again.returncode == 0 and "allerede slettet" in again.stdout


def test_erasure_deletes_forms_and_measures_and_blanks_event_text(
        any_coordinator: Coordinator) -> None:
    c = any_coordinator
    case_id, kept_case = open_planted_case(c), open_planted_case(c, "kept")
    intake = Intake(c)
    assert [f.answers["sick_leave_start"] for f in intake.forms(case_id, GP)] == [
        SICK_LEAVE_START]
    assert [m.items for m in intake.measures(case_id, GP)] == [PHQ9]
    before = events_of(c, case_id)
    assert REASON in [e.reason for e in before]
    report = c.documents.erase(case_id, actor=SYSTEM, reason="Sletting etter krav")
    assert (report.forms, report.measures, report.events) == (1, 1, len(before))
    assert intake.forms(case_id, GP) == [] and intake.measures(case_id, GP) == []
    after = events_of(c, case_id)
    assert [(e.seq, e.kind, e.trigger, e.to_state) for e in after] == [
        (e.seq, e.kind, e.trigger, e.to_state) for e in before]
    assert {(e.reason, str(e.data)) for e in after} == {(None, "{}")}
    with pytest.raises(CaseErased):             # no new health data on an erased case
        intake.record_measures(case_id, "end", GP, scores={"phq9": list(PHQ9)})
    assert intake.measures(case_id, GP) == []
    # the other case keeps everything
    assert [m.items for m in intake.measures(kept_case, GP)] == [PHQ9]
    assert len(intake.forms(kept_case, GP)) == 1
    assert REASON in [e.reason for e in events_of(c, kept_case)]
    assert c.verify_audit().ok
