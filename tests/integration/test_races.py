"""Races: many clients fire the same transition on one case at the same moment.

Every thread of a race read the same version and sends it as ``expected_version``. Exactly
one may win; every loser must get ``ConcurrentUpdate`` (``StaleVersion`` is one) and
nothing else; the history of each case must stay one gapless chain with seq == version.
RELIABILITY.md §2: PostgreSQL 16 threads × 1,000 cases, SQLite 4 × 100.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest
from sqlalchemy import Engine, select

from coordinator.bootstrap import build
from coordinator.cases.commands import FireTrigger
from coordinator.cases.model import Actor, Case, Member
from coordinator.errors import ConcurrentUpdate
from coordinator.persistence.tables import case_events, cases
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from tests.unit.definitions_for_tests import ELIGIBLE, synthetic_registry

GP = Actor("gp-1", "fastlege")


def _open_many(c: Coordinator, clock: FakeClock, n: int) -> list[uuid.UUID]:
    """Open ``n`` cases in one unit of work (one transaction)."""
    workflow = c.workflows.latest("synthetic")
    opened = [Case.open(uuid.uuid4(), workflow=workflow, referrer="fastlege", profile=ELIGIBLE,
                        by=GP, now=clock.now()) for _ in range(n)]
    with c.uow() as uow:
        for case in opened:
            uow.cases.add(case)
            uow.members.add(Member(case.id, GP.id, GP.role, clock.now(), GP.id))
        uow.commit()
    return [case.id for case in opened]


def _race(c: Coordinator, case_ids: list[uuid.UUID], threads: int) -> list[list[object]]:
    """``threads`` long-lived threads; for each case they meet at a barrier and all fire.

    Returns, per case, what each thread got: "won" or the exception it raised."""
    barrier = threading.Barrier(threads)
    results: list[list[object]] = [[None] * threads for _ in case_ids]
    crashed: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for i, case_id in enumerate(case_ids):
                barrier.wait(timeout=60)
                try:
                    c.fire(FireTrigger(case_id, "begin_intake", GP, expected_version=1))
                    results[i][n] = "won"
                except Exception as exc:     # every outcome is recorded and checked below
                    results[i][n] = exc
        except BaseException as exc:   # a broken barrier or a bug in the test itself
            crashed.append(exc)
            barrier.abort()

    pool = [threading.Thread(target=client, args=(n,), name=f"client-{n}")
            for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert crashed == []
    return results


def _check(engine: Engine, case_ids: list[uuid.UUID], results: list[list[object]]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for case_id, got in zip(case_ids, results, strict=True):
        assert got.count("won") == 1, f"case {case_id}: {got}"
        for r in got:
            if r != "won":
                assert isinstance(r, ConcurrentUpdate), f"case {case_id}: unexpected {r!r}"
            outcomes[r if isinstance(r, str) else type(r).__name__] += 1
    with engine.connect() as conn:
        seqs: dict[uuid.UUID, list[int]] = defaultdict(list)
        for row in conn.execute(select(case_events.c.case_id, case_events.c.seq)
                                .order_by(case_events.c.case_id, case_events.c.seq)):
            seqs[row.case_id].append(row.seq)
        versions = {r.id: (r.version, r.state) for r in
                    conn.execute(select(cases.c.id, cases.c.version, cases.c.state))}
    assert set(versions) == set(case_ids)
    for case_id in case_ids:
        assert versions[case_id] == (2, "intake")
        assert seqs[case_id] == [1, 2]          # no gap, no duplicate, seq == version
        assert len(seqs[case_id]) == versions[case_id][0]
    return outcomes


def _run(engine: Engine, threads: int, n_cases: int) -> None:
    clock = FakeClock()
    c = build(engine=engine, clock=clock, workflows=synthetic_registry())
    case_ids = _open_many(c, clock, n_cases)
    started = time.perf_counter()
    results = _race(c, case_ids, threads)
    elapsed = time.perf_counter() - started
    outcomes = _check(engine, case_ids, results)
    assert outcomes["won"] == n_cases
    assert sum(outcomes.values()) == threads * n_cases
    print(f"\n{engine.name}: {threads} threads x {n_cases} races in {elapsed:.1f} s; "
          f"outcomes {dict(outcomes)}")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.xdist_group("races")
def test_postgres_sixteen_threads_race_one_transition_on_each_of_1000_cases(
        pg_engine: Engine) -> None:
    _run(pg_engine, threads=16, n_cases=1000)


@pytest.mark.xdist_group("races")
def test_sqlite_four_threads_race_one_transition_on_each_of_100_cases(
        sqlite_engine: Engine) -> None:
    _run(sqlite_engine, threads=4, n_cases=100)
