"""Consent as data. Records are never updated: a withdrawal is a new record.

A record says who consented (the person, or a guardian on their behalf), to whom
(``parties``), for which ``purposes`` and ``categories`` of data, from when to when, on
which versioned consent form (``form_version`` and the SHA-256 of its exact text), and how
it was given (``method``: a signed form with a document reference, verbally before a
witness, or digitally). A withdrawal lists the scopes it takes back, whole or in part, and
the channel it came through. See docs/consent.md.
"""

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
    "research",                # research and evaluation (følgeforskning)
})
CATEGORIES = frozenset({
    "contact_info", "kartlegging", "mestringsplan", "session_summary", "work_status",
    "outcome_scores", "meeting_notes",
})
PARTIES = frozenset({"nav", "rph", "therapist", "fastlege", "employer"})
METHODS = frozenset({"signed_form", "verbal_witnessed", "digital"})
GIVERS = frozenset({"person", "guardian"})
CHANNELS = frozenset({"in_person", "phone", "digital", "letter"})
KINDS = frozenset({"grant", "withdrawal"})

# Which categories belong to which side (origin of the data). Health-owned data reaches a
# Nav role only under a consent; Nav-owned data reaches a health role only under one.
HEALTH_CATEGORIES = frozenset({"kartlegging", "session_summary", "outcome_scores",
                               "mestringsplan", "meeting_notes"})
NAV_CATEGORIES = frozenset({"work_status", "contact_info"})

# The party a role's side stands for when it receives data.
ROLE_PARTY = {
    "nav_veileder": "nav", "syfo_veileder": "nav", "jobbspesialist": "nav",
    "brobygger": "nav", "rph_behandler": "rph", "kognitiv_terapeut": "therapist",
    "fastlege": "fastlege",
}


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
    pilot: str = ""
    given_by: str = "person"            # person or guardian
    guardian_ref: str | None = None     # the guardian's pseudonymous id
    witness_ref: str | None = None      # verbal_witnessed: who witnessed it
    document_ref: str | None = None     # signed_form: where the signed form is kept
    channel: str | None = None          # withdrawal: how it came in
    form_digest: str = ""               # SHA-256 of the exact form text shown
    recorded_org: str | None = None

    def scopes(self) -> frozenset[tuple[str, str, str]]:
        return frozenset((p, c, a) for p in self.purposes for c in self.categories
                         for a in self.parties)
