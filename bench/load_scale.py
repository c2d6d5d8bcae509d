"""Load a PostgreSQL database at B6's scale with COPY (psycopg 3), fast.

Full size: 1,000,000 cases, 10,000,000 audit events, 3,000,000 consent records and
2,000,000 outbox rows (reminders and notices), plus the team members and case events the
cases need. ``--scale`` multiplies every count (``--mode smoke`` is 0.001).

How the rows are made:

- One **template case per pilot** is opened through the real ``Coordinator`` (a fastlege
  referral with the bench therapist on the team and one consent, as B1 opens its cases).
  Its rows in ``cases``, ``case_members``, ``case_events``, ``consents`` and ``outbox``
  are read back as COPY text and cloned per case with new ids, the person's key and
  times spread over ten years, so every loaded case reads back like a real one.
- **Audit events are real**: ``coordinator.audit.events.seal`` builds each canonical body
  and chains it per case (ten kinds: opened, member added, consents granted and
  withdrawn, transitions, reads, views), and ``audit_heads`` holds every chain's head, so
  ``coordinator audit verify --case`` passes on a loaded case and new events continue the
  chains. Events are written round-robin over each part's cases, so a case's events are
  spread over the table as they are in production, not stored side by side.
- Secondary indexes, unique and foreign-key constraints of the loaded tables are dropped
  first and rebuilt after the load (faster than maintaining them row by row); then
  ``ANALYZE``. ``--jobs`` parts generate and COPY disjoint case ranges in parallel
  processes, streaming in chunks; a rich progress display shows rows per table.

Run: ``python -m bench.load_scale [--mode smoke|full] [--scale F] [--jobs N] [--keep]``
into a fresh database, dropped afterwards (``--keep``: kept, and its URL printed). B6
calls ``load()``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import queue
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

FULL = {"cases": 1_000_000, "events": 10_000_000, "consents": 3_000_000, "outbox": 2_000_000}
SCALES = {"full": 1.0, "smoke": 0.001}
PILOTS = ("ringsaker", "ha", "lillestrom", "stovner")
T_END = datetime(2026, 11, 1, tzinfo=UTC)          # cases are spread over ten years before
SPAN = timedelta(days=3652)
CLONED = ("cases", "case_members", "case_events", "consents", "outbox")
BULK = (*CLONED, "audit_events", "audit_heads")
CHUNK = 5000
EVENT_COLUMNS = ("stream", "seq", "occurred_at", "kind", "case_id", "person_key", "actor_id",
                 "actor_role", "actor_org", "purpose", "category", "audience", "consent_id",
                 "outcome", "body", "prev_hash", "hash")
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class Sizes:
    cases: int
    events: int
    consents: int
    outbox: int

    @classmethod
    def scaled(cls, factor: float) -> Sizes:
        return cls(**{k: max(1, round(v * factor)) for k, v in FULL.items()})

    def per_case(self, count: int, i: int) -> int:
        """Rows case ``i`` gets so that the total over all cases is ``count``."""
        return count * (i + 1) // self.cases - count * i // self.cases


@dataclass
class LoadReport:
    sizes: dict[str, int]
    rows: dict[str, int]
    jobs: int
    seconds_copy: float
    seconds_indexes: float
    seconds_analyze: float
    ringsaker_case: str            # a loaded case, for ``audit verify --case``
    persons: int

    @property
    def seconds(self) -> float:
        return self.seconds_copy + self.seconds_indexes + self.seconds_analyze


def case_id(i: int) -> uuid.UUID:
    return uuid.UUID(int=(0xB6 << 120) | i)


def person(i: int) -> str:
    return f"person-{i:08d}"


def pilot_of(i: int) -> str:
    return PILOTS[i % len(PILOTS)]


def case_time(i: int, cases: int) -> datetime:
    """Case ``i`` opens at an even spread over the ten years before ``T_END``, less a
    month so its events fit."""
    return T_END - SPAN + (SPAN - timedelta(days=31)) * (i / max(1, cases))


def _n(value: object) -> str:
    """A generated id or code (never a tab, newline or backslash) as COPY text."""
    return "\\N" if value is None else str(value)


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_ESCAPE)


# -- templates ---------------------------------------------------------------------------
def _columns(table: str) -> list[str]:
    from coordinator.persistence import tables

    t = tables.metadata.tables[table]
    return [c.name for c in t.columns if not (c.name == "id" and c.autoincrement is True
                                               and table == "case_events")]


def make_templates(url: str) -> dict[str, dict[str, list[list[str]]]]:
    """Open one case per pilot through the Coordinator; return pilot -> table -> its
    rows as COPY text fields (in ``_columns`` order)."""
    import psycopg

    from bench.b1_transitions import THERAPIST
    from coordinator.bootstrap import build
    from coordinator.cases.commands import GrantConsent, OpenCase
    from coordinator.cases.model import Actor
    from coordinator.demo import referral
    from coordinator.persistence.database import make_engine
    from coordinator.testing import FakeClock

    engine = make_engine(url)
    clock = FakeClock(T_END)
    c = build(engine=engine, clock=clock)
    gp = Actor("bench-gp", "fastlege", "974589095")
    templates: dict[str, dict[str, list[list[str]]]] = {}
    try:
        for pilot in PILOTS:
            channel, profile = referral(pilot, clock.now().date(), random.Random(6))
            case = c.open_case(OpenCase(pilot, channel, profile, gp, subject_id="template",
                                        team=(THERAPIST,)))
            c.grant_consent(GrantConsent(case.id, gp, frozenset({"coordination"}),
                                         frozenset({"kartlegging"}), frozenset({"nav"}),
                                         "digital", "v1"))
            templates[pilot] = _template_rows(url, case.id)
    finally:
        engine.dispose()
    with psycopg.connect(_dsn(url)) as conn:           # the templates were only patterns
        for table in ("outbox", "consents", "case_events", "case_members", "audit_events",
                      "audit_heads", "cases"):
            conn.execute(f"DELETE FROM {table}")
    return templates


def _template_rows(url: str, cid: uuid.UUID) -> dict[str, list[list[str]]]:
    import psycopg

    out: dict[str, list[list[str]]] = {}
    with psycopg.connect(_dsn(url)) as conn, conn.cursor() as cur:
        for table in CLONED:
            key = "id" if table == "cases" else "case_id"
            cols = ", ".join(_columns(table))
            sql = f"COPY (SELECT {cols} FROM {table} WHERE {key} = '{cid}') TO STDOUT"
            data = bytearray()
            with cur.copy(sql) as copy:
                for chunk in copy:
                    data += chunk
            out[table] = [line.split("\t") for line in data.decode().splitlines()]
    return out


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# -- indexes -----------------------------------------------------------------------------
def drop_secondary(conn: Any) -> list[str]:
    """Drop the loaded tables' unique and foreign-key constraints and plain indexes (not
    primary keys); return the statements that rebuild them, foreign keys last."""
    names = list(BULK)
    cons = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype "
        "FROM pg_constraint c WHERE c.contype IN ('u', 'f') "
        "AND c.conrelid::regclass::text = ANY(%s)", (names,)).fetchall()
    idx = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)", (names,)).fetchall()
    rebuild = [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, k in cons if k == "u"]
    rebuild += [d for _, d in idx]
    rebuild += [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, k in cons if k == "f"]
    for t, n, _, _k in sorted(cons, key=lambda c: c[3] != "f"):     # foreign keys first
        conn.execute(f'ALTER TABLE {t} DROP CONSTRAINT "{n}"')
    for name, _ in idx:
        conn.execute(f"DROP INDEX {name}")
    return rebuild


# -- one part: a range of cases ----------------------------------------------------------
class _Writer:
    """COPY text lines into one table, written in chunks."""

    def __init__(self, cur: Any, table: str, columns: Sequence[str],
                 report: Callable[[str, int], None]) -> None:
        self.copy_cm = cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self.copy_cm.__enter__()
        self.table, self.report = table, report
        self.lines: list[str] = []

    def add(self, fields: Sequence[str] | str) -> None:
        self.lines.append(fields if isinstance(fields, str) else "\t".join(fields))
        if len(self.lines) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.copy.write("\n".join(self.lines) + "\n")
            self.report(self.table, len(self.lines))
            self.lines = []

    def close(self) -> None:
        self.flush()
        self.copy_cm.__exit__(None, None, None)


def _clone(fields: list[str], cols: dict[str, int], changes: dict[str, str]) -> list[str]:
    out = list(fields)
    for name, value in changes.items():
        if name in cols:
            out[cols[name]] = value
    return out


_KINDS = ("case_opened", "case_member_added", "consent_granted", "case_transitioned",
          "data_read", "case_viewed", "consent_granted", "case_transitioned", "data_read",
          "consent_withdrawn")


def _event(n: int, cid: uuid.UUID, i: int, at: datetime, consents: list[uuid.UUID],
           rng: random.Random) -> Any:
    from coordinator.audit.events import AuditEvent

    kind = _KINDS[n % len(_KINDS)]
    common: dict[str, Any] = {"case_id": cid, "person_key": person(i)}
    if kind in ("data_read", "case_viewed"):
        return AuditEvent(kind, at, f"nav-{rng.randrange(5000)}", "nav_veileder",
                          actor_org="889640782", purpose="coordination",
                          category="kartlegging" if kind == "data_read" else None,
                          consent_id=consents[0] if consents else None,
                          data={"basis": "consent"} if kind == "data_read"
                          else {"categories": ["kartlegging", "mestringsplan"]}, **common)
    if kind.startswith("consent_"):
        consent = consents[(n // len(_KINDS)) % len(consents)] if consents else None
        return AuditEvent(kind, at, "bench-gp", "fastlege", actor_org="974589095",
                          consent_id=consent, purpose="coordination",
                          data={"categories": ["kartlegging"], "parties": ["nav"],
                                "purposes": ["coordination"], "method": "digital",
                                "form": "v1"}, **common)
    if kind == "case_member_added":
        return AuditEvent(kind, at, "bench-gp", "fastlege", actor_org="974589095",
                          data={"member": "bench-therapist", "role": "kognitiv_terapeut"},
                          **common)
    if kind == "case_opened":
        return AuditEvent(kind, at, "bench-gp", "fastlege", actor_org="974589095",
                          data={"pilot": pilot_of(i), "state": "referred", "version": 1},
                          **common)
    return AuditEvent(kind, at, "bench-gp", "fastlege", actor_org="974589095",
                      data={"from": "intake", "to": "consent", "trigger": "complete_intake",
                            "workflow": [pilot_of(i), 1]}, **common)


class _Part:
    """Cases ``low``..``high``-1 and everything that belongs to them, as COPY text."""

    def __init__(self, sizes: Sizes, low: int, high: int,
                 templates: dict[str, dict[str, list[list[str]]]]) -> None:
        self.s, self.low, self.high, self.templates = sizes, low, high, templates
        self.index = {t: {c: k for k, c in enumerate(_columns(t))} for t in CLONED}
        self.consent_ids: dict[int, list[uuid.UUID]] = {}
        self.heads: dict[int, tuple[int, str]] = {}
        self.rng = random.Random(low)

    def cloned(self, table: str) -> Iterator[list[str]]:
        fallback = next((t[table] for t in self.templates.values() if t[table]), [])
        col = self.index[table]
        for i in range(self.low, self.high):
            tpl = self.templates[pilot_of(i)][table] or fallback
            if not tpl:
                continue
            cid, at = case_id(i), case_time(i, self.s.cases)
            when = _text(at)
            base = {"case_id": str(cid), "subject_id": person(i)}
            if table == "cases":
                yield _clone(tpl[0], col, {**base, "id": str(cid), "referred_at": when,
                                           "updated_at": when})
            elif table in ("case_members", "case_events"):
                for row in tpl:
                    yield _clone(row, col, {**base, "added_at": when, "occurred_at": when})
            elif table == "consents":
                ids = self.consent_ids[i] = []
                for k in range(self.s.per_case(self.s.consents, i)):
                    ids.append(uuid.UUID(int=(0xC0 << 120) | (i << 16) | k))
                    t = _text(at + timedelta(days=3 * k + 1))
                    yield _clone(tpl[k % len(tpl)], col, {
                        **base, "id": str(ids[-1]), "recorded_at": t, "valid_from": t})
            else:                                            # outbox: sent long ago
                for k in range(self.s.per_case(self.s.outbox, i)):
                    t = _text(at + timedelta(days=7 * k + 2))
                    yield _clone(tpl[k % len(tpl)], col, {
                        **base, "id": str(uuid.UUID(int=(0x0B << 120) | (i << 16) | k)),
                        "due_at": t, "created_at": when, "sent_at": t, "status": "sent",
                        "claimed_by": "\\N", "lease_until": "\\N"})

    def events(self) -> Iterator[str]:
        """Round-robin over the part's cases, each chain in seq order: real sealed
        canonical bodies, chained from each stream's genesis; COPY text lines."""
        from coordinator.audit.canonical import genesis
        from coordinator.audit.events import seal

        per = [self.s.per_case(self.s.events, i) for i in range(self.low, self.high)]
        ids = [str(case_id(i)) for i in range(self.low, self.high)]
        for n in range(max(per, default=0)):
            for i in range(self.low, self.high):
                k = i - self.low
                if n >= per[k]:
                    continue
                seq, prev = self.heads.get(i, (0, ""))
                at = case_time(i, self.s.cases) + timedelta(days=3 * n,
                                                            seconds=self.rng.randrange(3600))
                ev = seal(_event(n, case_id(i), i, at, self.consent_ids.get(i, []), self.rng),
                          seq + 1, prev or genesis(f"case:{ids[k]}"))
                self.heads[i] = (ev.seq, ev.hash)
                yield "\t".join((
                    ev.stream, str(ev.seq), ev.occurred_at.isoformat(), ev.kind, ids[k],
                    _n(ev.person_key), ev.actor_id, ev.actor_role, _n(ev.actor_org),
                    _n(ev.purpose), _n(ev.category), _n(ev.audience), _n(ev.consent_id),
                    ev.outcome, ev.body.replace("\\", "\\\\"), ev.prev_hash, ev.hash))

    def head_rows(self) -> Iterator[list[str]]:
        for i, (seq, h) in sorted(self.heads.items()):
            yield [f"case:{case_id(i)}", str(seq), h]


