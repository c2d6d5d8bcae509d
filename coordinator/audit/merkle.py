"""RFC 6962 Merkle tree hash over the chain heads (leaves sorted by stream)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from coordinator.audit.canonical import canonical

Head = tuple[int, str]          # (seq, hash)


def leaf(stream: str, head: Head) -> bytes:
    return hashlib.sha256(b"\x00" + canonical([stream, head[0], head[1]])).digest()


def _root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])       # RFC 6962: an odd node is promoted unchanged
        level = nxt
    return level[0]


def root(heads: Mapping[str, Head]) -> str:
    return _root([leaf(s, heads[s]) for s in sorted(heads)]).hex()
