"""Verification and checkpointing over an audit store (pure orchestration; the store is
any object with the ``AuditLog`` methods of ``coordinator.ports``).

Full verification runs the fast pass over every event (in row-id order on PostgreSQL, in
``jobs`` processes if asked), then rereads in seq order only the streams it could not
clear. ``since`` verifies
incrementally: each stream continues from the head the last checkpoint at or before
``since`` recorded (trusted because that checkpoint's signature and root verify), so only
later events are read. ``stream`` verifies one case's chain against every checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from coordinator.audit import checkpoint as cp
from coordinator.audit.checkpoint import Checkpoint, CheckpointSigner
from coordinator.audit.events import Row, SealedEvent
from coordinator.audit.merkle import Head
from coordinator.audit.verify import (
    Anchors,
    ChainVerifier,
    Report,
    Scan,
    Tick,
    scan,
    verify_checkpoints,
)

Progress = Callable[[int, int], None]      # (events done, events expected)


class AuditReader(Protocol):
    def events(self, *, stream: str | None = None, since: datetime | None = None,
               streams: Iterable[str] | None = None) -> Iterator[SealedEvent]: ...

    def stream_after(self, stream: str, seq: int) -> Iterator[SealedEvent]: ...

    def rows(self, *, stream: str | None = None) -> Iterator[Row]: ...

    def scan(self, anchors: Anchors, *, jobs: int = 1,
             progress: Tick | None = None) -> Scan: ...

    def heads(self, stream: str | None = None) -> dict[str, Head]: ...

    def count(self) -> int: ...

    def after_id(self, event_id: int) -> list[SealedEvent]: ...

    def max_id(self) -> int: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def checkpoint_heads(self, stream: str | None = None) -> dict[int, dict[str, Head]]: ...

    def add_checkpoint(self, checkpoint: Checkpoint, delta: Mapping[str, Head]) -> None: ...


def verify(store: AuditReader, signer: CheckpointSigner | None, *, stream: str | None = None,
           since: datetime | None = None, progress: Progress | None = None,
           jobs: int = 1) -> Report:
    """``jobs`` > 1: a full verify scans the events in that many processes where the
    store can (PostgreSQL); elsewhere it is ignored."""
    report = Report()
    checkpoints = store.checkpoints()
    state = verify_checkpoints(checkpoints, store.checkpoint_heads(), signer, report)
    heads = store.heads(stream)
    anchors = state.anchors if stream is None else {
        s: a for s, a in state.anchors.items() if s == stream}
    expected = set(heads) | set(anchors)
    total = sum(h[0] for h in heads.values())
    start: dict[str, Head] = {}
    tick = None if progress is None else (lambda done: progress(done, total))
    if since is not None:
        start, hint = _start_at(checkpoints, store.checkpoint_heads(stream), since)
        expected = {s for s, h in heads.items() if h != start.get(s)}
        total = sum(h[0] - start.get(s, (0, ""))[0] for s, h in heads.items())
        rows = (ev.as_row() for ev in _incremental(store, heads, start, stream, hint))
        result = scan(rows, anchors, tick)
    elif stream is not None:
        result = scan(store.rows(stream=stream), anchors, tick)
    else:
        result = store.scan(anchors, jobs=jobs, progress=tick)
    verifier = ChainVerifier(report, heads=heads, anchors=anchors, start=start)
    verifier.finish(result, lambda s, seq: (e.as_row() for e in store.stream_after(s, seq)),
                    expected)
    return report


def _start_at(checkpoints: list[Checkpoint], deltas: Mapping[int, Mapping[str, Head]],
              since: datetime) -> tuple[dict[str, Head], int | None]:
    """The heads recorded by the checkpoints up to the last one created at or before
    ``since``, and that checkpoint's row-id hint."""
    start: dict[str, Head] = {}
    hint: int | None = None
    for c in checkpoints:
        if c.created_at > since:
            break
        start.update(deltas.get(c.seq, {}))
        hint = c.max_event_id
    return start, hint


def _incremental(store: AuditReader, heads: Mapping[str, Head], start: Mapping[str, Head],
                 stream: str | None, hint: int | None) -> Iterator[SealedEvent]:
    """The events after each stream's start, in (stream, seq) order, reading only the
    streams whose head moved. With a row-id hint, one query fetches the newer rows; a
    stream whose rows there do not run contiguously from its start to its head (a late
    commit with a lower id, or tampering) is read again on its own."""
    moved = sorted(s for s, h in heads.items() if h != start.get(s)
                   and (stream is None or s == stream))
    newer: dict[str, list[SealedEvent]] = {}
    if hint is not None and stream is None:
        for ev in store.after_id(hint):
            newer.setdefault(ev.stream, []).append(ev)
    for s in moved:
        first = start.get(s, (0, ""))[0]
        rows = newer.get(s, [])
        contiguous = [e.seq for e in rows] == list(range(first + 1, heads[s][0] + 1))
        yield from rows if contiguous else store.stream_after(s, first)


def checkpoint_if_due(store: AuditReader, signer: CheckpointSigner, now: datetime,
                      every: timedelta) -> Checkpoint | None:
    """A scheduled checkpoint: made when events were appended since the last one (its
    row-id hint moved) and the last one is at least ``every`` old, or when there is none
    yet and there are events. The checkpoints are read once, so a process that decided
    on a stale list numbers its checkpoint like the one that beat it and loses on the
    primary key instead of writing a second one."""
    existing = store.checkpoints()
    newest = store.max_id()
    if not existing:
        due = newest > 0
    else:
        last = existing[-1]
        due = now - last.created_at >= every and newest != last.max_event_id
    return make_checkpoint(store, signer, now, existing) if due else None


def make_checkpoint(store: AuditReader, signer: CheckpointSigner, now: datetime,
                    existing: list[Checkpoint] | None = None) -> Checkpoint:
    """Sign the current heads; record only those that moved since the last checkpoint
    (``existing``: the checkpoints as already read)."""
    if existing is None:
        existing = store.checkpoints()
    recorded: dict[str, Head] = {}
    for _seq, delta in sorted(store.checkpoint_heads().items()):
        recorded.update(delta)
    heads = store.heads()
    delta = cp.changed(heads, recorded)
    prev = existing[-1] if existing else None
    checkpoint = cp.make(len(existing) + 1, now, heads, delta, prev, signer,
                         store.max_id())
    store.add_checkpoint(checkpoint, delta)
    return checkpoint
