"""Verification of chains and checkpoints. Pure: callers pass the checkpoints to
``verify_checkpoints``, run the fast pass (``scan``) over the events in any order that
keeps each stream in seq order (row-id order on PostgreSQL, in parallel parts joined by
``merge``), and let a ``ChainVerifier`` judge the result; it rereads only the streams
the fast pass could not clear and checks those in seq order, event by event.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.audit.canonical import digest, genesis
from coordinator.audit.checkpoint import (
    CHECKPOINT_GENESIS,
    Checkpoint,
    CheckpointSigner,
    delta_digest,
    message,
)
from coordinator.audit.events import COLUMNS, VERSION, Row
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


class _JsonText(dict[Any, str]):
    """Canonical JSON of column values, cached: ids, roles and codes repeat a lot."""

    def __missing__(self, value: Any) -> str:
        text = self[value] = json.dumps(value, ensure_ascii=False)
        return text


# The canonical body around its ``data`` field: keys sorted, no whitespace, exactly as
# ``canonical(body_of(event, seq))`` renders them (tests/unit/test_audit_scan.py).
_PREFIX = ('{"actor_id":%s,"actor_org":%s,"actor_role":%s,"audience":%s,"case_id":%s,'
           '"category":%s,"consent_id":%s,"data":')
_SUFFIX = (',"kind":%s,"occurred_at":"%s","outcome":%s,"person_key":%s,"purpose":%s,'
           '"seq":%d,"stream":%s,"v":' + str(VERSION) + "}")
_CACHE_LIMIT = 100_000
Tick = Callable[[int], None]      # events scanned so far


@dataclass
class Scan:
    """What the fast pass found over some rows. ``segments``: per stream, the first
    event's (seq, prev_hash) and the last event's (seq, hash) seen; ``suspects``: streams
    with an event that failed a check. Picklable, so parallel scans can return it."""

    events: int = 0
    segments: dict[str, list[Any]] = field(default_factory=dict)
    suspects: set[str] = field(default_factory=set)


def scan(rows: Iterable[Row], anchors: Anchors | None = None,
         progress: Tick | None = None) -> Scan:
    """The fast pass: rows (order of ``events.ROW``) in any order that keeps each
    stream's events in seq order, such as row-id order or (stream, seq). Per event: seq
    and link against the stream's previous event, one SHA-256, the body compared with the
    canonical rendering of its columns around the ``data`` field (no JSON decode), and
    any head a checkpoint recorded at that seq. It names nothing: a stream that fails is
    a suspect, which ``ChainVerifier`` reads again in order and checks exactly."""
    sha256, unhex = hashlib.sha256, bytes.fromhex
    enc = _JsonText({None: "null"})
    marks_of: Anchors = anchors or {}
    segments: dict[str, list[Any]] = {}
    suspects: set[str] = set()
    segment = segments.get
    done = 0
    for row in rows:
        (stream, seq, occurred_at, kind, case_id, person_key, actor_id, actor_role,
         actor_org, purpose, category, audience, consent_id, outcome, body, prev, h) = row
        done += 1
        seg = segment(stream)
        if seg is None:
            segments[stream] = [seq, prev, seq, h]
        elif seq == seg[2] + 1 and prev == seg[3]:
            seg[2], seg[3] = seq, h
        else:
            suspects.add(stream)
            seg[2], seg[3] = seq, h
            continue
        try:
            ok = (sha256(unhex(prev) + body.encode("utf-8")).hexdigest() == h
                  and body.startswith(_PREFIX % (
                      enc[actor_id], enc[actor_org], enc[actor_role], enc[audience],
                      enc[case_id], enc[category], enc[consent_id]))
                  and body.endswith(_SUFFIX % (
                      enc[kind], occurred_at, enc[outcome], enc[person_key], enc[purpose],
                      seq, enc[stream])))
        except (TypeError, ValueError, AttributeError):
            ok = False
        marks = marks_of.get(stream)
        if not ok or (marks and seq in marks and marks[seq][0] != h):
            suspects.add(stream)
        if not done % 4096:
            if progress is not None:
                progress(done)
            if len(enc) > _CACHE_LIMIT:
                enc.clear()
                enc[None] = "null"
    if progress is not None:
        progress(done)
    return Scan(done, segments, suspects)


def merge(parts: Iterable[Scan]) -> Scan:
    """Join scans of consecutive row ranges, in order: a stream continues from one part
    into the next only when its seq and link continue."""
    out = Scan()
    for part in parts:
        out.events += part.events
        out.suspects |= part.suspects
        for stream, seg in part.segments.items():
            have = out.segments.get(stream)
            if have is None:
                out.segments[stream] = list(seg)
                continue
            if seg[0] != have[2] + 1 or seg[1] != have[3]:
                out.suspects.add(stream)
            have[2], have[3] = seg[2], seg[3]
    return out


Reread = Callable[[str, int], Iterable[Row]]     # (stream, after seq) -> rows by seq


class ChainVerifier:
    """Turns a ``Scan`` into a report: each stream must start where ``start`` (or
    genesis) says, end at its stored head (``heads``; None: not checked) and reach every
    head a checkpoint recorded (``anchors``). Suspect streams are read again in seq order
    and checked event by event (``_check`` decodes the body), which names the first
    problem exactly as an ordered verify would."""

    def __init__(self, report: Report, *, heads: Mapping[str, Head] | None = None,
                 anchors: Anchors | None = None, start: Mapping[str, Head] | None = None
                 ) -> None:
        self.report = report
        self.heads = heads
        self.anchors = anchors or {}
        self.start = start or {}
        self._stream = ""
        self._seq = 0
        self._hash = ""

    def _origin(self, stream: str) -> Head:
        return self.start.get(stream, (0, genesis(stream)))

    def finish(self, result: Scan, reread: Reread, expected: Iterable[str] = ()) -> Report:
        """``expected``: streams that must have been seen (from heads and checkpoints)."""
        self.report.events += result.events
        self.report.streams += len(result.segments)
        suspects = set(result.suspects)
        for stream, (first_seq, first_prev, last_seq, last_hash) in result.segments.items():
            seq0, hash0 = self._origin(stream)
            marks = self.anchors.get(stream)
            if (first_seq != seq0 + 1 or first_prev != hash0
                    or (self.heads is not None
                        and self.heads.get(stream) != (last_seq, last_hash))
                    or (marks and max(marks) > last_seq)):
                suspects.add(stream)
        for stream in sorted(suspects):
            self._exact(stream, reread(stream, self._origin(stream)[0]))
        for stream in sorted(set(expected) - set(result.segments)):
            self.report.problems.append(Problem(
                stream, None, "missing", "stream has no events, but a head or checkpoint "
                                         "records it (the stream was deleted)"))
        return self.report

    def _exact(self, stream: str, rows: Iterable[Row]) -> None:
        self._stream = stream
        self._seq, self._hash = self._origin(stream)
        for row in rows:
            self._check(row)
            self._seq, self._hash = row[1], row[16]
        self._end_stream()

    def _problem(self, row: Row, code: str, text: str) -> None:
        self.report.problems.append(Problem(row[0], row[1], code, text))

    def _check(self, row: Row) -> None:
        """One event in order: name its first problem (if any)."""
        stream, seq, body, prev, h = row[0], row[1], row[14], row[15], row[16]
        if seq != self._seq + 1:
            self._problem(row, "sequence", f"expected seq {self._seq + 1}, found {seq} "
                                           f"(events missing or reordered)")
            return
        if prev != self._hash:
            self._problem(row, "link", "prev_hash does not match the previous event's hash "
                                       "(an event was removed, swapped or forged)")
            return
        try:
            sealed = hashlib.sha256(bytes.fromhex(prev) + body.encode("utf-8")).hexdigest()
        except (TypeError, ValueError, AttributeError):
            sealed = None
        if sealed != h:
            self._problem(row, "hash", "hash does not match the body (the body was edited)")
            return
        try:
            in_body = _BODY_COLUMNS(json.loads(body))
        except (ValueError, KeyError, TypeError):
            self._problem(row, "body", "body is not a JSON audit body")
            return
        columns = row[:len(COLUMNS)]
        if in_body != columns:
            name = next(n for n, a, b in zip(COLUMNS, in_body, columns, strict=True) if a != b)
            self._problem(row, "column", f"column {name} does not match the body "
                                         f"(the column was edited)")
            return
        anchors = self.anchors.get(stream)
        anchor = anchors.get(seq) if anchors else None
        if anchor is not None and anchor[0] != h:
            self._problem(row, "checkpoint-head", f"differs from the head recorded by "
                                                  f"checkpoint {anchor[1]}")

    def _end_stream(self) -> None:
        stream = self._stream
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
