"""What every benchmark script shares: modes, PostgreSQL databases, the machine line,
percentiles, verdicts, noisy-run handling and the result file."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import os
import platform
import shutil
import sqlite3
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ADMIN_DSN = os.environ.get("COORDINATOR_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/test")
VERDICTS = ("pass", "below-target", "fail", "noisy", "skipped")
NOISE_LIMIT = 0.10          # baseline before/after may differ by at most 10 %


@dataclass(frozen=True)
class Mode:
    name: str
    seconds: float          # each timed phase of a subject
    baseline_seconds: int   # each timed phase of a baseline (pgbench takes whole seconds)
    pgbench_scale: int
    cases: int              # rows the PostgreSQL workload spreads over
    sqlite_cases: int
    max_attempts: int       # noisy runs are repeated up to this many runs in all
    attempt_budget: float   # no new attempt once a script has run this many seconds
    diag_seconds: float     # each phase of a diagnostic pair (baseline, then subject)


MODES = {
    "full": Mode("full", 20.0, 20, 10, 10_000, 10_000, 3, 1800.0, 10.0),
    "smoke": Mode("smoke", 1.0, 1, 1, 200, 100, 2, 8.0, 0.5),
}


@dataclass
class Measure:
    """One timed phase: a rate plus latency percentiles in milliseconds."""

    rate: float
    unit: str
    count: int
    seconds: float
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_result(self) -> dict[str, Any]:
        return {"value": round(self.rate, 1), "unit": self.unit, "p50": _ms(self.p50),
                "p95": _ms(self.p95), "p99": _ms(self.p99), "count": self.count,
                "seconds": round(self.seconds, 2)}


def parse_mode(argv: Sequence[str] | None, description: str | None = None) -> Mode:
    """``--mode smoke|full`` of a benchmark script's command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mode", choices=sorted(MODES), default="smoke")
    return MODES[parser.parse_args(argv).mode]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def percentiles(latencies_ms: Sequence[float]) -> tuple[float | None, ...]:
    """Nearest-rank p50, p95, p99 (None for an empty sample)."""
    if not latencies_ms:
        return (None, None, None)
    ordered = sorted(latencies_ms)
    n = len(ordered)
    return tuple(ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] for q in (0.50, 0.95, 0.99))


# -- verdicts --------------------------------------------------------------------------
def drift(before: float, after: float) -> float:
    return abs(after - before) / before if before > 0 else math.inf


def baseline_block(name: str, before: Measure, after: Measure) -> dict[str, Any]:
    """``used`` is the mean of the runs before and after the subject."""
    block: dict[str, Any] = {
        "name": name, "unit": before.unit, "before": round(before.rate, 1),
        "after": round(after.rate, 1), "used": round((before.rate + after.rate) / 2, 1),
        "drift": round(drift(before.rate, after.rate), 4),
    }
    if before.p99 is not None and after.p99 is not None:
        block["p99_ms_before"] = _ms(before.p99)
        block["p99_ms_after"] = _ms(after.p99)
    return block


def verdict(ratio: float, target: float, floor: float | None, noisy: bool) -> str:
    if noisy:
        return "noisy"
    if ratio >= target:
        return "pass"
    if floor is None or ratio >= floor:
        return "below-target"
    return "fail"


def judged(measures: str, baseline: dict[str, Any], result: Measure, target: float,
           floor: float | None) -> dict[str, Any]:
    """One row of the report: a subject result divided by its baseline."""
    ratio = result.rate / baseline["used"] if baseline["used"] else 0.0
    noisy = baseline["drift"] > NOISE_LIMIT
    return {"measures": measures, "baseline": baseline, "result": result.as_result(),
            "ratio": round(ratio, 4), "target": target, "floor": floor,
            "verdict": verdict(ratio, target, floor, noisy)}


