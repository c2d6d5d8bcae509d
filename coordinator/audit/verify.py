"""Verification of chains and checkpoints. Pure: callers stream events in (stream, seq)
order into a ``ChainVerifier`` and pass the checkpoints to ``verify_checkpoints``.

Detected: an edited body (hash mismatch), an edited queryable column (column ≠ body), a
deleted event (seq gap and broken link), swapped or reordered events (seq or link
mismatch), forged events with recomputed hashes (link or checkpoint mismatch), a tail
truncated below the last checkpoint or below the stored head, a deleted stream, and an
edited, deleted or forged checkpoint (signature, link or delta digest). A tail truncated
*after* the last checkpoint together with its head row stays unseen until the next
checkpoint: that is the bound checkpoints give.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from coordinator.audit.canonical import digest, genesis
from coordinator.audit.checkpoint import (
    CHECKPOINT_GENESIS,
    Checkpoint,
    CheckpointSigner,
    delta_digest,
    message,
)
from coordinator.audit.events import COLUMNS, SealedEvent
from coordinator.audit.merkle import Head, root


@dataclass(frozen=True)
class Problem:
    stream: str | None
    seq: int | None
    code: str
    message: str
    checkpoint: int | None = None

    @property
    def where(self) -> str:
        if self.stream is None:
            return f"checkpoint {self.checkpoint}"
        return f"{self.stream} seq {self.seq}" if self.seq is not None else self.stream

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    events: int = 0
    streams: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


_BODY_COLUMNS = operator.itemgetter(*COLUMNS)
Anchors = Mapping[str, Mapping[int, tuple[str, int]]]     # stream -> seq -> (hash, checkpoint)


@dataclass
class CheckpointState:
    """What the checkpoints say: every head they recorded, and the state at the last one."""

    anchors: dict[str, dict[int, tuple[str, int]]]
    heads: dict[str, Head]
    latest: Checkpoint | None


def verify_checkpoints(checkpoints: Sequence[Checkpoint],
                       deltas: Mapping[int, Mapping[str, Head]],
                       signer: CheckpointSigner | None,
                       report: Report) -> CheckpointState:
    """Check links, signatures and delta digests in order, then the last root over the
    folded heads. Problems go into ``report``."""
    anchors: dict[str, dict[int, tuple[str, int]]] = {}
    heads: dict[str, Head] = {}
    prev_hash, expected_seq = CHECKPOINT_GENESIS, 1
    for cp in checkpoints:
        report.checkpoints += 1
        delta = deltas.get(cp.seq, {})
        msg = message(cp.seq, cp.created_at, cp.stream_count, cp.event_count, cp.root,
                      cp.delta_digest, cp.prev_hash)
        for ok, code, text in (
                (cp.seq == expected_seq, "checkpoint-missing",
                 f"expected checkpoint {expected_seq}, found {cp.seq}"),
                (cp.prev_hash == prev_hash, "checkpoint-link",
                 "does not link to the previous checkpoint"),
                (digest(msg) == cp.hash, "checkpoint-hash", "hash does not match its fields"),
                (signer is not None and _signed(signer, msg, cp), "checkpoint-signature",
                 f"signature does not verify (key {cp.key_id})"),
                (delta_digest(delta) == cp.delta_digest, "checkpoint-delta",
                 "recorded heads do not match the signed digest")):
            if not ok:
                report.problems.append(Problem(None, None, code, text, cp.seq))
                break
        for stream, head in delta.items():
            anchors.setdefault(stream, {})[head[0]] = (head[1], cp.seq)
            heads[stream] = head
        prev_hash, expected_seq = cp.hash, cp.seq + 1
    latest = checkpoints[-1] if checkpoints else None
    if latest is not None and root(heads) != latest.root:
        report.problems.append(Problem(None, None, "checkpoint-root",
                                       "Merkle root does not match the recorded heads",
                                       latest.seq))
    return CheckpointState(anchors, heads, latest)


def _signed(signer: CheckpointSigner, msg: bytes, cp: Checkpoint) -> bool:
    try:
        return signer.verify(msg, bytes.fromhex(cp.signature), cp.key_id)
    except ValueError:
        return False


class ChainVerifier:
    """Feed events ordered by (stream, seq); call ``finish`` at the end.

    ``heads``: the stored chain heads to compare each stream's end with (None: skip).
    ``anchors``: heads recorded by checkpoints. ``start``: per stream, the (seq, hash) to
    continue from (incremental verification from a checkpoint); other streams start at
    genesis and seq 1."""

    def __init__(self, report: Report, *, heads: Mapping[str, Head] | None = None,
                 anchors: Anchors | None = None, start: Mapping[str, Head] | None = None
                 ) -> None:
        self.report = report
        self.heads = heads
        self.anchors = anchors or {}
        self.start = start or {}
        self.seen: set[str] = set()
        self._stream: str | None = None
        self._seq = 0
        self._hash = ""

    def _problem(self, ev: SealedEvent, code: str, text: str) -> None:
        self.report.problems.append(Problem(ev.stream, ev.seq, code, text))

    def feed(self, ev: SealedEvent) -> None:
        if ev.stream != self._stream:
            self._end_stream()
            self._stream = ev.stream
            self.seen.add(ev.stream)
            self.report.streams += 1
            self._seq, self._hash = self.start.get(ev.stream, (0, genesis(ev.stream)))
        self.report.events += 1
        self._check(ev)
        self._seq, self._hash = ev.seq, ev.hash

    def _check(self, ev: SealedEvent) -> None:
        if ev.seq != self._seq + 1:
            self._problem(ev, "sequence", f"expected seq {self._seq + 1}, found {ev.seq} "
                                          f"(events missing or reordered)")
            return
        if ev.prev_hash != self._hash:
            self._problem(ev, "link", "prev_hash does not match the previous event's hash "
                                      "(an event was removed, swapped or forged)")
            return
        raw = ev.body.encode("utf-8")
        if hashlib.sha256(bytes.fromhex(ev.prev_hash) + raw).hexdigest() != ev.hash:
            self._problem(ev, "hash", "hash does not match the body (the body was edited)")
            return
        try:
            in_body = _BODY_COLUMNS(json.loads(ev.body))
        except (ValueError, KeyError, TypeError):
            self._problem(ev, "body", "body is not a JSON audit body")
            return
        if in_body != ev.columns_as_in_body():
            name = next(n for n, a, b in zip(COLUMNS, in_body, ev.columns_as_in_body(),
                                             strict=True) if a != b)
            self._problem(ev, "column", f"column {name} does not match the body "
                                        f"(the column was edited)")
            return
        anchors = self.anchors.get(ev.stream)
        anchor = anchors.get(ev.seq) if anchors else None
        if anchor is not None and anchor[0] != ev.hash:
            self._problem(ev, "checkpoint-head", f"differs from the head recorded by "
                                                 f"checkpoint {anchor[1]}")

    def _end_stream(self) -> None:
        stream = self._stream
        if stream is None:
            return
        recorded = self.anchors.get(stream, {})
        beyond = [s for s in recorded if s > self._seq]
        if beyond:
            seq = max(beyond)
            self.report.problems.append(Problem(
                stream, self._seq, "truncated", f"chain ends at seq {self._seq}, but "
                f"checkpoint {recorded[seq][1]} recorded seq {seq}"))
        if self.heads is not None:
            head = self.heads.get(stream)
            if head is None or head != (self._seq, self._hash):
                got = "no head" if head is None else f"head at seq {head[0]}"
                self.report.problems.append(Problem(
                    stream, self._seq, "head", f"chain ends at seq {self._seq}, {got} "
                    f"(tail truncated or head edited)"))

    def finish(self, expected: Iterable[str] = ()) -> Report:
        """``expected``: streams that must have been seen (from heads and checkpoints)."""
        self._end_stream()
        self._stream = None
        for stream in sorted(set(expected) - self.seen):
            self.report.problems.append(Problem(
                stream, None, "missing", "stream has no events, but a head or checkpoint "
                                         "records it (the stream was deleted)"))
        return self.report
