"""Documents as data (pure): encrypted case documents, their shares, and the data keys
they are sealed under. See docs/encryption.md.

A document belongs to a case and to one side (``owner``: ``health`` or ``nav``); its
``category`` is one of that side's consent categories. Its ``audience`` names the data key
it is sealed under: the owner side's key (``health`` or ``nav``) until it is shared with a
party of the other side, then the case's ``shared`` key. The ciphertext is bound to
(case id, document id, audience, revision) by AES-GCM associated data, so a ciphertext
moved to another case, document, audience or revision does not decrypt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from uuid import UUID

HEALTH, NAV, SHARED = "health", "nav", "shared"
SIDES = frozenset({HEALTH, NAV})
AUDIENCES = frozenset({HEALTH, NAV, SHARED})
KINDS = frozenset({"kartleggingsskjema", "mestringsplan", "session_summary", "note",
                   "message"})
MAX_TEXT = 200_000          # characters of one document

# The purpose a share rests on when the caller names none.
DEFAULT_PURPOSE = {"kartlegging": "share_kartlegging", "mestringsplan": "share_mestringsplan",
                   "session_summary": "share_session_summaries"}


@dataclass(frozen=True)
class Binding:
    """What one ciphertext is bound to: its AES-GCM associated data."""

    case_id: UUID
    document_id: UUID
    audience: str
    revision: int

    def associated_data(self) -> bytes:
        """Canonical, unambiguous bytes (a JSON array with a format tag)."""
        return json.dumps(["coordinator.document/v1", str(self.case_id),
                           str(self.document_id), self.audience, self.revision],
                          separators=(",", ":")).encode()


@dataclass(frozen=True)
class Share:
    """A document disclosed to one party of the other side, for one purpose."""

    document_id: UUID
    party: str
    purpose: str
    consent_id: UUID | None
    shared_at: datetime
    shared_by: str


@dataclass(frozen=True)
class Document:
    """``revision`` counts content changes (it is in the associated data);
    ``row_version`` counts every change of the row (content, audience, re-encryption) and
    guards each update (optimistic locking). ``sealed`` is nonce || ciphertext+tag under
    the data key (case, audience, key_version); ``digest`` is the SHA-256 of ``sealed``,
    which the audit trail records (never a digest of the plaintext, which a guess could
    confirm after erasure)."""

    id: UUID
    case_id: UUID
    kind: str
    category: str
    owner: str
    audience: str
    revision: int
    key_version: int
    sealed: bytes = field(repr=False)
    digest: str
    created_at: datetime
    created_by: str
    created_role: str
    updated_at: datetime
    row_version: int = 1
    shares: tuple[Share, ...] = ()

    @property
    def binding(self) -> Binding:
        return Binding(self.case_id, self.id, self.audience, self.revision)

    def share_for(self, party: str) -> Share | None:
        return next((s for s in self.shares if s.party == party), None)


@dataclass(frozen=True)
class DataKey:
    """One wrapped data key of a case and audience; versions count up from 1. The blob
    is opaque: only the KeyProvider that made it (``kek_id``) can unwrap it."""

    case_id: UUID
    audience: str
    key_version: int
    kek_id: str
    blob: bytes = field(repr=False)
    created_at: datetime

    @cached_property
    def context(self) -> bytes:
        """Bound into the wrap: a wrapped key moved to another case, audience or version
        fails. Unambiguous: a UUID's text, an audience (no ``|``) and a number."""
        return f"coordinator.data-key/v1|{self.case_id}|{self.audience}|{self.key_version}" \
            .encode()


@dataclass(frozen=True)
class Erasure:
    case_id: UUID
    erased_at: datetime
    erased_by: str


@dataclass(frozen=True)
class Rotation:
    """One run of ``coordinator keys rotate``; an unfinished one is resumed."""

    id: UUID
    kind: str                   # rewrap or reencrypt
    started_at: datetime
    finished_at: datetime | None = None