def run_attempts(attempt: Callable[[], dict[str, Any]], mode: Mode,
                 started: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``attempt`` until one is not noisy, at most ``mode.max_attempts`` times and not
    after ``mode.attempt_budget`` seconds. With only noisy runs, return the median run
    (by ratio). Each attempt returns a dict with ``ratio`` and ``noisy``."""
    runs: list[dict[str, Any]] = []
    while len(runs) < mode.max_attempts:
        run = attempt()
        runs.append(run)
        if not run["noisy"]:
            return run, runs
        if time.monotonic() - started > mode.attempt_budget:
            break
    ordered = sorted(runs, key=lambda r: r["ratio"])
    return ordered[(len(ordered) - 1) // 2], runs


# -- PostgreSQL --------------------------------------------------------------------------
def pg_url(database: str, admin: str = ADMIN_DSN) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin).set(database=database).render_as_string(hide_password=False)


def _is_loopback(host: str | None) -> bool:
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def pg_problem(admin: str = ADMIN_DSN) -> str | None:
    """Why PostgreSQL cannot be used for a benchmark, or None when it can."""
    import psycopg
    from sqlalchemy.engine import make_url

    try:
        host = make_url(admin).host
    except Exception as exc:
        return f"COORDINATOR_BENCH_DSN is not a URL: {exc}"
    if not _is_loopback(host):
        return f"load generators talk to loopback only; refusing host {host!r}"
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()
        return f"PostgreSQL not reachable: {first[0] if first else type(exc).__name__}"
    return None


def pgbench_problem() -> str | None:
    return None if shutil.which("pgbench") else "pgbench not found on PATH"


@contextlib.contextmanager
def fresh_database(prefix: str, admin: str = ADMIN_DSN) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name, admin)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_server_version(admin: str = ADMIN_DSN) -> str | None:
    import psycopg

    try:
        with psycopg.connect(admin, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


# -- machine and provenance ----------------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine(pg_version: str | None) -> dict[str, Any]:
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "ram_gib": _ram_gib(),
            "os": platform.platform(), "python": platform.python_version(),
            "postgresql": pg_version, "sqlite": sqlite3.sqlite_version,
            "openssl": ssl.OPENSSL_VERSION, "load_avg_start": _load()}


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def git_commit() -> tuple[str, bool]:
    """(commit, dirty); ("unknown", False) outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=ROOT, capture_output=True, text=True, timeout=10,
                                check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return head or "unknown", bool(status)


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- result files ---------------------------------------------------------------------------
def new_document(benchmark: str, mode: Mode, started_at: datetime,
                 pg_version: str | None) -> dict[str, Any]:
    commit, dirty = git_commit()
    return {"benchmark": benchmark, "mode": mode.name, "commit": commit, "dirty": dirty,
            "started_at": started_at.isoformat(timespec="seconds"),
            "machine": machine(pg_version), "baseline": None, "result": None,
            "ratio": None, "target": None, "floor": None, "verdict": "skipped", "notes": []}


def skip(doc: dict[str, Any], measures: str, baseline: str, unit: str, target: float,
         floor: float | None, reason: str) -> dict[str, Any]:
    doc.update(measures=measures, target=target, floor=floor, verdict="skipped",
               baseline={"name": baseline, "unit": unit, "before": None, "after": None,
                         "used": None},
               result={"value": None, "unit": unit, "p50": None, "p95": None, "p99": None})
    doc["notes"].append(f"skipped: {reason}")
    return doc


def write_result(doc: dict[str, Any]) -> Path:
    problems = validate(doc)
    if problems:
        raise ValueError(f"invalid result document: {'; '.join(problems)}")
    doc["machine"]["load_avg_end"] = _load()     # other load on a shared machine
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}-{doc['benchmark']}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    print(f"RESULT {path}", flush=True)
    return path


REQUIRED: dict[str, type | tuple[type, ...]] = {
    "benchmark": str, "mode": str, "commit": str, "started_at": str, "machine": dict,
    "baseline": dict, "result": dict, "target": (int, float), "verdict": str, "notes": list}


def validate(doc: Any) -> list[str]:
    """Problems with a result document (empty when it is well formed)."""
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    problems = [f"{key}: missing or not {kind}" for key, kind in REQUIRED.items()
                if not isinstance(doc.get(key), kind)]
    if problems:
        return problems
    for key in ("name", "unit", "before", "after", "used"):
        if key not in doc["baseline"]:
            problems.append(f"baseline.{key} missing")
    for key in ("value", "unit", "p50", "p95", "p99"):
        if key not in doc["result"]:
            problems.append(f"result.{key} missing")
    if doc["verdict"] not in VERDICTS:
        problems.append(f"verdict {doc['verdict']!r} not one of {VERDICTS}")
    if doc["mode"] not in MODES:
        problems.append(f"mode {doc['mode']!r} unknown")
    if doc["verdict"] != "skipped" and not isinstance(doc.get("ratio"), int | float):
        problems.append("ratio missing")
    return problems


def script_main(benchmark: str, argv: Sequence[str] | None, description: str | None,
                run: Callable[[dict[str, Any], Mode, float], object], *, measures: str,
                baseline: str, unit: str, target: float, floor: float | None = None,
                pgbench: bool = False) -> int:
    """The ``main`` of a PostgreSQL benchmark script: parse the mode, record a skip
    (with the reason) when PostgreSQL (or pgbench) is missing, else ``run(doc, mode,
    started)``, then write the result file."""
    mode = parse_mode(argv, description)
    started, started_at = time.monotonic(), utc_now()
    problem = pg_problem() or (pgbench_problem() if pgbench else None)
    doc = new_document(benchmark, mode, started_at, None if problem else pg_server_version())
    if problem:
        skip(doc, measures, baseline, unit, target, floor, problem)
    else:
        run(doc, mode, started)
    doc["duration_s"] = round(time.monotonic() - started, 1)
    write_result(doc)
    return 0
