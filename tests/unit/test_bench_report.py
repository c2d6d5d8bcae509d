"""bench.report keeps the committed figures of benchmarks that were not rerun here."""

from __future__ import annotations

from typing import Any

from bench import report

MACHINE = {"cpu": "Test CPU", "cores": 2, "ram_gib": 8, "os": "Linux", "python": "3.11",
           "postgresql": "15", "sqlite": "3.40", "openssl": "OpenSSL 3"}


def result(bench: str, value: float, ratio: float, machine: dict[str, Any]) -> dict[str, Any]:
    return {"benchmark": bench, "mode": "full", "commit": "abcdef123456", "dirty": False,
            "started_at": "2026-11-23T12:00:00+00:00", "duration_s": 10.0,
            "machine": machine, "measures": f"{bench} thing",
            "baseline": {"name": "base", "unit": "tps", "before": 100, "after": 100,
                         "used": 100},
            "result": {"value": value, "unit": "ops/s", "p50": 1, "p95": 2, "p99": 3},
            "ratio": ratio, "target": 0.2, "floor": None, "verdict": "pass",
            "diagnostics": [{"name": f"{bench} diag", "value": 5, "unit": "x/s"}]}


def test_a_rerun_replaces_its_own_lines_and_keeps_the_others() -> None:
    first = report.render({"b1": result("b1", 10, 0.1, MACHINE),
                           "b5": result("b5", 50, 0.5, MACHINE)})
    doc = f"# Performance\n\n{first}\n\nprose\n"
    other = {**MACHINE, "cpu": "Other CPU"}
    second = report.render({"b1": result("b1", 20, 0.2, other)}, report.carried(doc))
    rows = [line for line in second.splitlines() if line.startswith("| B")]
    assert [r.split("|")[5].strip() for r in rows] == ["20 ops/s (p99 3.0 ms)",
                                                        "50 ops/s (p99 3.0 ms)"]
    assert "- [B5] b5 diag: 5 x/s" in second and "- [B1] b1 diag: 5 x/s" in second
    assert "Machine: Other CPU" in second and "Machine: Test CPU" in second
    runs = [line for line in second.splitlines() if line.startswith("- B")]
    assert runs[0].endswith("[Other CPU, 2 cores, 8 GiB RAM; Linux; Python 3.11; "
                            "PostgreSQL 15; SQLite 3.40; OpenSSL 3]")
    assert runs[1].startswith("- B5: ") and "Test CPU" in runs[1]
    # and the result survives one more round trip unchanged
    again = report.render({}, report.carried(f"x\n{second}\n"))
    assert again == second
