"""Signed checkpoints over all chain heads.

A checkpoint records the heads that changed since the previous one (its ``delta``), the
Merkle root over *all* heads at that moment, and the hash of the previous checkpoint; the
canonical message of these fields is signed (Ed25519, through the ``CheckpointSigner``
port). Deleting, editing or forging a checkpoint breaks its signature or the link; editing
a chain below a checkpoint breaks the recorded head (see ``verify``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from coordinator.audit.canonical import canonical, digest, genesis, iso
from coordinator.audit.merkle import Head, root

CHECKPOINT_GENESIS = genesis("checkpoints")


class CheckpointSigner(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, message: bytes, signature: bytes, key_id: str) -> bool:
        """False for a bad signature or an unknown key."""
        ...


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    created_at: datetime
    stream_count: int
    event_count: int
    root: str
    delta_digest: str
    prev_hash: str
    hash: str
    key_id: str
    signature: str
    max_event_id: int | None = None    # read hint for incremental verify; not signed


def delta_digest(delta: Mapping[str, Head]) -> str:
    return digest(canonical(sorted([s, h[0], h[1]] for s, h in delta.items())))


def message(seq: int, created_at: datetime, stream_count: int, event_count: int,
            root_hex: str, delta_hex: str, prev_hash: str) -> bytes:
    return canonical({"v": 1, "seq": seq, "created_at": iso(created_at),
                      "streams": stream_count, "events": event_count, "root": root_hex,
                      "delta": delta_hex, "prev": prev_hash})


def changed(heads: Mapping[str, Head], recorded: Mapping[str, Head]) -> dict[str, Head]:
    """Heads that moved since they were last recorded in a checkpoint."""
    return {s: h for s, h in heads.items() if recorded.get(s) != h}


def make(seq: int, created_at: datetime, heads: Mapping[str, Head], delta: Mapping[str, Head],
         prev: Checkpoint | None, signer: CheckpointSigner,
         max_event_id: int | None = None) -> Checkpoint:
    root_hex = root(heads)
    events = sum(h[0] for h in heads.values())
    dd = delta_digest(delta)
    prev_hash = prev.hash if prev is not None else CHECKPOINT_GENESIS
    msg = message(seq, created_at, len(heads), events, root_hex, dd, prev_hash)
    return Checkpoint(seq, created_at, len(heads), events, root_hex, dd, prev_hash,
                      digest(msg), signer.key_id, signer.sign(msg).hex(), max_event_id)
