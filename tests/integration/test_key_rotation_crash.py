"""`coordinator keys rotate` killed with SIGKILL half-way, then run again, against a SQLite
file and PostgreSQL: every document still decrypts to its text, no data key is left
wrapped under the old KEK (or, with --reencrypt, no document on an old data key and no
old data key left), live writes made during the run survive, and the audit trail
verifies. The real console script runs as a subprocess; the test watches the database
and kills it once some but not all of the work is committed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from coordinator.bootstrap import build
from coordinator.cases.commands import GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.demo import referral
from coordinator.persistence.tables import data_keys, documents, key_rotations
from coordinator.service import Coordinator

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")
GP = Actor("gp-1", "fastlege")
NAV = Actor("nav-1", "nav_veileder")
CASES = 24          # 48 data keys (health + shared), 48 documents


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coordinator.db'}"
        engine = request.getfixturevalue("sqlite_engine")
        assert str(engine.url) == url
        yield url, engine
    else:
        engine = request.getfixturevalue("pg_engine")
        yield request.getfixturevalue("pg_database_url"), engine


def populate(c: Coordinator) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    texts = {}
    for n in range(CASES):
        _ch, profile = referral("ringsaker", c.clock.now().date(), random.Random(n))
        case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, GP,
                                       team=(NAV,))).id
        c.grant_consent(GrantConsent(case_id, GP, frozenset({"share_kartlegging"}),
                                     frozenset({"kartlegging"}), frozenset({"nav"}),
                                     "digital", "v1"))
        for i, share in ((0, False), (1, True)):
            text = f"Kartlegging {n}.{i}: søvn, angst, arbeidsevne."
            doc = c.documents.write(case_id, actor=GP, kind="kartleggingsskjema",
                                    category="kartlegging", text=text)
            if share:
                c.documents.share(case_id, doc.id, actor=GP, party="nav")
            texts[doc.id] = (case_id, text)
    return texts


def start(url: str, data_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(COORDINATOR_DATABASE_URL=url, COORDINATOR_DATA_DIR=str(data_dir),
               NO_COLOR="1")
    return subprocess.Popen([str(CONSOLE_SCRIPT), "keys", "rotate", *args], env=env,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_midway(proc: subprocess.Popen[str], progress: Callable[[], tuple[int, int]],
                during: Callable[[], None] = lambda: None) -> tuple[int, int]:
    """SIGKILL once ``progress()`` (done, total) is strictly between 0 and total."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done, total = progress()
        if 0 < done < total:
            during()
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            return done, total
        if proc.poll() is not None:
            raise AssertionError(f"finished before it could be killed: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    raise AssertionError("the rotation never got half-way")


def finish(url: str, data_dir: Path, *args: str) -> str:
    proc = start(url, data_dir, *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def assert_all_readable(c: Coordinator, texts: dict[uuid.UUID, tuple[uuid.UUID, str]],
                        changed: dict[uuid.UUID, str]) -> None:
    for doc_id, (case_id, text) in texts.items():
        assert c.documents.read(case_id, doc_id, actor=GP).text == changed.get(doc_id, text)


def test_a_killed_rewrap_resumes_and_leaves_nothing_under_the_old_kek(
        database: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = database
    c = build(Settings(data_dir=tmp_path / "data"), engine=engine)
    texts = populate(c)
    assert c.keys is not None
    old = c.keys.current_kek()

    def moved() -> tuple[int, int]:
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(data_keys)).scalar_one()
            left = conn.execute(select(func.count()).select_from(data_keys)
                                .where(data_keys.c.kek_id == old)).scalar_one()
        return total - left, total

    done, total = kill_midway(start(url, tmp_path / "data", "--batch", "4", "--pause", "0.15"),
                              moved)
    assert total == 2 * CASES and 0 < done < total
    out = finish(url, tmp_path / "data", "--reencrypt", "--batch", "4")
    assert "Fortsatte en avbrutt rotasjon" in out      # the killed run, as it was started
    assert "kjør kommandoen igjen" in out
    new = c.keys.current_kek()
    assert new != old
    with engine.connect() as conn:
        assert set(conn.execute(select(data_keys.c.kek_id).distinct()).scalars()) == {new}
        assert conn.execute(select(func.count()).select_from(key_rotations).where(
            key_rotations.c.finished_at.is_(None))).scalar_one() == 0
    c.key_rotation().retire(old)            # no key needs it any more: it can go
    assert_all_readable(c, texts, {})
    assert c.verify_audit().ok


def test_a_killed_reencrypt_resumes_and_keeps_live_writes(
        database: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = database
    c = build(Settings(data_dir=tmp_path / "data"), engine=engine)
    texts = populate(c)
    changed: dict[uuid.UUID, str] = {}

    def resealed() -> tuple[int, int]:
        with engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(documents)
                                .where(documents.c.key_version > 1)).scalar_one()
        return done, len(texts)

    def live_writes() -> None:
        """Edits while the run is under way: none may be lost or left on an old key."""
        for doc_id in list(texts)[::7]:
            case_id, text = texts[doc_id]
            changed[doc_id] = f"{text} Oppdatert under rotasjonen."
            c.documents.update(case_id, doc_id, actor=GP, text=changed[doc_id])

    done, total = kill_midway(
        start(url, tmp_path / "data", "--reencrypt", "--batch", "3", "--pause", "0.15"),
        resealed, during=live_writes)
    assert 0 < done < total
    out = finish(url, tmp_path / "data", "--reencrypt", "--batch", "3")
    assert "Fortsatte en avbrutt rotasjon" in out
    assert c.keys is not None
    with engine.connect() as conn:
        assert set(conn.execute(select(data_keys.c.kek_id).distinct()).scalars()) == {
            c.keys.current_kek()}
        assert set(conn.execute(select(documents.c.key_version).distinct()).scalars()) == {2}
        assert set(conn.execute(select(data_keys.c.key_version).distinct()).scalars()) == {2}
        assert conn.execute(select(func.count()).select_from(documents)).scalar_one() == \
            len(texts)
    assert_all_readable(c, texts, changed)
    assert c.verify_audit().ok
