"""B8: embedded SQLite transitions per second, 1 process.

B1's workload (ringsaker ``record_outcome`` through the real ``Coordinator.fire``) on
SQLite with WAL + ``synchronous=FULL``, divided by ``sqlite-txn`` on the same file system
(target ≥ 0.20, floor 0.10). Diagnostic: ratio to ``orm-uow`` on SQLite (≥ 0.6).
Run: ``python -m bench.b8_sqlite --mode smoke|full``. ``COORDINATOR_BENCH_DIR`` chooses
the directory for the database files (default: the system temporary directory).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import baselines
from bench.b1_transitions import (
    FIRE,
    PILOT,
    TRIGGER,
    UNIT,
    committed,
    diagnostic,
    load_cases,
)
from bench.b1_transitions import NOTES as B1_NOTES
from bench.common import (
    Mode,
    baseline_block,
    judged,
    new_document,
    parse_mode,
    pg_server_version,
    run_attempts,
    utc_now,
    write_result,
)
from bench.workers import Phase, WorkerPool

MEASURES = "Embedded SQLite transitions/s, 1 process"
ORM_TARGET = 0.6


def filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts), or 'unknown'."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3 and resolved.startswith(fields[1]) and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


def attempt(pool: WorkerPool, app: str, base: str, ids: list[str], rows: int,
            mode: Mode) -> dict[str, Any]:
    secs = float(mode.baseline_seconds)
    txn = Phase("bench.baselines:sqlite_txn_op", {"path": base, "rows": rows}, secs, "txn/s",
                workers=1)
    before = pool.measure(txn)
    subject = pool.measure(Phase(FIRE, {"url": app, "ids": ids, "workers": 1}, mode.seconds,
                                 UNIT, workers=1))
    after = pool.measure(txn)
    row = judged(MEASURES, baseline_block("sqlite-txn", before, after), subject, 0.20, 0.10)
    return {"main": row, "ratio": row["ratio"], "noisy": row["verdict"] == "noisy",
            "committed": committed(subject)}


def run(doc: dict[str, Any], mode: Mode, started: float) -> dict[str, Any]:
    from bench.b1_transitions import transitions_recorded

    folder = os.environ.get("COORDINATOR_BENCH_DIR") or None
    with tempfile.TemporaryDirectory(prefix="coord-b8-", dir=folder) as tmp, \
            WorkerPool(1) as pool:
        app = f"sqlite:///{Path(tmp) / 'coordinator.db'}"
        base = str(Path(tmp) / "sqlite_txn.db")
        orm = f"sqlite:///{Path(tmp) / 'orm_uow.db'}"
        ids = load_cases(pool, app, mode.sqlite_cases, 1)
        baselines.setup_sqlite(base, mode.sqlite_cases)
        baselines.setup_orm(orm, mode.sqlite_cases)
        chosen, runs = run_attempts(
            lambda: attempt(pool, app, base, ids, mode.sqlite_cases, mode), mode, started)
        orm_uow = pool.measure(Phase("bench.baselines:orm_uow_op",
                                     {"url": orm, "rows": mode.sqlite_cases, "workers": 1},
                                     mode.diag_seconds, "txn/s", workers=1))
        paired = pool.measure(Phase(FIRE, {"url": app, "ids": ids, "workers": 1},
                                    mode.diag_seconds, UNIT, workers=1))
        recorded = transitions_recorded(app)
        fs = filesystem(Path(tmp))
    expected = sum(r["committed"] for r in runs) + committed(paired)
    doc.update({k: chosen["main"][k] for k in
                ("measures", "baseline", "result", "ratio", "target", "floor", "verdict")})
    doc["diagnostics"] = [dict(diagnostic("orm-uow (SQLite, 1 process)", orm_uow, "B8", paired),
                               target=ORM_TARGET)]
    doc["attempts"] = [{"ratio": r["ratio"], "verdict": r["main"]["verdict"],
                        "sqlite_txn_drift": r["main"]["baseline"]["drift"]} for r in runs]
    doc["setup"] = {"cases": len(ids), "workers": 1, "seconds": mode.seconds,
                    "baseline_seconds": mode.baseline_seconds,
                    "diagnostic_seconds": mode.diag_seconds, "filesystem": fs,
                    "pilot": PILOT, "trigger": TRIGGER}
    doc["audit_check"] = {"transitions_committed": expected, "case_events_found": recorded}
    doc["notes"] += [f"Database files on a {fs} file system, the same for subject and "
                     "baselines; SQLite with WAL, synchronous=FULL, BEGIN IMMEDIATE.",
                     *B1_NOTES[:2]]
    if recorded != expected:
        doc["verdict"] = "fail"
        doc["notes"].append(f"case_events holds {recorded} transition rows, the worker "
                            f"committed {expected}: the audit trail does not match")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    mode = parse_mode(argv, __doc__)
    started, started_at = time.monotonic(), utc_now()
    doc = new_document("b8", mode, started_at, pg_server_version())
    run(doc, mode, started)
    doc["duration_s"] = round(time.monotonic() - started, 1)
    write_result(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
