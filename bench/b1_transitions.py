"""B1: audited case transitions per second on PostgreSQL, 4 worker processes.

Divided by ``pgbench-N4`` TPS (target ≥ 0.25, floor 0.15); the same workload in 1
process is divided by ``pgbench-N1`` TPS (target ≥ 0.20). Diagnostics: ratios to
``orm-uow`` and ``psycopg-txn``. Run: ``python -m bench.b1_transitions --mode smoke|full``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any
from uuid import UUID

from bench import baselines
from bench.common import (
    Measure,
    Mode,
    baseline_block,
    fresh_database,
    judged,
    run_attempts,
    script_main,
)
from bench.workers import Phase, WorkerPool
from coordinator.cases.model import Actor

WORKERS = 4
PILOT = "ringsaker"
TRIGGER = "record_outcome"           # internal transition: may fire again and again
PHASES = ("start", "end")
UNIT = "transitions/s"
FIRE = "bench.b1_transitions:fire_op"
MEASURES = "Audited case transitions/s, PostgreSQL, 4 processes"
MEASURES_1 = "Audited case transitions/s, PostgreSQL, 1 process"

NOTES = [
    "B1 measures, per transition and in one commit: loading the case by primary key "
    "with its team, its consent records and its audit stream's head (one statement), the "
    "need-to-know check (the firer is a member), argument validation and guard evaluation "
    "through the workflow engine (ringsaker record_outcome), the consent decision (the "
    "consent records evaluated into live scopes), the effect on the case record, a "
    "version-checked UPDATE of the case (version_id_col), one case_events row and one "
    "hash-chained audit event (on PostgreSQL one statement that moves the head only if it "
    "is still the one read, with the case event as a CTE) and, when something the "
    "reminder plan reads changed, the re-planned reminders in the outbox (record_outcome "
    "changes nothing the plan reads after its first firing on a case).",
    "Not on this path, although BENCHMARKS.md counts them in B1: AES-GCM encryption of "
    "1-3 fields (a transition carries no document; its reason and arguments are stored "
    "in case_events as plaintext, which erasure blanks) and an outbox row on every "
    "transition (only on a re-plan or a Nav event). B2 measures the encrypted read.",
    "The --chain=global variant is not run: one global chain is not built (it would "
    "serialize every write; see docs/audit.md).",
]


# On every case's team, so fire() passes the need-to-know check as a member would.
THERAPIST = Actor("bench-therapist", "kognitiv_terapeut")


# -- worker-side functions (run in spawned processes) -------------------------------------
def open_cases(coordinator: Any, params: dict[str, Any], index: int,
               team: tuple[Actor, ...]) -> Iterator[tuple[Actor, Any]]:
    """Open ``params["count"]`` ringsaker cases with ``team``, referred by this worker's
    GP, with seeded random eligible profiles, within ``params["max_seconds"]``. Yields
    (the GP, the case summary)."""
    from coordinator.cases.commands import OpenCase
    from coordinator.workflows.facts import Profile

    gp = Actor(f"bench-gp-{index}", "fastlege")
    rng = random.Random(params["seed"])
    deadline = time.monotonic() + params["max_seconds"]
    for _ in range(params["count"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"loading cases took over {params['max_seconds']} s")
        born = date(1978 + rng.randrange(22), 1 + rng.randrange(12), 1 + rng.randrange(28))
        problem = rng.choice(("msk", "mental_mild_moderate"))
        yield gp, coordinator.open_case(
            OpenCase(PILOT, "fastlege", Profile(born, frozenset({problem})), gp, team=team))


def create_cases(params: dict[str, Any], index: int) -> list[str]:
    """Open ``count`` ringsaker cases through the Coordinator, each with one consent."""
    from coordinator.bootstrap import build
    from coordinator.cases.commands import GrantConsent
    from coordinator.persistence.database import make_engine

    engine = make_engine(params["url"])
    coordinator = build(engine=engine)
    ids: list[str] = []
    try:
        for gp, case in open_cases(coordinator, params, index, (THERAPIST,)):
            coordinator.grant_consent(GrantConsent(
                case.id, gp, frozenset({"coordination"}), frozenset({"kartlegging"}),
                frozenset({"nav"}), "digital", "v1"))
            ids.append(str(case.id))
    finally:
        engine.dispose()
    return ids


def fire_op(params: dict[str, Any], index: int) -> tuple[Any, Any]:
    """One audited transition through the real ``Coordinator.fire`` per call."""
    from coordinator.bootstrap import build
    from coordinator.cases.commands import FireTrigger
    from coordinator.errors import ConcurrentUpdate
    from coordinator.persistence.database import make_engine

    engine = make_engine(params["url"])
    coordinator = build(engine=engine)
    ids = [UUID(x) for x in params["ids"][index::params["workers"]]]
    actor = THERAPIST
    rng = random.Random(index)

    def op() -> bool:
        cmd = FireTrigger(rng.choice(ids), TRIGGER, actor, {"phase": rng.choice(PHASES)})
        try:
            coordinator.fire(cmd)
        except ConcurrentUpdate:
            return False
        return True

    return op, engine.dispose


# -- parent side ---------------------------------------------------------------------------
def load_cases(pool: WorkerPool, url: str, count: int, workers: int) -> list[str]:
    from coordinator.persistence import migrate
    from coordinator.persistence.database import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    batches = pool.call("bench.b1_transitions:create_cases", [
        {"url": url, "count": n, "seed": i, "max_seconds": 900} for i, n in enumerate(shares)])
    return [case_id for batch in batches for case_id in batch]


def transitions_recorded(url: str) -> int:
    from sqlalchemy import func, select

    from coordinator.persistence.database import make_engine
    from coordinator.persistence.tables import case_events

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            q = select(func.count()).select_from(case_events)\
                .where(case_events.c.kind == "transitioned")
            return int(conn.scalar(q) or 0)
    finally:
        engine.dispose()


def committed(m: Measure) -> int:
    return m.count + int(m.extra.get("warmup", 0))


def attempt(pool: WorkerPool, app: str, pgb: str, ids: list[str], mode: Mode) -> dict[str, Any]:
    secs = mode.baseline_seconds
    n4_before = baselines.pgbench_run(pgb, 4, 2, secs, log=True)
    four = pool.measure(Phase(FIRE, {"url": app, "ids": ids, "workers": WORKERS},
                              mode.seconds, UNIT))
    n4_after = baselines.pgbench_run(pgb, 4, 2, secs, log=True)
    n1_before = baselines.pgbench_run(pgb, 1, 1, secs, log=False)
    one = pool.measure(Phase(FIRE, {"url": app, "ids": ids, "workers": 1},
                             mode.seconds, UNIT, workers=1))
    n1_after = baselines.pgbench_run(pgb, 1, 1, secs, log=False)
    main = judged(MEASURES, baseline_block("pgbench-N4", n4_before, n4_after), four, 0.25, 0.15)
    single = judged(MEASURES_1, baseline_block("pgbench-N1", n1_before, n1_after), one,
                    0.20, None)
    return {"main": main, "single": single, "ratio": main["ratio"],
            "noisy": "noisy" in (main["verdict"], single["verdict"]),
            "committed": committed(four) + committed(one),
            "conflicts": four.extra["conflicts"] + one.extra["conflicts"]}


def diagnostics(pool: WorkerPool, app: str, ids: list[str], base: str,
                mode: Mode) -> tuple[list[dict[str, Any]], int]:
    """Each diagnostic baseline is paired with a fresh subject run at the same worker
    count right after it, so the ratio compares like with like on a shared machine.
    Returns the diagnostics and the transitions the paired subject runs committed."""
    rows = len(ids)
    baselines.setup_psycopg(base, rows)
    baselines.setup_orm(base, rows)
    pairs = (("psycopg-txn (4 processes)", "bench.baselines:psycopg_txn_op", WORKERS, "B1"),
             ("orm-uow (4 processes)", "bench.baselines:orm_uow_op", WORKERS, "B1"),
             ("orm-uow (1 process)", "bench.baselines:orm_uow_op", 1, "B1 (1 process)"))
    out: list[dict[str, Any]] = []
    extra = 0
    for name, factory, n, label in pairs:
        params = {"url": base, "rows": rows, "workers": n}
        other = pool.measure(Phase(factory, params, mode.diag_seconds, "txn/s", workers=n))
        subject = pool.measure(Phase(FIRE, {"url": app, "ids": ids, "workers": n},
                                     mode.diag_seconds, UNIT, workers=n))
        extra += committed(subject)
        out.append(diagnostic(name, other, label, subject))
    sel = pool.measure(Phase("bench.baselines:psycopg_select_op",
                             {"url": base, "rows": rows, "workers": 1},
                             min(mode.diag_seconds, 5.0), "selects/s", workers=1))
    out.append({"name": "psycopg-txn primary-key SELECT (1 process)",
                "value": round(sel.rate, 1), "unit": sel.unit, "p50_ms": _r(sel.p50),
                "p99_ms": _r(sel.p99), "ratio": None})
    return out, extra


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def diagnostic(name: str, other: Measure, subject_label: str,
               subject: Measure) -> dict[str, Any]:
    return {"name": name, "value": round(other.rate, 1), "unit": other.unit,
            "p99_ms": _r(other.p99), "subject": subject_label,
            "subject_value": round(subject.rate, 1),
            "ratio": round(subject.rate / other.rate, 4) if other.rate else None}


def run(doc: dict[str, Any], mode: Mode, started: float) -> dict[str, Any]:
    with fresh_database("coord_bench") as app, fresh_database("coord_pgbench") as pgb, \
            fresh_database("coord_base") as base, WorkerPool(WORKERS) as pool:
        baselines.pgbench_init(pgb, mode.pgbench_scale)
        ids = load_cases(pool, app, mode.cases, WORKERS)
        chosen, runs = run_attempts(lambda: attempt(pool, app, pgb, ids, mode), mode, started)
        diags, extra = diagnostics(pool, app, ids, base, mode)
        recorded = transitions_recorded(app)
    expected = sum(r["committed"] for r in runs) + extra
    doc.update({k: chosen["main"][k] for k in
                ("measures", "baseline", "result", "ratio", "target", "floor", "verdict")})
    doc["variants"] = [dict(chosen["single"], name="B1 (1 process)")]
    doc["diagnostics"] = diags
    doc["attempts"] = [_attempt_line(r) for r in runs]
    doc["setup"] = {"cases": len(ids), "workers": WORKERS, "seconds": mode.seconds,
                    "baseline_seconds": mode.baseline_seconds,
                    "diagnostic_seconds": mode.diag_seconds,
                    "pgbench_scale": mode.pgbench_scale, "pilot": PILOT, "trigger": TRIGGER}
    doc["audit_check"] = {"transitions_committed": expected, "case_events_found": recorded,
                          "conflicts": sum(r["conflicts"] for r in runs)}
    doc["notes"] += NOTES
    if recorded != expected:
        doc["verdict"] = "fail"
        doc["notes"].append(f"case_events holds {recorded} transition rows, workers committed "
                            f"{expected}: the audit trail does not match")
    return doc


def _attempt_line(r: dict[str, Any]) -> dict[str, Any]:
    return {"ratio": r["ratio"], "verdict": r["main"]["verdict"],
            "pgbench_n4_drift": r["main"]["baseline"]["drift"],
            "single_ratio": r["single"]["ratio"], "single_verdict": r["single"]["verdict"],
            "pgbench_n1_drift": r["single"]["baseline"]["drift"]}


def main(argv: Sequence[str] | None = None) -> int:
    return script_main("b1", argv, __doc__, run, measures=MEASURES, baseline="pgbench-N4",
                       unit=UNIT, target=0.25, floor=0.15, pgbench=True)


if __name__ == "__main__":
    raise SystemExit(main())
