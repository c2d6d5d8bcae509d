"""B6: scale. B1 and the read paths on a database of 1 M cases and 10 M audit events.

``bench.load_scale`` loads the database with COPY (1,000,000 cases, 10,000,000 real
chained audit events, 3,000,000 consents, 2,000,000 outbox rows; ``--scale`` multiplies
every count, ``--mode smoke`` is 0.001). Then, in the same run:

- **B6** (judged): B1's audited transitions/s (B1's own worker code: 4 processes firing
  ``record_outcome`` through ``Coordinator.fire`` over B1's freshly opened cases) on the
  loaded database, divided by the same on an empty database, measured before and after
  (target ≥ 0.80);
- case lookup by id (a unit of work and ``CaseRepository.get``) p99 against the
  ``psycopg-txn`` primary-key SELECT p99 (≤ 5 ×);
- the person's access-log extract over ten years (``AuditLog.query`` by person key, the
  access kinds and a ten-year window) p99 against ``pgbench-N4`` p99 (≤ 13 ×); its
  ``EXPLAIN`` must use the ``(person_key, occurred_at)`` index;
- the auditor query "consent changes in period P for organisation (pilot) O"
  (``Coordinator.pilot_consent_log``, a 30-day window, audited) p99 against ``pgbench-N4``
  p99 (≤ 130 ×);
- storage per audit event, indexes included (``pg_total_relation_size``), against the
  design budget of 500 B;
- ``coordinator audit verify --case`` on a loaded case (must exit 0).

Latency ratios are baseline p99 ÷ our p99, so higher is better like every other ratio.
B3 at scale (the HTTP mix) is not run. Never part of ``make test`` or CI: ``make
bench-scale`` (full size, by hand or nightly). Run: ``python -m bench.b6_scale --mode
smoke|full [--scale F] [--jobs N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import b1_transitions as b1
from bench import baselines, load_scale
from bench.common import (
    MODES,
    Measure,
    Mode,
    baseline_block,
    fresh_database,
    judged,
    new_document,
    percentiles,
    pg_problem,
    pg_server_version,
    pgbench_problem,
    skip,
    utc_now,
    verdict,
    write_result,
)
from bench.workers import Phase, WorkerPool

MEASURES = "B1 transitions/s at scale ({cases} cases, {events} events) ÷ on an empty database"
UNIT = "transitions/s"
PERSON_INDEX = "ix_audit_events_person_key_occurred_at"
TARGETS = {"lookup": 1 / 5, "access": 1 / 13, "auditor": 1 / 130, "storage": 1.0}
BUDGET_BYTES = 500
OPS_PER_SECOND = 2000          # every latency loop is bounded by count and by time


def _timed(op: Callable[[], object], seconds: float, unit: str) -> Measure:
    """Call ``op`` for ``seconds`` (and at most ``OPS_PER_SECOND`` × seconds times)."""
    latencies: list[float] = []
    started = time.perf_counter()
    end, limit = started + seconds, int(seconds * OPS_PER_SECOND) + 1
    while len(latencies) < limit and time.perf_counter() < end:
        t = time.perf_counter()
        op()
        latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - started
    p50, p95, p99 = percentiles(latencies)
    return Measure(len(latencies) / elapsed, unit, len(latencies), elapsed, p50, p95, p99)


def _p99_row(name: str, measures: str, base: dict[str, Any], result: Measure, target: float,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    base_p99 = (base["p99_ms_before"] + base["p99_ms_after"]) / 2
    ratio = base_p99 / result.p99 if result.p99 else 0.0
    noisy = base["drift"] > 0.10
    return {"name": name, "measures": measures, "baseline": base,
            "result": result.as_result(), "ratio": round(ratio, 4), "target": round(target, 4),
            "floor": None, "verdict": verdict(ratio, target, None, noisy), **(extra or {})}


# -- the read paths, measured in this process ----------------------------------------------
class Reads:
    def __init__(self, url: str, sizes: load_scale.Sizes) -> None:
        from coordinator.bootstrap import build
        from coordinator.persistence.database import make_engine
        from coordinator.testing import FakeClock

        self.engine = make_engine(url)
        self.clock = FakeClock(load_scale.T_END)
        self.c = build(engine=self.engine, clock=self.clock)
        self.sizes = sizes
        self.rng = random.Random(6)

    def close(self) -> None:
        self.engine.dispose()

    def _case(self) -> uuid.UUID:
        return load_scale.case_id(self.rng.randrange(self.sizes.cases))

    def lookup(self) -> None:
        with self.c.uow() as uow:
            uow.cases.get(self._case())

    def access_log(self, person: str | None = None) -> int:
        from coordinator.audit.events import ACCESS_KINDS

        now = load_scale.T_END
        key = person or load_scale.person(self.rng.randrange(self.sizes.cases))
        with self.c.uow() as uow:
            return len(uow.audit.query(person_key=key, kinds=ACCESS_KINDS,
                                       since=now - timedelta(days=3653), until=now))

    def auditor(self) -> int:
        from coordinator.cases.model import Actor

        since = load_scale.T_END - load_scale.SPAN + timedelta(
            days=self.rng.randrange(load_scale.SPAN.days - 30))
        pilot = self.rng.choice(load_scale.PILOTS)
        return len(self.c.pilot_consent_log(pilot, actor=Actor("bench-auditor", "auditor"),
                                            since=since, until=since + timedelta(days=30)))

    def explain_access_log(self) -> dict[str, Any]:
        """EXPLAIN exactly the statement ``access_log`` sends."""
        from sqlalchemy import event

        seen: list[tuple[str, Any]] = []

        def grab(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
            if "audit_events" in statement and "person_key" in statement:
                seen.append((statement, params))

        event.listen(self.engine, "before_cursor_execute", grab)
        try:
            rows = self.access_log(load_scale.person(0))
        finally:
            event.remove(self.engine, "before_cursor_execute", grab)
        statement, params = seen[-1]
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("EXPLAIN (FORMAT JSON) " + statement, params)
            plan = cur.fetchone()[0]
        finally:
            raw.close()
        indexes = sorted(_index_names(plan))
        return {"uses_person_index": PERSON_INDEX in indexes, "indexes": indexes,
                "rows_for_person_0": rows, "plan_top": plan[0]["Plan"]["Node Type"]}

    def storage(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            size, count = conn.exec_driver_sql(
                "SELECT pg_total_relation_size('audit_events'), count(*) FROM audit_events"
            ).one()
        return int(size), int(count)


def _index_names(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if "Index Name" in node:
            found.add(str(node["Index Name"]))
        for value in node.values():
            found |= _index_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _index_names(value)
    return found


def verify_case_cli(url: str, case: str) -> dict[str, Any]:
    """``coordinator audit verify --case`` on a loaded case, as an operator runs it."""
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "COORDINATOR_DATABASE_URL": url, "COORDINATOR_DATA_DIR": data}
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).with_name("coordinator")), "audit",
                               "verify", "--case", case], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    seconds = round(time.perf_counter() - started, 2)
    last = (done.stdout + done.stderr).strip().splitlines()[-1:]
    return {"case": case, "exit": done.returncode, "seconds": seconds, "output": last,
            "ok": done.returncode == 0 and "intakt" in done.stdout}


# -- the run -------------------------------------------------------------------------------
def _b1(pool: WorkerPool, url: str, ids: list[str], mode: Mode) -> Measure:
    return pool.measure(Phase(b1.FIRE, {"url": url, "ids": ids, "workers": b1.WORKERS},
                              mode.seconds, UNIT))


def _measures(sizes: load_scale.Sizes) -> str:
    return MEASURES.format(cases=f"{sizes.cases:,}", events=f"{sizes.events:,}")


def run(doc: dict[str, Any], mode: Mode, sizes: load_scale.Sizes, jobs: int) -> dict[str, Any]:
    secs = mode.baseline_seconds
    with fresh_database("coord_b6") as big, fresh_database("coord_bench") as empty, \
            fresh_database("coord_pgbench") as pgb, fresh_database("coord_base") as base, \
            WorkerPool(b1.WORKERS) as pool:
        loaded = load_scale.load(big, sizes, jobs=jobs, show=sys.stderr.isatty())
        print(f"loaded {loaded.rows} in {loaded.seconds:.1f} s", flush=True)
        verified = verify_case_cli(big, loaded.ringsaker_case)
        baselines.pgbench_init(pgb, mode.pgbench_scale)
        baselines.setup_psycopg(base, mode.cases)
        ids_empty = b1.load_cases(pool, empty, mode.cases, b1.WORKERS)
        ids_big = b1.load_cases(pool, big, mode.cases, b1.WORKERS)
        before = _b1(pool, empty, ids_empty, mode)
        at_scale = _b1(pool, big, ids_big, mode)
        after = _b1(pool, empty, ids_empty, mode)
        main = judged(_measures(sizes), baseline_block("B1 on an empty database", before, after),
                      at_scale, 0.80, None)
        select = Phase("bench.baselines:psycopg_select_op",
                       {"url": base, "rows": mode.cases, "workers": 1}, secs, "selects/s",
                       workers=1)
        reads = Reads(big, sizes)
        try:
            sel_before = pool.measure(select)
            lookup = _timed(reads.lookup, mode.seconds, "lookups/s")
            sel_after = pool.measure(select)
            n4_before = baselines.pgbench_run(pgb, 4, 2, secs, log=True)
            access = _timed(reads.access_log, mode.seconds, "extracts/s")
            auditor = _timed(reads.auditor, mode.seconds, "queries/s")
            n4_after = baselines.pgbench_run(pgb, 4, 2, secs, log=True)
            explain = reads.explain_access_log()
            size, events = reads.storage()
        finally:
            reads.close()
    n4 = baseline_block("pgbench-N4", n4_before, n4_after)
    access_row = _p99_row("B6 access log", "Person's access-log extract over 10 years, p99 "
                          "(pgbench p99 ÷ p99)", n4, access, TARGETS["access"],
                          {"explain": explain})
    if not explain["uses_person_index"]:
        access_row["verdict"] = "fail"
    per_event = size / max(1, events)
    variants = [
        _p99_row("B6 case lookup", "Case lookup by id, p99 (psycopg SELECT p99 ÷ p99)",
                 baseline_block("psycopg-txn SELECT", sel_before, sel_after), lookup,
                 TARGETS["lookup"]),
        access_row,
        _p99_row("B6 auditor query", "Consent changes in 30 days for one pilot, p99 "
                 "(pgbench p99 ÷ p99)", n4, auditor, TARGETS["auditor"]),
        {"name": "B6 storage", "measures": "Bytes per audit event, indexes included "
                                           "(budget ÷ bytes)",
         "baseline": {"name": "design budget", "unit": "B/event", "before": BUDGET_BYTES,
                      "after": BUDGET_BYTES, "used": BUDGET_BYTES, "drift": 0.0},
         "result": {"value": round(per_event, 1), "unit": "B/event", "p50": None,
                    "p95": None, "p99": None, "count": events, "bytes": size},
         "ratio": round(BUDGET_BYTES / per_event, 4), "target": TARGETS["storage"],
         "floor": None, "verdict": verdict(BUDGET_BYTES / per_event, 1.0, None, False)},
    ]
    doc.update({k: main[k] for k in
                ("measures", "baseline", "result", "ratio", "target", "floor", "verdict")})
    doc["variants"] = variants
    doc["setup"] = {"sizes": loaded.sizes, "rows": loaded.rows, "load_jobs": loaded.jobs,
                    "load_seconds": round(loaded.seconds, 1),
                    "load_copy_seconds": loaded.seconds_copy,
                    "load_index_seconds": loaded.seconds_indexes,
                    "load_analyze_seconds": loaded.seconds_analyze,
                    "b1_cases": mode.cases, "b1_workers": b1.WORKERS, "seconds": mode.seconds,
                    "verify_case": verified, "explain_access_log": explain}
    doc["notes"] += [
        f"Loaded {loaded.rows} with COPY in {loaded.seconds:.1f} s ({loaded.jobs} processes: "
        f"COPY {loaded.seconds_copy} s, indexes and constraints {loaded.seconds_indexes} s, "
        f"ANALYZE {loaded.seconds_analyze} s).",
        "B1 fires on cases it opens itself in each database (the same code and case shape "
        "in both), so the ratio isolates the size of the tables and indexes.",
        f"`coordinator audit verify --case {verified['case']}` exited {verified['exit']} "
        f"in {verified['seconds']} s: {' '.join(verified['output'])}",
        f"EXPLAIN of the access-log extract uses {', '.join(explain['indexes']) or 'no index'}"
        f" (top node {explain['plan_top']}).",
        "B3 at scale (the HTTP mix on the loaded database) is not run.",
        "One attempt only (the load is the expensive part); a baseline that drifted over 10 % "
        "makes its row noisy.",
    ]
    if not verified["ok"]:
        doc["verdict"] = "fail"
        doc["notes"].append("audit verify --case failed on a loaded case")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="smoke")
    parser.add_argument("--scale", type=float,
                        help="multiply the full sizes (default: 1 in full, 0.001 in smoke)")
    parser.add_argument("--jobs", type=int, default=2, help="loader processes")
    args = parser.parse_args(argv)
    mode = MODES[args.mode]
    sizes = load_scale.Sizes.scaled(args.scale if args.scale is not None
                                    else load_scale.SCALES[mode.name])
    started, started_at = time.monotonic(), utc_now()
    problem = pg_problem() or pgbench_problem()
    doc = new_document("b6", mode, started_at, None if problem else pg_server_version())
    doc["scale"] = sizes.cases / load_scale.FULL["cases"]
    if problem:
        skip(doc, _measures(sizes), "B1 on an empty database", UNIT, 0.80, None, problem)
    else:
        run(doc, mode, sizes, args.jobs)
    doc["duration_s"] = round(time.monotonic() - started, 1)
    write_result(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
