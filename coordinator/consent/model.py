"""Consent as data. Records are never updated: a withdrawal is a new record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

PURPOSES = frozenset({
    "coordination",            # dialogue between the services about the case
    "share_kartlegging",
    "share_mestringsplan",
    "share_session_summaries",
    "employer_contact",
    "research",
})
CATEGORIES = frozenset({
    "contact_info", "kartlegging", "mestringsplan", "session_summary", "work_status",
    "outcome_scores", "meeting_notes",
})
PARTIES = frozenset({"nav", "rph", "therapist", "fastlege", "employer"})
METHODS = frozenset({"signed_form", "verbal_witnessed", "digital"})


@dataclass(frozen=True)
class ConsentRecord:
    """``kind`` is ``grant`` or ``withdrawal``. A withdrawal removes the scopes it lists
    (purposes × categories × parties) from every grant recorded before it."""

    id: UUID
    case_id: UUID
    kind: str
    purposes: frozenset[str]
    categories: frozenset[str]
    parties: frozenset[str]
    valid_from: datetime
    valid_to: datetime | None
    method: str
    form_version: str
    recorded_at: datetime
    recorded_by: str
    recorded_role: str
