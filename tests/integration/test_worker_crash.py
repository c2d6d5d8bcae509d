"""Crash atomicity of reminders: two real ``coordinator worker`` processes on PostgreSQL,
an aiosmtpd sink in its own process recording Message-IDs, and ``kill -9`` of a worker in
each of 10 rounds while batches are in flight.

Pass (RELIABILITY.md section 3): every due reminder reaches the sink (distinct
Message-IDs = outbox rows, 0 lost); no reminder arrives as two different messages (every
copy carries the outbox id as Message-ID); same-id resends <= kills (the dispatcher marks
each message sent in its own transaction right after the server accepted it, so a kill
can resend only the one message in flight); one ``deliveries`` row per reminder; nothing
left claimed.

The sink does not de-duplicate: it records every message it accepts, so a resend is
counted here, not hidden.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from coordinator.bootstrap import build
from coordinator.persistence.tables import deliveries, outbox
from coordinator.scheduling.outbox import EMAIL, RULE, SENT, OutboxRow

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROUNDS = 10
PER_ROUND = 60
BATCH = 15
CONSOLE = Path(sys.executable).with_name("coordinator")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _enqueue(engine: Engine, n: int) -> set[uuid.UUID]:
    now = datetime.now(UTC) - timedelta(seconds=1)
    rows = [OutboxRow(uuid.uuid4(), None, "ha", RULE, f"crash:{i}", "deadline_overdue", EMAIL,
                      f"user-{i}", now, None, {"deadline": "kartlegging",
                                               "due_at": now.isoformat()})
            for i in range(n)]
    c = build(engine=engine)
    with c.uow() as uow:
        uow.outbox.add(rows)
        uow.commit()
    return {r.id for r in rows}


def _received(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.split(" ", 1)[1].strip() for line in path.read_text().splitlines() if line]


def test_kill_9_mid_batch_loses_nothing_and_never_makes_two_messages(
        pg_engine: Engine, pg_database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    sink_log = tmp_path / "sink.log"
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", "--port", str(port),  # noqa: S603
                             "--out", str(sink_log), "--delay-ms", "3"],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "READY"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")},
           "COORDINATOR_DATABASE_URL": pg_database_url, "COORDINATOR_SMTP_HOST": "127.0.0.1",
           "COORDINATOR_SMTP_PORT": str(port), "COORDINATOR_WORKER_TICK_SECONDS": "0.2",
           "COORDINATOR_WORKER_BATCH_SIZE": str(BATCH), "COORDINATOR_WORKER_LEASE_SECONDS": "10",
           "COORDINATOR_DATA_DIR": str(tmp_path)}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(CONSOLE), "worker"], env=env,  # noqa: S603
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    rng = random.Random(6)
    workers = [start(), start()]
    due: set[uuid.UUID] = set()
    kills = 0
    try:
        for _ in range(ROUNDS):
            due |= _enqueue(pg_engine, PER_ROUND)
            before = len(_received(sink_log))
            deadline = time.monotonic() + 20
            while len(_received(sink_log)) < before + 5 and time.monotonic() < deadline:
                time.sleep(0.02)                       # a batch is in flight: kill now
            victim = rng.randrange(2)
            os.kill(workers[victim].pid, signal.SIGKILL)
            workers[victim].wait(timeout=10)
            kills += 1
            workers[victim] = start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with pg_engine.connect() as conn:
                left = conn.scalar(select(func.count()).select_from(outbox)
                                   .where(outbox.c.status != SENT))
            if left == 0:
                break
            time.sleep(0.2)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.kill()
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=10)
        sink.stdout.close()

    got = Counter(_received(sink_log))
    expected = {f"<{i}@coordinator>" for i in due}
    assert kills == ROUNDS
    assert len(due) == ROUNDS * PER_ROUND
    assert set(got) == expected                                # 0 lost, nothing foreign
    assert len(got) == len(due)                                # distinct Message-IDs = rows
    resends = sum(n - 1 for n in got.values())
    print(f"kills={kills} resends={resends} due={len(due)} received={got.total()}")
    assert resends <= kills                                    # at most the one in flight
    with pg_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(deliveries)) == len(due)
        statuses = dict(conn.execute(select(outbox.c.status, func.count())
                                     .group_by(outbox.c.status)).all())
    assert statuses == {SENT: len(due)}                        # nothing left claimed
