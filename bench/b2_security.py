"""B2: what encryption and the audit chain cost, on PostgreSQL, 1 process.

One op is one B1 transition (``Coordinator.fire``, ringsaker ``record_outcome`` by the
therapist) plus one read of that case's shared, 1 KiB mestringsplan by the Nav veileder
through the gate (``Coordinator.documents.read``). The same op runs six times in one
process, alternating **on** and **off**, 3 runs each:

- **on**: ``bootstrap.build(settings, engine=...)`` as in production: AES-256-GCM
  documents, data keys wrapped by a real ``LocalFileKeyProvider`` in a temporary data
  directory, every change and every read a hash-chained audit event.
- **off**: the same ``build`` with three bench-only overrides, which no setting can
  reach: ``cipher=PlaintextCipher()`` (the document is stored and read as it is),
  ``keys=PlainKeyProvider()`` (a data key is "wrapped" as itself) and ``uow=`` a
  ``NoAuditUnitOfWork`` (``SqlUnitOfWork`` whose audit log appends nothing: no chain
  head locked or moved, no audit rows).

Consent checks stay on in both: they are pure CPU over the consent records that are
loaded with the case in the same statement, so there is nothing to switch off. Result:
mean(on) ÷ mean(off) ops/s, target ≥ 0.90, no floor; the off runs are the baseline, and
when they differ by more than 10 % the run is ``noisy`` and repeated (``run_attempts``).
Each variant has its own cases in the same database (the off documents are plaintext).
Diagnostic, not judged: a seventh run reads the on cases with encryption on and the audit
off, to tell the two costs apart.

Run: ``python -m bench.b2_security --mode smoke|full``.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Self
from uuid import UUID

from bench.b1_transitions import PHASES, PILOT, TRIGGER, open_cases
from bench.common import (
    Measure,
    Mode,
    drift,
    fresh_database,
    judged,
    run_attempts,
    script_main,
)
from bench.workers import Phase, WorkerPool
from coordinator.audit.events import AuditEvent
from coordinator.cases.document_model import Binding
from coordinator.cases.model import Actor
from coordinator.persistence.audit_store import SqlAuditLog
from coordinator.persistence.unit_of_work import SqlUnitOfWork
from coordinator.ports import WrappedKey

FORM = "v1"                          # ringsaker's consent form v1 covers every dialogue purpose
UNIT = "ops/s"
TARGET = 0.90
VARIANTS = ("on", "off")
CRYPTO = "encryption_only"           # diagnostic: on's cases, encryption on, audit off
ROUNDS = 3                           # on, off, on, off, on, off
OP = "bench.b2_security:op_factory"
MEASURES = ("B1 transition + Nav read of a shared 1 KiB mestringsplan, encryption and "
            "audit on (1 process)")
BASELINE = "the same with encryption and audit off"
# cases per variant, seconds per run, no new attempt after this many seconds
SIZES = {"full": (800, 10.0, 120.0), "smoke": (10, 0.5, 0.0)}
WARMUP = {"full": (20, 1.0), "smoke": (5, 0.2)}

THERAPIST = Actor("bench-therapist", "kognitiv_terapeut")    # writes and shares the plan
NAV = Actor("bench-nav", "nav_veileder")                      # reads it under the consent
PLAN = ("Mestringsplan: gradert retur til arbeid, to timer om dagen de første to ukene, "
        "deretter fire. Eksponeringstrening for panikkangst tre ganger i uken. ")
PLAN = (PLAN * (1024 // len(PLAN) + 1))[:1024]


# -- bench-only overrides (never reachable through settings) ------------------------------
class PlaintextCipher:
    """A ``DocumentCipher`` that does not encrypt: the sealed bytes are the text."""

    def new_key(self) -> bytes:
        return bytes(32)

    def seal(self, key: bytes, plaintext: bytes, binding: Binding) -> bytes:
        return plaintext

    def open(self, key: bytes, sealed: bytes, binding: Binding) -> bytes:
        return sealed


class PlainKeyProvider:
    """A ``KeyProvider`` that wraps a data key as itself (no KEK, no file, no state)."""

    KEK = "bench-plain"

    def current_kek(self) -> str:
        return self.KEK

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        return WrappedKey(self.KEK, data_key)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        return wrapped.blob

    def rotate(self) -> str:
        return self.KEK

    def retire(self, kek_id: str) -> None:
        return None


class _NoAuditLog(SqlAuditLog):
    """Appends nothing, so ``flush`` has nothing to chain (the case event is still
    inserted: ``ride`` runs it on its own when no audit event is pending)."""

    def append(self, event: AuditEvent) -> None:
        return None


class NoAuditUnitOfWork(SqlUnitOfWork):
    def __enter__(self) -> Self:
        super().__enter__()
        self.audit = _NoAuditLog(self.session)
        return self


def build_variant(variant: str, engine: Any, data_dir: str) -> Any:
    from coordinator.bootstrap import build
    from coordinator.config import Settings
    from coordinator.crypto.key_file import LocalFileKeyProvider
    from coordinator.persistence.mapping import start_mappers
    from coordinator.persistence.reminders import SqlOutboxStore

    settings = Settings(data_dir=Path(data_dir))
    if variant == "on":
        c = build(settings, engine=engine)
        if not isinstance(c.keys, LocalFileKeyProvider):
            raise RuntimeError(f"B2 on needs the keyring file provider, got {c.keys!r}")
        return c
    start_mappers()         # as build() does for its own unit of work: before any Case
    plain = {"keys": PlainKeyProvider(), "cipher": PlaintextCipher()} if variant == "off" \
        else {}             # CRYPTO: the real cipher and keyring, the audit off
    return build(settings, engine=engine, uow=lambda: NoAuditUnitOfWork(engine),
                 outbox_store=SqlOutboxStore(engine), **plain)


# -- worker-side functions (run in spawned processes) -------------------------------------
def create_cases(params: dict[str, Any], index: int) -> list[list[str]]:
    """Open ``count`` cases of one variant, each with a consent covering the Nav veileder
    reading the mestringsplan, and the therapist's mestringsplan shared with Nav.
    Returns [case id, document id] pairs."""
    from coordinator.cases.commands import GrantConsent
    from coordinator.persistence.database import make_engine

    engine = make_engine(params["url"])
    c = build_variant(params["variant"], engine, params["data_dir"])
    pairs: list[list[str]] = []
    try:
        for gp, case in open_cases(c, params, index, (THERAPIST, NAV)):
            c.grant_consent(GrantConsent(
                case.id, gp, frozenset({"coordination", "share_mestringsplan"}),
                frozenset({"kartlegging", "mestringsplan"}), frozenset({"nav"}), "digital",
                FORM))
            doc = c.documents.write(case.id, actor=THERAPIST, kind="mestringsplan",
                                    category="mestringsplan", text=PLAN)
            c.documents.share(case.id, doc.id, actor=THERAPIST, party="nav")
            pairs.append([str(case.id), str(doc.id)])
    finally:
        engine.dispose()
    return pairs


def op_factory(params: dict[str, Any], index: int) -> tuple[Callable[[], bool], Any]:
    """One transition and one gated document read per call."""
    from coordinator.cases.commands import FireTrigger
    from coordinator.errors import ConcurrentUpdate
    from coordinator.persistence.database import make_engine

    engine = make_engine(params["url"])
    c = build_variant(params["variant"], engine, params["data_dir"])
    pairs = [(UUID(a), UUID(b)) for a, b in params["pairs"]]
    rng = random.Random(index)

    def op() -> bool:
        case_id, doc_id = rng.choice(pairs)
        try:
            c.fire(FireTrigger(case_id, TRIGGER, THERAPIST, {"phase": rng.choice(PHASES)}))
        except ConcurrentUpdate:
            return False
        if c.documents.read(case_id, doc_id, actor=NAV).text != PLAN:
            raise RuntimeError(f"document {doc_id} did not read back as written")
        return True

    return op, engine.dispose


# -- parent side ---------------------------------------------------------------------------
def load(pool: WorkerPool, url: str, data_dir: str, count: int) -> dict[str, list[list[str]]]:
    """Both variants' cases at once, one worker each."""
    from coordinator.persistence import migrate
    from coordinator.persistence.database import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    batches = pool.call("bench.b2_security:create_cases", [
        {"url": url, "data_dir": data_dir, "variant": v, "count": count, "seed": i,
         "max_seconds": 600} for i, v in enumerate(VARIANTS)])
    return dict(zip(VARIANTS, batches, strict=True))


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def mean_of(runs: list[Measure]) -> Measure:
    """The runs' mean rate; latency percentiles are the median of the runs' percentiles."""
    return Measure(statistics.fmean(m.rate for m in runs), UNIT, sum(m.count for m in runs),
                   sum(m.seconds for m in runs), _median([m.p50 for m in runs]),
                   _median([m.p95 for m in runs]), _median([m.p99 for m in runs]))


