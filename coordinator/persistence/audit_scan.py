"""Fast reads for audit verification on PostgreSQL (docs/audit.md, "Verification").

The server renders times and UUIDs as the canonical body holds them, and the rows come
in libpq chunks (``cursor.stream``; a server-side cursor with libpq before 17), so no
datetime, UUID or ORM row object is built per event. A full scan reads in row-id order:
an index range scan in insert order, with no sort of the whole table. ``parallel`` splits
the row ids into ``jobs`` consecutive ranges, scans each in its own process (chains are
independent, and ``verify.merge`` joins a stream across ranges), and returns one result.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from coordinator.audit.events import Row
from coordinator.audit.verify import Anchors, Scan, Tick, merge, scan

if TYPE_CHECKING:                     # workers import only psycopg and coordinator.audit
    from sqlalchemy import Connection

CHUNK = 5000
_SELECT = ("SELECT stream, seq, to_char(occurred_at AT TIME ZONE 'UTC', "
           "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), kind, case_id::text, person_key, actor_id, "
           "actor_role, actor_org, purpose, category, audience, consent_id::text, outcome, "
           "body, prev_hash, hash FROM audit_events")


def pg_rows(raw: Any, *, stream: str | None = None,
            ids: tuple[int, int] | None = None) -> Iterator[Row]:
    """``raw``: a psycopg connection. One stream ordered by seq, else the rows with
    ``ids[0] < id <= ids[1]`` (all rows without ``ids``) ordered by id."""
    import psycopg

    params: tuple[object, ...] = ()
    if stream is not None:
        sql, params = f"{_SELECT} WHERE stream = %s ORDER BY seq", (stream,)
    elif ids is not None:
        sql, params = f"{_SELECT} WHERE id > %s AND id <= %s ORDER BY id", ids
    else:
        sql = f"{_SELECT} ORDER BY id"
    with raw.cursor() as cur:
        try:
            yield from cur.stream(sql, params, size=CHUNK)
            return
        except psycopg.NotSupportedError:       # chunked rows need libpq 17
            pass
    with raw.cursor(name="coordinator_audit_rows") as cur:
        cur.execute(sql, params)
        while batch := cur.fetchmany(CHUNK):
            yield from batch


def _scan_ids(dsn: str, low: int, high: int, anchors: Anchors) -> Scan:
    """One part of a parallel scan, in a worker process."""
    import psycopg

    with psycopg.connect(dsn) as raw:
        return scan(pg_rows(raw, ids=(low, high)), anchors)


def parallel(conn: Connection, anchors: Anchors, jobs: int,
             progress: Tick | None = None) -> Scan:
    """Scan every event in ``jobs`` spawned processes over consecutive id ranges. Each
    part reads its own snapshot; rows committed after the id bounds are read are left
    to the next verify, as with a single scan started at that moment."""
    low, high = conn.exec_driver_sql("SELECT min(id) - 1, max(id) FROM audit_events").one()
    if high is None:
        return Scan()
    step = -(-(high - low) // jobs)
    bounds = [(a, min(a + step, high)) for a in range(low, high, step)]
    dsn = conn.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    parts: list[Scan] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(bounds), mp_context=context) as pool:
        futures = [pool.submit(_scan_ids, dsn, a, b, anchors) for a, b in bounds]
        for future in futures:
            parts.append(future.result())
            if progress is not None:
                progress(sum(p.events for p in parts))
    return merge(parts)