def load_part(url: str, sizes: dict[str, int], low: int, high: int,
              templates: dict[str, dict[str, list[list[str]]]], progress: Any) -> dict[str, int]:
    """Generate and COPY one part (runs in a worker process); returns rows per table."""
    import psycopg

    counts: dict[str, int] = {}
    pending: dict[str, int] = {}
    last = [time.monotonic()]

    def report(table: str, n: int) -> None:
        counts[table] = counts.get(table, 0) + n
        pending[table] = pending.get(table, 0) + n
        if progress is not None and time.monotonic() - last[0] > 0.25:
            progress.put(dict(pending))
            pending.clear()
            last[0] = time.monotonic()

    part = _Part(Sizes(**sizes), low, high, templates)
    with psycopg.connect(_dsn(url)) as conn, conn.cursor() as cur:
        conn.execute("SET synchronous_commit = off")
        plan: list[tuple[str, Sequence[str], Callable[[], Iterator[Sequence[str] | str]]]] = [
            *((t, _columns(t), functools.partial(part.cloned, t)) for t in CLONED),
            ("audit_events", EVENT_COLUMNS, part.events),
            ("audit_heads", ("stream", "seq", "hash"), part.head_rows)]
        for table, columns, rows in plan:
            w = _Writer(cur, table, columns, report)
            for fields in rows():
                w.add(fields)
            w.close()
        conn.commit()
    if progress is not None and pending:
        progress.put(dict(pending))
    return counts