def off_baseline(off: list[Measure]) -> dict[str, Any]:
    """The off runs as a baseline: first and last, the mean used, and as drift the spread
    between the slowest and the fastest off run."""
    rates = [m.rate for m in off]
    return {"name": BASELINE, "unit": UNIT, "before": round(rates[0], 1),
            "after": round(rates[-1], 1), "used": round(statistics.fmean(rates), 1),
            "drift": round(drift(min(rates), max(rates)), 4),
            "p99_ms_before": _ms(off[0].p99), "p99_ms_after": _ms(off[-1].p99)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def attempt(pool: WorkerPool, url: str, data_dir: str, pairs: dict[str, list[list[str]]],
            seconds: float, warmup: tuple[int, float]) -> dict[str, Any]:
    runs: dict[str, list[Measure]] = {v: [] for v in VARIANTS}
    order: list[dict[str, Any]] = []
    for _ in range(ROUNDS):
        for variant in VARIANTS:
            m = pool.measure(Phase(OP, {"url": url, "data_dir": data_dir, "variant": variant,
                                        "pairs": pairs[variant]}, seconds, UNIT,
                                   warmup_ops=warmup[0], warmup_seconds=warmup[1],
                                   workers=1))
            runs[variant].append(m)
            order.append({"variant": variant, "rate": round(m.rate, 1), "count": m.count,
                          "p50_ms": _ms(m.p50), "p99_ms": _ms(m.p99)})
    # Diagnostic: where the cost lies. On's cases (sealed for real) read with encryption
    # on and the audit off, once, after the six runs.
    runs[CRYPTO] = [pool.measure(Phase(
        OP, {"url": url, "data_dir": data_dir, "variant": CRYPTO, "pairs": pairs["on"]},
        seconds, UNIT, warmup_ops=warmup[0], warmup_seconds=warmup[1], workers=1))]
    row = judged(MEASURES, off_baseline(runs["off"]), mean_of(runs["on"]), TARGET, None)
    committed = {v: sum(m.count + int(m.extra.get("warmup", 0)) for m in runs[v])
                 for v in runs}
    crypto = runs[CRYPTO][0]
    diagnostic = {"name": "encryption on, audit off (on's cases, one run after the six; "
                          "ratio to the off mean)",
                  "value": round(crypto.rate, 1), "unit": UNIT, "p99_ms": _ms(crypto.p99),
                  "ratio": round(crypto.rate / row["baseline"]["used"], 4)
                  if row["baseline"]["used"] else None}
    return {"main": row, "ratio": row["ratio"], "noisy": row["verdict"] == "noisy",
            "runs": order, "committed": committed, "diagnostic": diagnostic}


def checks(url: str, pairs: dict[str, list[list[str]]],
           committed: dict[str, int]) -> dict[str, Any]:
    """What the database shows: every transition of both variants recorded, an audited
    transition and read for each on op and none for the off ops, the on documents sealed
    and the off ones plaintext."""
    from sqlalchemy import func, select

    from coordinator.audit.events import CASE_PREFIX, DATA_READ
    from coordinator.persistence.database import make_engine
    from coordinator.persistence.tables import audit_events, case_events, documents

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            def count(table: Any, *where: Any) -> int:
                return int(conn.scalar(select(func.count()).select_from(table)
                                       .where(*where)) or 0)

            def sealed(variant: str) -> bytes:
                doc_id = UUID(pairs[variant][0][1])
                return bytes(conn.scalar(select(documents.c.sealed)
                                         .where(documents.c.id == doc_id)) or b"")

            off_ids = [UUID(case_id) for case_id, _doc in pairs["off"]]
            return {
                "transitions_committed": sum(committed.values()),
                "case_events_found": count(case_events, case_events.c.kind == "transitioned"),
                "on_ops_committed": committed["on"],
                "audited_transitions": count(
                    audit_events, audit_events.c.kind == CASE_PREFIX + "transitioned"),
                "audited_reads": count(audit_events, audit_events.c.kind == DATA_READ),
                "off_audit_events": count(audit_events, audit_events.c.case_id.in_(off_ids)),
                "on_document_is_plaintext": PLAN.encode() in sealed("on"),
                "off_document_is_plaintext": sealed("off") == PLAN.encode(),
            }
    finally:
        engine.dispose()


def problems_in(found: dict[str, Any]) -> list[str]:
    out = []
    if found["case_events_found"] != found["transitions_committed"]:
        out.append(f"case_events holds {found['case_events_found']} transitions, the runs "
                   f"committed {found['transitions_committed']}")
    for key in ("audited_transitions", "audited_reads"):
        if found[key] != found["on_ops_committed"]:
            out.append(f"{key}: {found[key]} audit events for {found['on_ops_committed']} "
                       f"on ops")
    if found["off_audit_events"]:
        out.append(f"the off variant wrote {found['off_audit_events']} audit events")
    if found["on_document_is_plaintext"] or not found["off_document_is_plaintext"]:
        out.append("the on document is not sealed, or the off one is not plaintext")
    return out


def run(doc: dict[str, Any], mode: Mode, started: float) -> dict[str, Any]:
    count, seconds, budget = SIZES[mode.name]
    rules = replace(mode, attempt_budget=budget)
    with fresh_database("coord_b2") as url, tempfile.TemporaryDirectory() as data_dir, \
            WorkerPool(len(VARIANTS)) as pool:
        t = time.perf_counter()
        pairs = load(pool, url, data_dir, count)
        load_s = time.perf_counter() - t
        chosen, attempts = run_attempts(
            lambda: attempt(pool, url, data_dir, pairs, seconds, WARMUP[mode.name]),
            rules, started)
        found = checks(url, pairs, {v: sum(a["committed"][v] for a in attempts)
                                    for v in (*VARIANTS, CRYPTO)})
    doc.update({k: chosen["main"][k] for k in
                ("measures", "baseline", "result", "ratio", "target", "floor", "verdict")})
    doc["runs"] = chosen["runs"]
    doc["diagnostics"] = [chosen["diagnostic"]]
    doc["attempts"] = [{"ratio": a["ratio"], "verdict": a["main"]["verdict"],
                        "off_drift": a["main"]["baseline"]["drift"]} for a in attempts]
    doc["setup"] = {"cases_per_variant": count, "workers": 1, "seconds_per_run": seconds,
                    "runs": ROUNDS * len(VARIANTS) + 1, "document_bytes": len(PLAN.encode()),
                    "pilot": PILOT, "trigger": TRIGGER, "load_seconds": round(load_s, 1)}
    doc["checks"] = found
    doc["notes"] += [
        "One op: Coordinator.fire(record_outcome) by the therapist (B1's transition) plus "
        "Coordinator.documents.read of the case's shared 1 KiB mestringsplan by the Nav "
        "veileder through the gate, in 1 process; on and off alternate, 3 runs each; "
        "ratio = mean(on) / mean(off); the off runs' spread (slowest to fastest) is the "
        "drift that makes a run noisy.",
        "On: bootstrap.build(settings, engine=...) unchanged: AES-256-GCM documents (a read "
        "unwraps the case's shared data key through a LocalFileKeyProvider in a temporary "
        "data directory, then decrypts), hash-chained audit events for the transition and "
        "the read (the case's chain head locked and moved).",
        "Off: bootstrap.build overrides that no setting reaches (bench/b2_security.py): "
        "cipher=PlaintextCipher (stored and read as is), keys=PlainKeyProvider (a data key "
        "wrapped as itself), uow=NoAuditUnitOfWork (SqlUnitOfWork whose audit log appends "
        "nothing: no audit rows, no chain head). Everything else is the same code: the "
        "need-to-know check, guards, the version-checked case update, the case_events row, "
        "the share and category checks, the SHA-256 digest of the stored bytes.",
        "Diagnostic: one more run on the on cases with encryption on and the audit off "
        "(the real cipher and keyring, NoAuditUnitOfWork), to tell the two costs apart.",
        "Consent checks stay on in both variants: they are pure CPU over the consent "
        "records loaded with the case in the same statement, so there is no I/O to turn "
        "off.",
        f"Each variant has its own {count} cases in the same database (the off documents "
        f"are plaintext); loaded in {load_s:.1f} s by two processes.",
    ]
    bad = problems_in(found)
    if bad:
        doc["verdict"] = "fail"
        doc["notes"] += bad
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    return script_main("b2", argv, __doc__, run,
                       measures=MEASURES, baseline=BASELINE, unit=UNIT, target=TARGET)


if __name__ == "__main__":
    raise SystemExit(main())
