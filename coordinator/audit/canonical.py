"""Canonical bytes and chain hashes.

Canonical JSON: keys sorted, no whitespace, UTF-8, no NaN; datetimes as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; UUIDs as lower-case strings; sets as sorted lists.
``hash = SHA-256(prev_hash ‖ body)`` over the raw 32-byte digests and the body bytes;
a stream starts from ``SHA-256("coordinator/audit/v1" ‖ stream)``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

DOMAIN = b"coordinator/audit/v1"


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be aware")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_default).encode("utf-8")


def genesis(stream: str) -> str:
    return hashlib.sha256(DOMAIN + stream.encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