# -- the whole load -------------------------------------------------------------------------
def load(url: str, sizes: Sizes, *, jobs: int = 2, show: bool = True) -> LoadReport:
    """Migrate ``url`` (an empty database), load it, rebuild indexes, analyse."""
    import psycopg

    from coordinator.persistence import migrate
    from coordinator.persistence.database import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    templates = make_templates(url)
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        rebuild = drop_secondary(conn)
    started = time.perf_counter()
    jobs = max(1, min(jobs, sizes.cases))
    bounds = [(sizes.cases * k // jobs, sizes.cases * (k + 1) // jobs) for k in range(jobs)]
    expected = {"cases": sizes.cases, "audit_events": sizes.events,
                "consents": sizes.consents, "outbox": sizes.outbox}
    rows: dict[str, int] = {}
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, _Display(show, expected) as display:
        updates = manager.Queue()
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(load_part, url, asdict(sizes), a, b, templates, updates)
                       for a, b in bounds]
            _drain(futures, updates, display)
            for f in futures:
                for table, n in f.result().items():
                    rows[table] = rows.get(table, 0) + n
        copy_s = time.perf_counter() - started
        t = time.perf_counter()
        with psycopg.connect(_dsn(url), autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            display.start("indexes and constraints", len(rebuild))
            for statement in rebuild:
                conn.execute(statement)
                display.advance("indexes and constraints", 1)
            index_s = time.perf_counter() - t
            t = time.perf_counter()
            display.start("ANALYZE", 1)
            conn.execute("ANALYZE")
            display.advance("ANALYZE", 1)
    return LoadReport(asdict(sizes), rows, jobs, round(copy_s, 2), round(index_s, 2),
                      round(time.perf_counter() - t, 2), str(case_id(0)), sizes.cases)


def _drain(futures: list[Future[dict[str, int]]], updates: Any, display: _Display) -> None:
    while not all(f.done() for f in futures):
        try:
            batch = updates.get(timeout=0.2)
        except queue.Empty:
            continue
        for table, n in batch.items():
            display.advance(table, n)
    while True:
        try:
            batch = updates.get_nowait()
        except queue.Empty:
            return
        for table, n in batch.items():
            display.advance(table, n)


class _Display:
    """A rich progress display (rows per table, rate, time left), or nothing."""

    def __init__(self, show: bool, totals: dict[str, int]) -> None:
        self.show, self.totals, self.tasks = show, totals, {}
        self.progress: Any = None

    def __enter__(self) -> _Display:
        if self.show:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(),
                                     MofNCompleteColumn(), TaskProgressColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn())
            self.progress.__enter__()
            for table, total in self.totals.items():
                self.start(table, total)
        return self

    def start(self, name: str, total: int) -> None:
        if self.progress is not None and name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)

    def advance(self, name: str, n: int) -> None:
        if self.progress is None:
            return
        self.start(name, 0)
        task = self.tasks[name]
        self.progress.advance(task, n)
        t = self.progress.tasks[task]
        if t.total is not None and t.completed > t.total:
            self.progress.update(task, total=t.completed)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)


def main(argv: Sequence[str] | None = None) -> int:
    from bench.common import ADMIN_DSN, fresh_database, pg_problem, pg_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(SCALES), default="smoke")
    parser.add_argument("--scale", type=float, help="multiply the full sizes (overrides --mode)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    problem = pg_problem()
    if problem:
        print(f"skipped: {problem}")
        return 1
    sizes = Sizes.scaled(args.scale if args.scale is not None else SCALES[args.mode])
    with contextlib.ExitStack() as stack:
        if args.keep:
            import psycopg

            url = pg_url(f"coord_scale_{uuid.uuid4().hex[:10]}")
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        else:
            url = stack.enter_context(fresh_database("coord_scale"))
        report = load(url, sizes, jobs=args.jobs)
        print(f"loaded {report.rows} in {report.seconds:.1f} s (COPY {report.seconds_copy} s, "
              f"indexes {report.seconds_indexes} s, ANALYZE {report.seconds_analyze} s)")
        if args.keep:
            print(f"kept: {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

