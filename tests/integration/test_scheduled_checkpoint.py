"""The worker's scheduled audit checkpoint (docs/audit.md, "Checkpoints").

``Coordinator.checkpoint_audit_if_due`` signs a checkpoint only when events were appended
since the last one and the last one is at least the interval old; workers that try at the
same moment write one checkpoint between them; and a real ``coordinator worker`` process
writes one on its own schedule.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from coordinator.bootstrap import build
from coordinator.cases.commands import OpenCase
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.crypto.audit_keys import Ed25519CheckpointSigner
from coordinator.demo import referral
from coordinator.persistence.tables import audit_checkpoints
from coordinator.service import Coordinator
from coordinator.testing import FakeClock, InMemoryStore, InMemoryUnitOfWork

EVERY = timedelta(minutes=60)
GP = Actor("gp-1", "fastlege", "974589095")
CONSOLE = Path(sys.executable).with_name("coordinator")


def _open(c: Coordinator) -> None:
    _channel, profile = referral("ringsaker", c.clock.now().date(), random.Random(3))
    c.open_case(OpenCase("ringsaker", "fastlege", profile, GP))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def c(request: pytest.FixtureRequest, clock: FakeClock) -> Coordinator:
    key = Ed25519CheckpointSigner.ephemeral()
    if request.param == "memory":
        store = InMemoryStore()
        return build(clock=clock, uow=lambda: InMemoryUnitOfWork(store), signer=key)
    engine: Engine = request.getfixturevalue({"sqlite": "sqlite_engine",
                                              "postgres": "pg_engine"}[request.param])
    return build(engine=engine, clock=clock, signer=key)


def test_a_checkpoint_is_due_after_the_interval_and_only_with_new_events(
        c: Coordinator, clock: FakeClock) -> None:
    assert c.checkpoint_audit_if_due(EVERY) is None            # nothing to sign yet
    _open(c)
    first = c.checkpoint_audit_if_due(EVERY)
    assert first is not None and first.seq == 1
    clock.advance(minutes=30)
    _open(c)
    assert c.checkpoint_audit_if_due(EVERY) is None            # the last one is too young
    clock.advance(minutes=31)
    second = c.checkpoint_audit_if_due(EVERY)
    assert second is not None and second.seq == 2 and second.event_count > first.event_count
    clock.advance(hours=5)
    assert c.checkpoint_audit_if_due(EVERY) is None            # no event since
    report = c.verify_audit()
    assert report.ok and report.checkpoints == 2


@pytest.mark.postgres
def test_workers_checkpointing_at_the_same_moment_write_one(pg_engine: Engine,
                                                            clock: FakeClock) -> None:
    key = Ed25519CheckpointSigner.ephemeral()
    workers = [build(engine=pg_engine, clock=clock, signer=key) for _ in range(4)]
    _open(workers[0])
    barrier = threading.Barrier(len(workers))
    results: list[object] = []
    errors: list[BaseException] = []

    def run(w: Coordinator) -> None:
        barrier.wait(timeout=30)
        try:
            results.append(w.checkpoint_audit_if_due(EVERY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sum(r is not None for r in results) == 1 and len(results) == len(workers)
    with pg_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(audit_checkpoints)) == 1
    assert workers[1].verify_audit().ok


@pytest.mark.slow
def test_the_worker_process_writes_checkpoints_on_its_schedule(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")},
           "COORDINATOR_DATABASE_URL": url, "COORDINATOR_DATA_DIR": str(tmp_path),
           "COORDINATOR_CHECKPOINT_EVERY_MINUTES": "0.02"}          # checked every second
    subprocess.run([CONSOLE, "db", "upgrade"], env=env, check=True,  # noqa: S603
                   capture_output=True)

    coordinator = build(Settings(database_url=url, data_dir=tmp_path))
    _open(coordinator)
    worker = subprocess.Popen([CONSOLE, "worker"], env=env,  # noqa: S603 stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and coordinator.verify_audit().checkpoints == 0:
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=30)
    report = coordinator.verify_audit()
    assert report.ok and report.checkpoints >= 1, err
    assert '"audit checkpoint"' in err or "audit checkpoint" in err
