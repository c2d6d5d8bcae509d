"""Audit events: what is appended (``AuditEvent``) and what is stored (``SealedEvent``).

A body holds ids, codes and digests, never case content, so chains survive erasure. Its
queryable copies (``COLUMNS``) are stored beside it and checked by ``verify``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from coordinator.audit.canonical import canonical, chain_hash, iso

SYSTEM_STREAM = "system"
VERSION = 1

# kinds
CASE_PREFIX = "case_"             # case_opened, case_transitioned, case_migrated, …
CONSENT_GRANTED = "consent_granted"
CONSENT_WITHDRAWN = "consent_withdrawn"
DATA_READ = "data_read"           # shared data read by a team member
DATA_SHARED = "data_shared"       # data disclosed to a party
EMERGENCY_ACCESS = "emergency_access"
EMERGENCY_REVIEWED = "emergency_reviewed"
ACCESS_DENIED = "access_denied"
LOG_READ = "log_read"             # consent log, access log or history read
CASE_VIEWED = "case_viewed"

ACCESS_KINDS = frozenset({DATA_READ, DATA_SHARED, EMERGENCY_ACCESS, CASE_VIEWED})
COLUMNS = ("stream", "seq", "occurred_at", "kind", "case_id", "person_key", "actor_id",
           "actor_role", "actor_org", "purpose", "category", "audience", "consent_id",
           "outcome")
# What verification reads per event: the columns rendered as the body holds them (times
# as canonical ISO text, UUIDs as lower-case text), then the body and both hashes.
ROW = (*COLUMNS, "body", "prev_hash", "hash")
Row = tuple[Any, ...]


def stream_of(case_id: UUID | None) -> str:
    return SYSTEM_STREAM if case_id is None else f"case:{case_id}"


@dataclass(frozen=True)
class AuditEvent:
    """One fact to append; the unit of work chains it on commit."""

    kind: str
    occurred_at: datetime
    actor_id: str
    actor_role: str
    case_id: UUID | None = None
    actor_org: str | None = None
    person_key: str | None = None
    purpose: str | None = None
    category: str | None = None
    audience: str | None = None
    consent_id: UUID | None = None
    outcome: str = "ok"               # ok, denied, emergency
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        return stream_of(self.case_id)


class SealedEvent(NamedTuple):
    """A stored event: the columns, the canonical body and its place in the chain. A
    named tuple, so the verifier can build millions of them cheaply."""

    stream: str
    seq: int
    occurred_at: datetime
    kind: str
    case_id: UUID | None
    person_key: str | None
    actor_id: str
    actor_role: str
    actor_org: str | None
    purpose: str | None
    category: str | None
    audience: str | None
    consent_id: UUID | None
    outcome: str
    body: str
    prev_hash: str
    hash: str
    id: int | None = None

    def column(self, name: str) -> Any:
        return getattr(self, name)

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body).get("data", {})
        return parsed

    def columns_as_in_body(self) -> tuple[Any, ...]:
        """The queryable columns rendered as the body holds them (order of COLUMNS)."""
        return (self.stream, self.seq, iso(self.occurred_at), self.kind,
                None if self.case_id is None else str(self.case_id), self.person_key,
                self.actor_id, self.actor_role, self.actor_org, self.purpose, self.category,
                self.audience, None if self.consent_id is None else str(self.consent_id),
                self.outcome)

    def as_row(self) -> Row:
        """The event as verification reads it (order of ``ROW``)."""
        return (*self.columns_as_in_body(), self.body, self.prev_hash, self.hash)


def body_of(event: AuditEvent, seq: int) -> dict[str, Any]:
    return {"v": VERSION, "stream": event.stream, "seq": seq, "occurred_at":
            iso(event.occurred_at), "kind": event.kind,
            "case_id": None if event.case_id is None else str(event.case_id),
            "person_key": event.person_key, "actor_id": event.actor_id,
            "actor_role": event.actor_role, "actor_org": event.actor_org,
            "purpose": event.purpose, "category": event.category, "audience": event.audience,
            "consent_id": None if event.consent_id is None else str(event.consent_id),
            "outcome": event.outcome, "data": dict(event.data)}


def seal(event: AuditEvent, seq: int, prev_hash: str) -> SealedEvent:
    body = canonical(body_of(event, seq))
    return SealedEvent(event.stream, seq, event.occurred_at, event.kind, event.case_id,
                       event.person_key, event.actor_id, event.actor_role, event.actor_org,
                       event.purpose, event.category, event.audience, event.consent_id,
                       event.outcome, body.decode("utf-8"), prev_hash,
                       chain_hash(prev_hash, body))


def column_value(name: str, value: Any) -> Any:
    """A column as it appears in the body (for the verify comparison)."""
    if value is None:
        return None
    if name == "occurred_at":
        return iso(value)
    if name in ("case_id", "consent_id"):
        return str(value)
    return value
