"""Run benchmark scripts, check their result files, then report.

``python -m bench.run --mode smoke|full [--only b1,b8]``

Each script runs in its own interpreter. The exit status is non-zero only when a script
crashed, timed out or wrote no valid result (and, under ``CI=true``, when a benchmark was
skipped, since CI must provide PostgreSQL and pgbench). Speed is never asserted here.
Full mode rewrites the table in docs/performance.md; smoke mode renders it without
writing, so a smoke run never replaces committed full-mode figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import report
from bench.common import MODES, ROOT, validate

SCRIPTS = {"b1": "bench.b1_transitions", "b2": "bench.b2_security", "b3": "bench.b3_http",
           "b4": "bench.b4_reminder_drain", "b5": "bench.b5_audit_verify",
           "b7": "bench.b7_key_rotation", "b8": "bench.b8_sqlite"}
# Opt-in only (``--only b6``, ``make bench-scale``): loading 1 M cases is no smoke test.
OPT_IN = {"b6": "bench.b6_scale"}
TIMEOUT = {"smoke": 180, "full": 3600}
OPT_IN_TIMEOUT = {"smoke": 600, "full": 6 * 3600}
IN_CI = os.environ.get("CI", "").lower() == "true"


def run_script(key: str, mode: str) -> str | None:
    """Run one script; return a problem, or None when it wrote a valid result."""
    started = time.monotonic()
    timeout = (OPT_IN_TIMEOUT if key in OPT_IN else TIMEOUT)[mode]
    try:
        done = subprocess.run([sys.executable, "-m", {**SCRIPTS, **OPT_IN}[key], "--mode", mode],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"{key}: timed out after {timeout} s"
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        return f"{key}: exited with status {done.returncode}"
    paths = [line.split(" ", 1)[1] for line in done.stdout.splitlines()
             if line.startswith("RESULT ")]
    if not paths:
        return f"{key}: wrote no result file"
    try:
        doc = json.loads(Path(paths[-1]).read_text())
    except (OSError, ValueError) as exc:
        return f"{key}: unreadable result {paths[-1]}: {exc}"
    problems = validate(doc)
    if problems:
        return f"{key}: invalid result {paths[-1]}: {'; '.join(problems)}"
    print(f"== {key} ({mode}): verdict {doc['verdict']}, ratio {doc.get('ratio')}, "
          f"{time.monotonic() - started:.1f} s", flush=True)
    if IN_CI and doc["verdict"] == "skipped":
        return f"{key}: skipped under CI=true: {'; '.join(doc['notes'])}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run benchmarks and update the report.")
    parser.add_argument("--mode", choices=sorted(MODES), default="smoke")
    parser.add_argument("--only", default=",".join(SCRIPTS),
                        help="comma-separated benchmarks, e.g. b1,b8 (b6 only when named)")
    args = parser.parse_args(argv)
    selected = [k.strip().lower() for k in args.only.split(",") if k.strip()]
    known = {**SCRIPTS, **OPT_IN}
    unknown = [k for k in selected if k not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    started = time.monotonic()
    problems = [p for key in selected if (p := run_script(key, args.mode)) is not None]
    report.main([] if args.mode == "full" else ["--dry-run"])
    print(f"== bench.run {args.mode}: {len(selected)} script(s) in "
          f"{time.monotonic() - started:.1f} s", flush=True)
    for p in problems:
        print(f"FAILED {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
